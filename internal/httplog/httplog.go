// Package httplog wraps the HTTP handler once per request: it gives the
// request an ID (returned in X-Request-Id), logs one line with log/slog
// when the request ends, and tells an Observer (the metrics) what it saw.
// Logging and metrics share this one wrapper, so a response is recorded
// by one ResponseWriter, not a stack of them.
package httplog

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Observer is told when each request starts and ends; internal/metrics
// implements it.
type Observer interface {
	Started(r *http.Request)
	Finished(r *http.Request, res Result)
}

// Result is what the wrapper saw of a finished request.
type Result struct {
	Status   int
	BytesIn  int64 // request body bytes the handler read
	BytesOut int64 // response body bytes written
	Duration time.Duration
}

// Option configures Handler.
type Option func(*handler)

// WithObserver tells o about every request.
func WithObserver(o Observer) Option { return func(h *handler) { h.obs = o } }

// WithQuietPaths logs requests for these exact paths (health probes,
// every few seconds) at debug level instead of info.
func WithQuietPaths(paths ...string) Option {
	return func(h *handler) {
		for _, p := range paths {
			h.quiet[p] = true
		}
	}
}

type handler struct {
	log   *slog.Logger
	next  http.Handler
	obs   Observer
	quiet map[string]bool
}

// Handler wraps next, logging method, path, the query parameters that
// identify what a request did (never credentials), status, bytes, the
// authenticated user, duration and the request ID.
func Handler(log *slog.Logger, next http.Handler, opts ...Option) http.Handler {
	h := &handler{log: log, next: next, quiet: map[string]bool{}}
	for _, o := range opts {
		o(h)
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ex := &exchange{
		recorder: recorder{ResponseWriter: w},
		entry:    entry{id: requestID(r.Header.Get(RequestIDHeader))},
	}
	w.Header().Set(RequestIDHeader, ex.entry.id)
	r = r.WithContext(context.WithValue(r.Context(), entryKey{}, &ex.entry))
	if r.Body != nil && r.Body != http.NoBody {
		ex.body.ReadCloser = r.Body
		r.Body = &ex.body
	}
	if h.obs != nil {
		h.obs.Started(r)
	}
	h.next.ServeHTTP(&ex.recorder, r)
	if ex.status == 0 {
		ex.status = http.StatusOK
	}
	res := Result{Status: ex.status, BytesIn: ex.body.n, BytesOut: ex.bytes, Duration: time.Since(start)}
	if h.obs != nil {
		h.obs.Finished(r, res)
	}
	h.logRequest(r, &ex.entry, res)
}

func (h *handler) logRequest(r *http.Request, e *entry, res Result) {
	level := slog.LevelInfo
	if h.quiet[r.URL.Path] {
		level = slog.LevelDebug
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
	}
	if q := loggedQuery(r.URL); q != "" {
		attrs = append(attrs, slog.String("query", q))
	}
	attrs = append(attrs,
		slog.Int("status", res.Status),
		slog.Int64("bytes", res.BytesOut),
		slog.Int64("bytesIn", res.BytesIn),
		slog.Duration("duration", res.Duration),
		slog.String("remote", r.RemoteAddr),
	)
	if e.user != "" {
		attrs = append(attrs, slog.String("user", e.user))
	}
	attrs = append(attrs, slog.String("requestId", e.id))
	// Not r.Context(): WithRequestIDs would add the ID a second time.
	h.log.LogAttrs(context.Background(), level, "request", attrs...)
}

// loggedParams are the query parameters of the distribution API; nothing
// else of a query is logged, so that a client putting a token or password
// in its URL does not find it in the log.
var loggedParams = []string{"mount", "from", "digest", "n", "last", "artifactType"}

func loggedQuery(u *url.URL) string {
	if u.RawQuery == "" {
		return ""
	}
	q := u.Query()
	kept := url.Values{}
	for _, k := range loggedParams {
		if v, ok := q[k]; ok {
			kept[k] = v
		}
	}
	return kept.Encode()
}

// exchange is everything the wrapper keeps for one request, in one
// allocation.
type exchange struct {
	recorder
	entry entry
	body  countingBody
}

// countingBody counts the request body bytes the handler reads.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// recorder captures status and size. It forwards ReadFrom so that it
// never changes how a handler's body reaches the connection (the kernel's
// sendfile path for an *os.File, when the handler copies one).
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(r.ResponseWriter, src)
	}
	r.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
