package server

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// aLongTimeAgo is a read deadline that has already passed: a read on the
// connection fails at once.
var aLongTimeAgo = time.Unix(1, 0)

// bodyDeadlines makes request bodies keep moving and keeps a request that
// is answered before its body arrived from waiting for it.
//
// A body must deliver data within timeout of every read the handler makes:
// the read deadline is moved forward before each read, so an upload of
// any size works as long as bytes keep arriving, while a client that
// announces a body and sends nothing (or stops) is cut off after timeout.
// The time the handler spends between reads (on disk, on a lock) is not
// the client's and is not counted.
//
// Over HTTP/1, net/http reads whatever is left of a body after the handler
// answered, to keep the connection alive; a client that never sends it
// would hold the connection, and the answer, forever. When the handler
// returns without having read its body to the end, the read deadline is
// set in the past: the answer goes out and the connection is closed.
func bodyDeadlines(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		b := &deadlineBody{ReadCloser: r.Body, setDeadline: rc.SetReadDeadline, timeout: timeout, http1: r.ProtoMajor == 1}
		if b.http1 && timeout > 0 {
			// Bounds the case where the handler never reads the body but
			// net/http does, before a large answer is flushed.
			_ = rc.SetReadDeadline(time.Now().Add(timeout))
		}
		r.Body = b
		h.ServeHTTP(w, r)
		if b.http1 && !b.eof.Load() {
			_ = rc.SetReadDeadline(aLongTimeAgo)
		}
	})
}

// deadlineBody moves the connection's read deadline as the body is read.
type deadlineBody struct {
	io.ReadCloser
	setDeadline func(time.Time) error
	timeout     time.Duration
	http1       bool
	// eof is set once the body was read to its end: from then on net/http
	// reads the connection itself (to notice a client going away) and the
	// deadline is no longer this body's to touch.
	eof atomic.Bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.eof.Load() || b.timeout <= 0 {
		n, err := b.ReadCloser.Read(p)
		if err == io.EOF {
			b.eof.Store(true)
		}
		return n, err
	}
	_ = b.setDeadline(time.Now().Add(b.timeout))
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.eof.Store(true)
	case err == nil && !b.http1:
		// An HTTP/2 stream's deadline fires even while nobody reads;
		// the time until the next read is the handler's, not the client's.
		_ = b.setDeadline(time.Time{})
	}
	return n, err
}
