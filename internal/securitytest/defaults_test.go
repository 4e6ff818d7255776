package securitytest

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/config"
)

// TestDefaultBlobLimit runs the binary with no configuration at all: a
// blob announced as 10^18 bytes used to be accepted (no limit by default),
// and the server then waited for its body. Now the default
// validation.maxBlobBytes refuses it at once with 413 SIZE_INVALID, in a
// monolithic upload and in a chunk of a session.
func TestDefaultBlobLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if config.Default().Validation.MaxBlobBytes <= 0 {
		t.Fatal("no default blob size limit")
	}
	addr := startBinary(t, "--root", filepath.Join(t.TempDir(), "data"))
	c := &client{t: t, base: "http://" + addr}
	st, h, _ := c.do("POST", "/v2/library/app/blobs/uploads/", nil, nil)
	if st != 202 {
		t.Fatalf("starting an upload: %d", st)
	}
	for _, target := range []string{
		"POST /v2/library/app/blobs/uploads/?digest=sha256:" + strings.Repeat("0", 64),
		"PATCH " + h.Get("Location"),
	} {
		conn := dialFrom(t, "127.0.0.1", addr)
		fmt.Fprintf(conn, "%s HTTP/1.1\r\nHost: registry\r\nContent-Length: 1000000000000000000\r\n\r\nsome bytes", target)
		_ = conn.SetReadDeadline(time.Now().Add(answerWait))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s with a 10^18-byte body: no answer within %v: %v", target, answerWait, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || errorCode(body) != "SIZE_INVALID" {
			t.Fatalf("%s with a 10^18-byte body: %d %s", target, resp.StatusCode, body)
		}
	}
}
