package api_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestShortBodyIsTheClientsError: a body shorter than its Content-Length
// (the client closes its side early) or with broken chunked encoding was
// answered 500 with an ERROR log line, as if the registry had failed. It
// is the client's error: 400 with the route's code (BLOB_UPLOAD_INVALID
// for uploads, MANIFEST_INVALID for manifests), logged at INFO as such,
// and nothing is stored.
func TestShortBodyIsTheClientsError(t *testing.T) {
	root := t.TempDir()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(api.New(registry.New(d, registry.Options{}), api.WithLogger(log)))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, root: root}
	resp, body := e.do("POST", "/v2/app/blobs/uploads/", nil, nil)
	e.expect(resp, body, http.StatusAccepted, "")
	up := resp.Header.Get("Location")
	resp, body = e.do("PATCH", up, []byte("12345"), nil)
	e.expect(resp, body, http.StatusAccepted, "")
	before := e.snapshot()

	addr := strings.TrimPrefix(srv.URL, "http://")
	d1 := digestOf([]byte("0123456789"))
	for _, tc := range []struct {
		name, method, path, headers, body, code string
	}{
		{"chunk", "PATCH", up, "Content-Length: 100\r\n", "0123456789", "BLOB_UPLOAD_INVALID"},
		{"last chunk", "PUT", up + "?digest=" + d1, "Content-Length: 100\r\n", "0123456789", "BLOB_UPLOAD_INVALID"},
		{"monolithic", "POST", "/v2/app/blobs/uploads/?digest=" + d1, "Content-Length: 100\r\n", "0123456789", "BLOB_UPLOAD_INVALID"},
		{"broken chunked encoding", "PATCH", up, "Transfer-Encoding: chunked\r\n", "5\r\nabcde\r\nzz\r\n", "BLOB_UPLOAD_INVALID"},
		{"manifest", "PUT", "/v2/app/manifests/v1", "Content-Length: 100\r\nContent-Type: " + registry.MediaTypeOCIManifest + "\r\n", `{"schemaVersion":2`, "MANIFEST_INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: registry\r\n%s\r\n%s", tc.method, tc.path, tc.headers, tc.body)
			// The client gives up on the rest of its body.
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"code":"`+tc.code+`"`) {
				t.Fatalf("%d %s, want 400 %s", resp.StatusCode, b, tc.code)
			}
		})
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("the client's short bodies were logged as server errors:\n%s", logs.String())
	}
	if n := strings.Count(logs.String(), "client error: request body incomplete"); n != 5 {
		t.Fatalf("%d of 5 short bodies logged as the client's error:\n%s", n, logs.String())
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("short bodies changed the data directory:\n%s\n---\n%s", before, after)
	}
}
