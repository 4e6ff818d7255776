//go:build !octoserve_sendfile

package api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// observer is a ResponseWriter that offers ReadFrom, as net/http's does,
// and records how the body reached it. With hold set, its first Write or
// ReadFrom reports on entered and waits for release.
type observer struct {
	http.ResponseWriter
	mu        *sync.Mutex
	readFroms *int
	maxWrite  *int
	hold      *sync.Once
	entered   chan<- struct{}
	release   <-chan struct{}
}

func (o observer) wait() {
	if o.hold != nil {
		o.hold.Do(func() {
			o.entered <- struct{}{}
			<-o.release
		})
	}
}

func (o observer) Write(b []byte) (int, error) {
	o.mu.Lock()
	*o.maxWrite = max(*o.maxWrite, len(b))
	o.mu.Unlock()
	o.wait()
	return o.ResponseWriter.Write(b)
}

func (o observer) ReadFrom(r io.Reader) (int64, error) {
	o.mu.Lock()
	*o.readFroms++
	o.mu.Unlock()
	o.wait()
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
		h.ServeHTTP(observer{ResponseWriter: w, mu: &mu, readFroms: &readFroms, maxWrite: &maxWrite}, r)
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

// TestBlobBodyIsSentFileWhenOthersAreInFlight checks the other half of
// blobWriter's choice: once GOMAXPROCS/2 downloads are being sent, the
// next one goes to the connection's ReadFrom (sendfile), which costs the
// busy server least.
func TestBlobBodyIsSentFileWhenOthersAreInFlight(t *testing.T) {
	d, err := filesystem.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := api.New(registry.New(d, registry.Options{}))
	var mu sync.Mutex
	var heldReadFroms, heldWrites, lastReadFroms, lastWrites int
	entered, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := observer{ResponseWriter: w, mu: &mu, readFroms: &lastReadFroms, maxWrite: &lastWrites}
		if r.Header.Get("X-Hold") != "" {
			o = observer{ResponseWriter: w, mu: &mu, readFroms: &heldReadFroms, maxWrite: &heldWrites,
				hold: &sync.Once{}, entered: entered, release: release}
		}
		h.ServeHTTP(o, r)
	}))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv}
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	digest := e.pushBlob("a/b", data)

	held := max(1, runtime.GOMAXPROCS(0)/2)
	results := make(chan error, held)
	for range held {
		go func() {
			resp, err := http.DefaultClient.Do(mustRequest(t, srv.URL+"/v2/a/b/blobs/"+digest, "X-Hold"))
			if err == nil {
				var body []byte
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && !bytes.Equal(body, data) {
					err = fmt.Errorf("held download: %d bytes, want %d", len(body), len(data))
				}
			}
			results <- err
		}()
	}
	for range held {
		<-entered // every held download is inside its body's copy
	}
	resp, body := e.do("GET", "/v2/a/b/blobs/"+digest, nil, nil)
	close(release)
	for range held {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("download beside %d others: status %d, %d bytes", held, resp.StatusCode, len(body))
	}
	mu.Lock()
	defer mu.Unlock()
	if heldReadFroms != 0 || heldWrites == 0 {
		t.Errorf("the %d held downloads: ReadFrom %d times, largest Write %d; want plain writes", held, heldReadFroms, heldWrites)
	}
	if lastReadFroms != 1 {
		t.Errorf("the download beside %d others: ReadFrom called %d times, want 1 (sendfile)", held, lastReadFroms)
	}
}

func mustRequest(t *testing.T, url, header string) *http.Request {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Error(err)
	}
	req.Header.Set(header, "1")
	return req
}
