// Package upstreamtest is the upstream side of the pull-through cache's
// tests (internal/proxy, e2e): a real registry — the reference registry
// (StartReference) or an octoserve — behind a front door that behaves like
// Docker Hub's. Nothing in it reaches beyond loopback.
//
// The front (Front) answers a request without a token 401 with a
// "WWW-Authenticate: Bearer realm=...,service=...,scope=..." challenge,
// hands out tokens scoped to repositories and actions at its token
// endpoint (asking for basic credentials when it has users), checks them,
// and forwards what they allow to the registry behind it. It counts every
// request, and a test can make it answer 429, hang up, hang, hold back the
// last bytes of a blob until told to go on, or corrupt a blob.
package upstreamtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mode is how the front answers registry requests.
type Mode int

// The modes.
const (
	Up              Mode = iota // forward what the token allows
	TooManyRequests             // 429 TOOMANYREQUESTS, as Docker Hub's pull limit does
	Down                        // close the connection without an answer
	Hang                        // answer nothing until the client gives up
)

// Service is the service name of the front's challenges and tokens.
const Service = "upstreamtest.registry"

// tokenLife is how long a token is valid.
const tokenLife = 5 * time.Minute

// Request is one request the front received.
type Request struct {
	Method string
	Kind   string // "token", "base", "manifest", "blob", "tags", "upload", "other"
	Repo   string
	Ref    string // tag or digest
	Status int
	Range  string
}

// Front is a Docker Hub-like front door to a registry.
type Front struct {
	URL string // http://127.0.0.1:port

	srv     *httptest.Server
	forward *httputil.ReverseProxy
	users   map[string]string

	mu       sync.Mutex
	mode     Mode
	grants   map[string]grant // token -> what it allows
	requests []Request
	gates    map[string]*Gate
	corrupt  map[string]bool
	breaks   map[string]int64
}

type grant struct {
	actions map[string]map[string]bool // repository -> action -> allowed
	expires time.Time
}

// Options configure a Front.
type Options struct {
	// Users (name -> password) makes the token endpoint require basic
	// credentials for anything but anonymous pulls; nil grants pulls to
	// anyone, like Docker Hub for public images.
	Users map[string]string
	// PrivatePrefix: repositories under it are pulled only with
	// credentials.
	PrivatePrefix string
}

// Start starts a front on a loopback port forwarding to the registry at
// backend (a base URL); it is stopped when the test ends.
func Start(t testing.TB, backend string, opts Options) *Front {
	t.Helper()
	target, err := url.Parse(backend)
	if err != nil {
		t.Fatalf("upstreamtest: backend %q: %v", backend, err)
	}
	f := &Front{users: opts.Users, grants: map[string]grant{}, gates: map[string]*Gate{}, corrupt: map[string]bool{}, breaks: map[string]int64{}}
	f.forward = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Del("Authorization")
		},
		// Bytes go on as they come: the gate test needs them to.
		FlushInterval:  -1,
		ModifyResponse: f.modifyResponse,
		ErrorLog:       log.New(io.Discard, "", 0), // broken transfers are on purpose
	}
	private := opts.PrivatePrefix
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.serve(w, r, private)
	}))
	// Bound to 127.0.0.1 explicitly: httptest would do the same, this
	// just says so.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Listener.Close()
	f.srv.Listener = ln
	f.srv.Start()
	f.URL = f.srv.URL
	t.Cleanup(f.Close)
	return f
}

// Close stops the front, releasing held requests.
func (f *Front) Close() {
	f.SetMode(Up)
	f.mu.Lock()
	for _, g := range f.gates {
		g.Open()
	}
	f.mu.Unlock()
	f.srv.CloseClientConnections()
	f.srv.Close()
}

// Host is the front's host:port.
func (f *Front) Host() string { return strings.TrimPrefix(f.URL, "http://") }

// SetMode changes how registry requests are answered from now on.
func (f *Front) SetMode(m Mode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = m
}

// Requests returns the requests received so far that match keep (all
// when keep is nil).
func (f *Front) Requests(keep func(Request) bool) []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Request
	for _, r := range f.requests {
		if keep == nil || keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// Count is how many requests of kind (and method, unless "") came,
// leaving out those answered with an authentication challenge (401): a
// client sends each of those again with a token.
func (f *Front) Count(kind, method string) int {
	return len(f.Requests(func(r Request) bool {
		return r.Kind == kind && (method == "" || r.Method == method) && r.Status != http.StatusUnauthorized
	}))
}

// Reset forgets the requests counted so far.
func (f *Front) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = nil
}

// Corrupt makes the front change one byte in the middle of blob digest
// whenever it is sent.
func (f *Front) Corrupt(digest string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.corrupt[digest] = true
}

