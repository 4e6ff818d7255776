package s3

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/octoserve/octoserve/internal/storage"
)

// refuseFirst answers the first request of operation op with what
// versitygw's posix backend answers a write whose parent directory a
// concurrent delete of the last object below it has just removed (it
// keeps objects as files, and removes directories left empty): 409
// ExistingObjectIsDirectory, though no object there is a directory. The
// request is not sent, so nothing is written.
type refuseFirst struct {
	next    aws.HTTPClient
	op      string
	mu      sync.Mutex
	refused int
}

func (c *refuseFirst) Do(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	refuse := operation(req) == c.op && c.refused == 0
	if refuse {
		c.refused++
	}
	c.mu.Unlock()
	if !refuse {
		return c.next.Do(req)
	}
	body := `<?xml version="1.0" encoding="UTF-8"?>` +
		`<Error><Code>ExistingObjectIsDirectory</Code><Message>Existing Object is a directory.</Message></Error>`
	return &http.Response{
		StatusCode: http.StatusConflict, Status: "409 Conflict", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/xml"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: req,
	}, nil
}

// TestWriteBesideDirectoryRemovalIsRetried: a write that versitygw
// refuses because a concurrent delete removed its parent directory at the
// same moment succeeds (the SDK sends it again), for each kind of write.
// Before, such a write failed, and the registry answered 500: on
// versitygw, garbage collection removing the last link of a blob while a
// push linked another made pushes fail.
func TestWriteBesideDirectoryRemovalIsRetried(t *testing.T) {
	tests := []struct {
		name, op string
		write    func(d *Driver) error
	}{
		{"PutContent", "PutObject", func(d *Driver) error { return d.PutContent(ctx, "dir/obj", []byte("x")) }},
		{"PutIf", "PutObject", func(d *Driver) error { return d.PutIf(ctx, "dir/obj", []byte("x"), storage.Absent) }},
		{"Compose", "CopyObject", func(d *Driver) error {
			if err := d.PutContent(ctx, "src/a", []byte("x")); err != nil {
				return err
			}
			return d.Compose(ctx, "dir/obj", []string{"src/a"})
		}},
		{"WriterMultipart", "CompleteMultipartUpload", func(d *Driver) error {
			w, err := d.Writer(ctx, "dir/obj", storage.Create)
			if err != nil {
				return err
			}
			if _, err := w.Write(bytes.Repeat([]byte("x"), d.partSize+1)); err != nil {
				return err
			}
			return w.Commit(ctx)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.PartSize = minPartSize
			c := &refuseFirst{next: awshttp.NewBuildableClient(), op: tc.op}
			d := newTestDriver(t, cfg, func(o *s3sdk.Options) { o.HTTPClient = c })
			if err := tc.write(d); err != nil {
				t.Fatalf("a write refused once with ExistingObjectIsDirectory: %v", err)
			}
			if c.refused != 1 {
				t.Fatalf("%s was refused %d times, want once", tc.op, c.refused)
			}
			if _, err := d.Stat(ctx, "dir/obj"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
