package securitytest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/server"
)

// serverActsWithin bounds how long a check waits for the server to close a
// connection. The timeouts under test are far shorter (300ms), so this
// only ends a check of a server that never acts; nothing is timed, and a
// loaded machine has all the room it needs.
const serverActsWithin = time.Minute

// TestHeaderLimitAndTimeouts checks the server's protections below the
// API: request headers over MaxHeaderBytes get 431, a client that never
// finishes its headers (slow loris) is cut off after ReadHeaderTimeout,
// and an idle keep-alive connection is closed after IdleTimeout. Each
// runs on a server where only the protection under test is short, so a
// slow machine cannot trip another one first.
func TestHeaderLimitAndTimeouts(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	relaxed := server.Options{MaxHeaderBytes: 1 << 20, ReadHeaderTimeout: time.Hour, IdleTimeout: time.Hour}

	t.Run("header limit", func(t *testing.T) {
		opts := relaxed
		opts.MaxHeaderBytes = 4 << 10
		addr := runServer(t, opts, ok)
		req, _ := http.NewRequest("GET", "http://"+addr+"/v2/", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 16<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("oversized headers: %d", resp.StatusCode)
		}
	})

	t.Run("slow loris", func(t *testing.T) {
		opts := relaxed
		opts.ReadHeaderTimeout = 300 * time.Millisecond
		addr := runServer(t, opts, ok)
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// Headers started, never finished.
		if _, err := conn.Write([]byte("GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(serverActsWithin))
		if _, err := io.ReadAll(conn); err != nil {
			t.Fatalf("slow client not cut off by the server: %v", err)
		}
	})

	t.Run("idle keep-alive", func(t *testing.T) {
		opts := relaxed
		opts.IdleTimeout = 300 * time.Millisecond
		addr := runServer(t, opts, ok)
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("first request: %v", err)
		}
		resp.Body.Close()
		_ = conn.SetReadDeadline(time.Now().Add(serverActsWithin))
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("idle connection not closed by the server: %v", err)
		}
	})
}