func (f *Front) serve(w http.ResponseWriter, r *http.Request, private string) {
	req := classify(r)
	// A request is counted when its status is sent, before the client can
	// see the answer: a test that got an answer finds the request counted.
	rec := &statusRecorder{ResponseWriter: w, sent: func(status int) {
		req.Status = status
		f.mu.Lock()
		f.requests = append(f.requests, req)
		f.mu.Unlock()
	}}
	f.mu.Lock()
	mode := f.mode
	f.mu.Unlock()
	switch mode {
	case Down:
		rec.sent(0)
		hangUp(w)
		return
	case Hang:
		rec.sent(0)
		<-r.Context().Done()
		return
	}
	defer rec.finish()
	if req.Kind == "token" {
		f.token(rec, r, private)
		return
	}
	if mode == TooManyRequests {
		writeError(rec, http.StatusTooManyRequests, "TOOMANYREQUESTS", "You have reached your pull rate limit.")
		return
	}
	if !f.authorized(r, req) {
		f.challenge(rec, r, req)
		return
	}
	f.forward.ServeHTTP(rec, r)
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// classify names what a request addresses.
func classify(r *http.Request) Request {
	req := Request{Method: r.Method, Kind: "other", Range: r.Header.Get("Range")}
	p := r.URL.Path
	switch {
	case p == "/token":
		req.Kind = "token"
		return req
	case p == "/v2/" || p == "/v2":
		req.Kind = "base"
		return req
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return req
	}
	seg := strings.Split(rest, "/")
	n := len(seg)
	switch {
	case n >= 3 && seg[n-3] == "blobs" && seg[n-2] == "uploads":
		req.Kind, req.Repo = "upload", strings.Join(seg[:n-3], "/")
	case n >= 3 && seg[n-2] == "blobs" && seg[n-1] == "uploads":
		req.Kind, req.Repo = "upload", strings.Join(seg[:n-2], "/")
	case n >= 3 && seg[n-2] == "blobs":
		req.Kind, req.Repo, req.Ref = "blob", strings.Join(seg[:n-2], "/"), seg[n-1]
	case n >= 3 && seg[n-2] == "manifests":
		req.Kind, req.Repo, req.Ref = "manifest", strings.Join(seg[:n-2], "/"), seg[n-1]
	case n >= 3 && seg[n-2] == "tags":
		req.Kind, req.Repo = "tags", strings.Join(seg[:n-2], "/")
	}
	return req
}

// action is what a registry request needs its token to allow.
func action(r *http.Request) string {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return "pull"
	}
	return "push"
}

func (f *Front) authorized(r *http.Request, req Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	f.mu.Lock()
	g, ok := f.grants[tok]
	f.mu.Unlock()
	if !ok || time.Now().After(g.expires) {
		return false
	}
	if req.Kind == "base" {
		return true
	}
	return g.actions[req.Repo][action(r)]
}

func (f *Front) challenge(w http.ResponseWriter, r *http.Request, req Request) {
	h := fmt.Sprintf(`Bearer realm="%s/token",service="%s"`, f.URL, Service)
	if req.Repo != "" {
		h += fmt.Sprintf(`,scope="repository:%s:%s"`, req.Repo, action(r))
	}
	w.Header().Set("WWW-Authenticate", h)
	writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
}

// token is the token endpoint: every scope asked for is granted to a
// user with the right password; pulls of repositories outside private
// are granted to anyone.
func (f *Front) token(w http.ResponseWriter, r *http.Request, private string) {
	q := r.URL.Query()
	if q.Get("service") != Service {
		writeError(w, http.StatusBadRequest, "UNSUPPORTED", "unknown service "+q.Get("service"))
		return
	}
	user, pass, hasUser := r.BasicAuth()
	if hasUser && (f.users == nil || f.users[user] != pass) {
		w.Header().Set("WWW-Authenticate", `Basic realm="upstreamtest"`)
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "wrong credentials")
		return
	}
	g := grant{actions: map[string]map[string]bool{}, expires: time.Now().Add(tokenLife)}
	for _, scope := range q["scope"] {
		parts := strings.Split(scope, ":")
		if len(parts) != 3 || parts[0] != "repository" {
			continue
		}
		repo := parts[1]
		for _, a := range strings.Split(parts[2], ",") {
			if hasUser || (a == "pull" && (private == "" || !strings.HasPrefix(repo, private))) {
				if g.actions[repo] == nil {
					g.actions[repo] = map[string]bool{}
				}
				g.actions[repo][a] = true
			}
		}
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	f.mu.Lock()
	f.grants[tok] = g
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token": tok, "access_token": tok, "expires_in": int(tokenLife / time.Second),
		"issued_at": time.Now().UTC().Format(time.RFC3339),
	})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// statusRecorder reports the status of a response as it is sent.
type statusRecorder struct {
	http.ResponseWriter
	sent     func(status int)
	reported bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.reported && code >= 200 {
		s.reported = true
		s.sent(code)
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if !s.reported {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

// finish reports a response that sent nothing (an aborted proxy request).
func (s *statusRecorder) finish() {
	if !s.reported {
		s.reported = true
		s.sent(0)
	}
}

func (s *statusRecorder) Flush() {
	if fl, ok := s.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
