package upstreamtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Gate holds back the last bytes of a blob's responses until it is
// opened: a test proves with it that a client gets the first bytes of a
// blob before the upstream has sent the last.
type Gate struct {
	hold        int64
	reached     chan struct{}
	open        chan struct{}
	reachedOnce sync.Once
	openOnce    sync.Once
}

// Gate makes every GET of blob digest, resumed ones (Range) included,
// stop hold bytes before the blob's end until the gate opens.
func (f *Front) Gate(digest string, hold int64) *Gate {
	g := &Gate{hold: hold, reached: make(chan struct{}), open: make(chan struct{})}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gates[digest] = g
	return g
}

// Reached is closed once a response has sent everything but the held
// bytes.
func (g *Gate) Reached() <-chan struct{} { return g.reached }

// Open lets the held bytes go.
func (g *Gate) Open() { g.openOnce.Do(func() { close(g.open) }) }

// modifyResponse wraps the bodies of gated and corrupted blobs.
func (f *Front) modifyResponse(resp *http.Response) error {
	req := classify(resp.Request)
	if req.Kind != "blob" || resp.Request.Method != http.MethodGet {
		return nil
	}
	start, total := int64(0), resp.ContentLength
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusPartialContent: // a resumed transfer is held back as well
		var end int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &start, &end, &total); err != nil {
			return nil
		}
	default:
		return nil
	}
	f.mu.Lock()
	g, bad := f.gates[req.Ref], f.corrupt[req.Ref]
	cut, broken := f.breaks[req.Ref]
	delete(f.breaks, req.Ref)
	f.mu.Unlock()
	if broken && resp.ContentLength > cut {
		resp.Body = &breaker{ReadCloser: resp.Body, left: cut}
	}
	if bad && resp.ContentLength > 0 {
		resp.Body = &corrupter{ReadCloser: resp.Body, at: resp.ContentLength / 2}
	}
	if g != nil && total > g.hold {
		resp.Body = &gated{ReadCloser: resp.Body, g: g, left: max(total-g.hold-start, 0), ctx: resp.Request.Context()}
	}
	return nil
}

// gated passes left bytes, then waits for its gate.
type gated struct {
	io.ReadCloser
	g    *Gate
	left int64
	ctx  context.Context
}

func (r *gated) Read(p []byte) (int, error) {
	if r.left == 0 {
		r.g.reachedOnce.Do(func() { close(r.g.reached) })
		select {
		case <-r.g.open:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
		r.left = -1
	}
	if r.left > 0 && int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.ReadCloser.Read(p)
	if r.left > 0 {
		r.left -= int64(n)
	}
	return n, err
}

// corrupter flips the bits of the byte at offset at.
type corrupter struct {
	io.ReadCloser
	at, off int64
}

func (r *corrupter) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if r.at >= r.off && r.at < r.off+int64(n) {
		p[r.at-r.off] ^= 0xff
	}
	r.off += int64(n)
	return n, err
}

// BreakOnce makes the next GET of blob digest fail after sending after
// bytes: the connection is cut mid-body.
func (f *Front) BreakOnce(digest string, after int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.breaks[digest] = after
}

// breaker fails after left bytes.
type breaker struct {
	io.ReadCloser
	left int64
}

func (r *breaker) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, errors.New("upstreamtest: connection broken on purpose")
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.ReadCloser.Read(p)
	r.left -= int64(n)
	return n, err
}
