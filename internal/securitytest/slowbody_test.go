package securitytest

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/auth"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/server"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// answerWait is how long a test waits for the server to answer or close.
// It is not a measurement: the server's own deadlines in these tests are
// a fraction of it (or, where the answer must not depend on them, far
// longer), so on a loaded machine a correct server is still well inside it.
const answerWait = 20 * time.Second

// dialFrom opens a connection to addr from the loopback address local
// (all of 127.0.0.0/8 is loopback on Linux): a different client address.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// answer reads the response on c and then waits for the server to close
// the connection, failing the test if either does not happen within
// answerWait. It returns the status and the body.
func answer(t *testing.T, c net.Conn) (int, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(answerWait))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", answerWait, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	// The request's body never came: the connection must not be kept for it.
	if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open %v after the answer (%d %s): %v", answerWait, resp.StatusCode, body, err)
	}
	return resp.StatusCode, body
}

// headersOnly sends a request's headers announcing a body of length
// bytes, and the first bytes of body (which may be empty), and nothing
// more: the body never completes.
func headersOnly(t *testing.T, c net.Conn, method, path, user, pass string, length int, first string) {
	t.Helper()
	var h strings.Builder
	fmt.Fprintf(&h, "%s %s HTTP/1.1\r\nHost: registry\r\nContent-Length: %d\r\n", method, path, length)
	if strings.Contains(path, "/manifests/") {
		h.WriteString("Content-Type: " + registry.MediaTypeOCIManifest + "\r\n")
	}
	if user != "" {
		h.WriteString("Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + "\r\n")
	}
	h.WriteString("\r\n" + first)
	if _, err := io.WriteString(c, h.String()); err != nil {
		t.Fatal(err)
	}
}

// TestSlowBodyIsCutOff is the slow-body attack of issue 10: connections
// that announce a body and send none (or a few bytes, then nothing) were
// held forever, past idleTimeout, unauthenticated too. Now a body that
// delivers nothing for BodyTimeout gets 408 with the route's error code
// and the connection is closed, and the upload session it was for keeps
// what it had.
func TestSlowBodyIsCutOff(t *testing.T) {
	root := t.TempDir()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	h := api.New(registry.New(d, registry.Options{}))
	addr := runServer(t, server.Options{ReadHeaderTimeout: 5 * time.Second, BodyTimeout: 200 * time.Millisecond}, h)
	c := &client{t: t, base: "http://" + addr}
	x := seed(t, c, "library/app")
	up := "/v2/library/app/blobs/uploads/" + x.upload
	if st, _, b := c.do("PATCH", up, []byte("12345"), nil); st != 202 {
		t.Fatalf("seeding the session: %d %s", st, b)
	}
	for _, tc := range []struct {
		name, method, path, first string
		code                      string
	}{
		{"chunk, nothing sent", "PATCH", up, "", "BLOB_UPLOAD_INVALID"},
		{"chunk, a few bytes then nothing", "PATCH", up, "67", "BLOB_UPLOAD_INVALID"},
		{"last chunk", "PUT", up + "?digest=" + x.layerD, "", "BLOB_UPLOAD_INVALID"},
		{"monolithic", "POST", "/v2/library/app/blobs/uploads/?digest=" + x.layerD, "", "BLOB_UPLOAD_INVALID"},
		{"manifest", "PUT", "/v2/library/app/manifests/v2", "{", "MANIFEST_INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := dialFrom(t, "127.0.0.1", addr)
			headersOnly(t, conn, tc.method, tc.path, "", "", 100, tc.first)
			st, body := answer(t, conn)
			if st != http.StatusRequestTimeout || errorCode(body) != tc.code {
				t.Fatalf("%d %s, want 408 %s", st, body, tc.code)
			}
		})
	}
	if st, hd, _ := c.do("GET", up, nil, nil); st != 204 || hd.Get("Range") != "0-4" {
		t.Fatalf("session after the slow bodies: %d Range %q", st, hd.Get("Range"))
	}
	if st, _, _ := c.do("GET", "/v2/library/app/manifests/v2", nil, nil); st != 404 {
		t.Fatalf("a manifest was stored from a body that never came: %d", st)
	}
}

