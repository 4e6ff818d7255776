package httplog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
)

// RequestIDHeader carries a request's ID, in the request (a client's or a
// proxy's, kept when sane) and in every response.
const RequestIDHeader = "X-Request-Id"

// entry is what the wrapper learns about a request while it is served.
// Handlers run on the request's goroutine before the wrapper reads it.
type entry struct {
	id   string
	user string
}

type entryKey struct{}

// SetUser records the authenticated caller of the request ctx belongs to,
// for its log line. The auth guard calls it; outside a wrapped request it
// does nothing.
func SetUser(ctx context.Context, user string) {
	if e, ok := ctx.Value(entryKey{}).(*entry); ok {
		e.user = user
	}
}

// RequestID returns the ID of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if e, ok := ctx.Value(entryKey{}).(*entry); ok {
		return e.id
	}
	return ""
}

// maxRequestIDLen bounds an incoming ID: a UUID, a trace ID or a proxy's
// ID fit; a client cannot make every log line long.
const maxRequestIDLen = 64

// requestID keeps an incoming ID made only of letters, digits and
// ".-_:" (nothing that could forge or break a log line) and no longer than
// maxRequestIDLen, else makes a new one: 16 random hex digits.
func requestID(incoming string) string {
	if saneRequestID(incoming) {
		return incoming
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func saneRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}

// WithRequestIDs wraps a slog handler so that every record logged with a
// request's context (an internal error logged by the API, a refused
// login) carries the request's ID, as its request line does.
func WithRequestIDs(h slog.Handler) slog.Handler { return idHandler{h} }

type idHandler struct{ slog.Handler }

func (h idHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("requestId", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h idHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return idHandler{h.Handler.WithAttrs(attrs)}
}

func (h idHandler) WithGroup(name string) slog.Handler { return idHandler{h.Handler.WithGroup(name)} }
