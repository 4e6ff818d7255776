package s3

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/s3/s3test"
	"github.com/octoserve/octoserve/internal/storage/storagetest"
)

var ctx = context.Background()

// testConfig is the test server's configuration with a key prefix of the
// test's own; without a server it skips t (fails it, when required).
func testConfig(t testing.TB) Config {
	t.Helper()
	srv := s3test.Require(t)
	return Config{
		Endpoint:  srv.Endpoint,
		Region:    srv.Region,
		Bucket:    srv.Bucket,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		PathStyle: true,
		Prefix:    s3test.Prefix(t),
	}
}

// newTestDriver opens a driver on a fresh prefix and empties it when the
// test ends.
func newTestDriver(t testing.TB, cfg Config, opts ...func(*s3sdk.Options)) *Driver {
	t.Helper()
	d, err := New(ctx, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.DeleteAll(ctx, ""); err != nil {
			t.Errorf("emptying the test prefix: %v", err)
		}
	})
	return d
}

func TestContract(t *testing.T) {
	testConfig(t) // skip or fail here, not in every subtest
	storagetest.Run(t, func(t *testing.T) storage.Driver { return newTestDriver(t, testConfig(t)) })
}

// counter counts the requests a driver sends, by S3 operation.
type counter struct {
	next aws.HTTPClient
	mu   sync.Mutex
	ops  map[string]int
	// fail, if set, may answer a request with an error after sending it
	// (as if the connection dropped before the answer came).
	fail func(op string, req *http.Request) error
}

func newCounter() *counter {
	return &counter{next: awshttp.NewBuildableClient(), ops: map[string]int{}}
}

func (c *counter) option(o *s3sdk.Options) { o.HTTPClient = c }

func (c *counter) Do(req *http.Request) (*http.Response, error) {
	op := operation(req)
	c.mu.Lock()
	c.ops[op]++
	fail := c.fail
	c.mu.Unlock()
	resp, err := c.next.Do(req)
	if err == nil && fail != nil {
		if ferr := fail(op, req); ferr != nil {
			resp.Body.Close()
			return nil, ferr
		}
	}
	return resp, err
}

func (c *counter) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops[op]
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops = map[string]int{}
}

// operation names the S3 operation of a request, as far as the driver
// uses them.
func operation(req *http.Request) string {
	q := req.URL.Query()
	copying := req.Header.Get("X-Amz-Copy-Source") != ""
	switch {
	case req.Method == http.MethodHead:
		return "HeadObject"
	case req.Method == http.MethodGet && q.Has("list-type"):
		return "ListObjectsV2"
	case req.Method == http.MethodGet:
		return "GetObject"
	case req.Method == http.MethodPut && copying && q.Has("partNumber"):
		return "UploadPartCopy"
	case req.Method == http.MethodPut && copying:
		return "CopyObject"
	case req.Method == http.MethodPut && q.Has("partNumber"):
		return "UploadPart"
	case req.Method == http.MethodPut:
		return "PutObject"
	case req.Method == http.MethodPost && q.Has("uploads"):
		return "CreateMultipartUpload"
	case req.Method == http.MethodPost && q.Has("uploadId"):
		return "CompleteMultipartUpload"
	case req.Method == http.MethodPost && q.Has("delete"):
		return "DeleteObjects"
	case req.Method == http.MethodDelete && q.Has("uploadId"):
		return "AbortMultipartUpload"
	case req.Method == http.MethodDelete:
		return "DeleteObject"
	}
	return req.Method + " " + req.URL.RawQuery
}

// uploadsLeft lists the multipart uploads in progress below the driver's
// prefix.
func uploadsLeft(t *testing.T, d *Driver) []string {
	t.Helper()
	out, err := d.client.ListMultipartUploads(ctx, &s3sdk.ListMultipartUploadsInput{Bucket: &d.bucket, Prefix: &d.prefix})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}
