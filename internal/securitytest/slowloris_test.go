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

// TestHeaderLimitAndTimeouts checks the server's protections below the
// API: request headers over MaxHeaderBytes get 431, a client that never
// finishes its headers (slow loris) is cut off after ReadHeaderTimeout,
// and an idle keep-alive connection is closed after IdleTimeout.
func TestHeaderLimitAndTimeouts(t *testing.T) {
	addr := runServer(t, server.Options{
		MaxHeaderBytes:    4 << 10,
		ReadHeaderTimeout: 300 * time.Millisecond,
		IdleTimeout:       300 * time.Millisecond,
	}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))

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

	// Slow loris: headers started, never finished.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte("GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn)
	if elapsed := time.Since(start); err != nil || elapsed > 3*time.Second {
		t.Fatalf("slow client not cut off: %v after %v", err, elapsed)
	}

	// Idle keep-alive connection.
	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	if _, err := conn2.Write([]byte("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn2)
	r2, err := http.ReadResponse(br, nil)
	if err != nil || r2.StatusCode != 200 {
		t.Fatalf("first request: %v", err)
	}
	r2.Body.Close()
	start = time.Now()
	_ = conn2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF || time.Since(start) > 3*time.Second {
		t.Fatalf("idle connection not closed: %v after %v", err, time.Since(start))
	}
}