// TestRefusedRequestDoesNotWaitForBody: a request refused before its body
// is read (not logged in, denied, over a size limit, unknown session) is
// answered at once and its connection closed. net/http reads what is left
// of a body after the answer to keep the connection alive, so such a
// request used to wait for a body the client never sends, holding the
// connection and the answer. BodyTimeout is far longer than the test
// waits here: the answer must not come from it.
func TestRefusedRequestDoesNotWaitForBody(t *testing.T) {
	root := t.TempDir()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	ac := matrixAuth()
	ac.Htpasswd = writeHtpasswd(t, matrixUsers)
	authn, err := auth.New(ac, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := api.New(registry.New(d, registry.Options{MaxBlobBytes: 1 << 20}), authn.APIOptions()...)
	addr := runServer(t, server.Options{ReadHeaderTimeout: 5 * time.Second, BodyTimeout: time.Hour}, h)
	alice := &client{t: t, base: "http://" + addr, user: "alice", pass: "alice-pw"}
	x := seed(t, alice, "team-a/app")
	up := "/v2/team-a/app/blobs/uploads/" + x.upload
	unknown := "/v2/team-a/app/blobs/uploads/00000000-0000-4000-8000-000000000000"
	for _, tc := range []struct {
		name, method, path, user, pass string
		length                         int
		status                         int
	}{
		{"anonymous chunk", "PATCH", up, "", "", 100, 401},
		{"anonymous manifest", "PUT", "/v2/team-a/app/manifests/v2", "", "", 100, 401},
		{"wrong password", "POST", "/v2/team-a/app/blobs/uploads/?digest=" + x.layerD, "alice", "nope", 100, 401},
		{"denied push", "PATCH", up, "bob", "bob-pw", 100, 403},
		{"announced over the blob limit", "PATCH", up, "alice", "alice-pw", 2 << 20, 413},
		{"unknown session", "PATCH", unknown, "alice", "alice-pw", 100, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := dialFrom(t, "127.0.0.1", addr)
			headersOnly(t, conn, tc.method, tc.path, tc.user, tc.pass, tc.length, "")
			if st, body := answer(t, conn); st != tc.status {
				t.Fatalf("%d %s, want %d", st, body, tc.status)
			}
		})
	}
}

// TestMovingBodyIsNotCutOff: the body deadline rolls forward as bytes
// arrive, so an upload that takes longer than BodyTimeout in all but never
// pauses that long gets through. (The pieces are 20 ms apart against a
// 2 s timeout: only a stall of the test process of two seconds could
// break it.)
func TestMovingBodyIsNotCutOff(t *testing.T) {
	root := t.TempDir()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 2 * time.Second
	addr := runServer(t, server.Options{ReadHeaderTimeout: 5 * time.Second, BodyTimeout: timeout}, api.New(registry.New(d, registry.Options{})))
	c := &client{t: t, base: "http://" + addr}
	st, hd, _ := c.do("POST", "/v2/slow/app/blobs/uploads/", nil, nil)
	if st != 202 {
		t.Fatal(st)
	}
	loc := hd.Get("Location")
	pr, pw := io.Pipe()
	var sent []byte
	go func() {
		start := time.Now()
		for i := 0; time.Since(start) < timeout*3/2; i++ {
			piece := []byte(fmt.Sprintf("piece %d;", i))
			if _, err := pw.Write(piece); err != nil {
				pw.CloseWithError(err)
				return
			}
			sent = append(sent, piece...)
			time.Sleep(20 * time.Millisecond)
		}
		pw.Close()
	}()
	req, err := http.NewRequest("PATCH", "http://"+addr+loc, pr)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("slow but moving upload: %d %s", resp.StatusCode, b)
	}
	// The pipe is closed once Do returned the answer to a fully sent body.
	if st, _, b := c.do("PUT", loc+"?digest="+digestOf(sent), nil, nil); st != 201 {
		t.Fatalf("finishing the slow upload (%d bytes): %d %s", len(sent), st, b)
	}
}

// TestConnectionsPerClient: one client address may hold at most
// MaxConnsPerClient connections; more are closed on accept, without an
// answer, while other addresses are served, and a closed connection frees
// its slot. Without the bound, 1,100 idle connections from one address
// exhausted a 1,024 descriptor limit and locked everyone out.
func TestConnectionsPerClient(t *testing.T) {
	const max = 3
	addr := runServer(t, server.Options{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Hour, MaxConnsPerClient: max},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	get := func(c net.Conn) (*bufio.Reader, error) {
		if _, err := io.WriteString(c, "GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n"); err != nil {
			return nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(answerWait))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return nil, err
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		return br, err
	}
	var held []net.Conn
	for i := 0; i < max; i++ {
		c := dialFrom(t, "127.0.0.1", addr)
		if _, err := get(c); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		held = append(held, c)
	}
	extra := dialFrom(t, "127.0.0.1", addr)
	if _, err := get(extra); err == nil {
		t.Fatalf("connection %d from one address was served", max+1)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection %d neither served nor closed within %v", max+1, answerWait)
	}
	if _, err := get(dialFrom(t, "127.0.0.2", addr)); err != nil {
		t.Fatalf("another address refused: %v", err)
	}
	// Give a slot back; the server notices the close on its side, so poll.
	held[0].Close()
	deadline := time.Now().Add(answerWait)
	for {
		if _, err := get(dialFrom(t, "127.0.0.1", addr)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection accepted within %v after one of %d was closed", answerWait, max)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
