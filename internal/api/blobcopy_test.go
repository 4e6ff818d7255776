//go:build !octoserve_sendfile

package api_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// observer is a ResponseWriter that offers ReadFrom, as net/http's does,
// and records how the body reached it.
type observer struct {
	http.ResponseWriter
	mu        *sync.Mutex
	readFroms *int
	maxWrite  *int
}

func (o observer) Write(b []byte) (int, error) {
	o.mu.Lock()
	*o.maxWrite = max(*o.maxWrite, len(b))
	o.mu.Unlock()
	return o.ResponseWriter.Write(b)
}

func (o observer) ReadFrom(r io.Reader) (int64, error) {
	o.mu.Lock()
	*o.readFroms++
	o.mu.Unlock()
	return io.Copy(struct{ io.Writer }{o.ResponseWriter}, r)
}

// TestBlobBodyIsWrittenNotSentFile checks that a blob GET copies the file
// with plain writes of at most 64 KiB and never hands it to the
// connection's ReadFrom, which would send it with sendfile (slower for
// Go clients on the same host; see blobWriteSize).
func TestBlobBodyIsWrittenNotSentFile(t *testing.T) {
	d, err := filesystem.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := api.New(registry.New(d, registry.Options{}))
	var mu sync.Mutex
	var readFroms, maxWrite int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(observer{w, &mu, &readFroms, &maxWrite}, r)
	}))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv}
	data := bytes.Repeat([]byte("0123456789abcdef"), 65536+3) // 1 MiB and 48 bytes
	digest := e.pushBlob("a/b", data)

	for _, rng := range []string{"", "bytes=1000-"} {
		mu.Lock()
		readFroms, maxWrite = 0, 0
		mu.Unlock()
		h := hdr{}
		want := data
		if rng != "" {
			h["Range"], want = rng, data[1000:]
		}
		resp, body := e.do("GET", "/v2/a/b/blobs/"+digest, nil, h)
		if resp.StatusCode/100 != 2 || !bytes.Equal(body, want) {
			t.Fatalf("Range %q: status %d, %d bytes, want %d", rng, resp.StatusCode, len(body), len(want))
		}
		mu.Lock()
		if readFroms != 0 || maxWrite > 64<<10 || maxWrite == 0 {
			t.Errorf("Range %q: ReadFrom called %d times, largest Write %d bytes; want plain writes of at most 64 KiB", rng, readFroms, maxWrite)
		}
		mu.Unlock()
	}
}
