package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/octoserve/octoserve/internal/ocierr"
)

// limit is how many bytes one chunk may add to an upload under
// Options.MaxChunkBytes and Options.MaxBlobBytes.
type limit struct {
	n     int64 // bytes allowed; -1: no limit
	err   *ocierr.Error
	total bool // exceeding n exceeds the blob limit
	hit   bool // the chunk was found to exceed n
}

func errTooLarge(what string, max int64) *ocierr.Error {
	return ocierr.New(ocierr.SizeInvalid, http.StatusRequestEntityTooLarge, "%s exceeds the limit of %d bytes", what, max)
}

// chunkLimit returns the limit for a chunk appended to an upload holding
// size bytes; announced (-1: unknown) is the length the client declared,
// and a declared length over the limit is refused before reading a byte.
func (r *Registry) chunkLimit(size, announced int64) *limit {
	l := &limit{n: -1}
	if m := r.opts.MaxChunkBytes; m > 0 {
		l.n, l.err = m, errTooLarge("upload chunk", m)
	}
	if m := r.opts.MaxBlobBytes; m > 0 && (l.n < 0 || m-size < l.n) {
		l.n, l.err, l.total = max(m-size, 0), errTooLarge("blob", m), true
	}
	l.hit = l.n >= 0 && announced > l.n
	return l
}

// wrap returns body limited to l: reading past l.n fails with l.err.
func (l *limit) wrap(body io.Reader) io.Reader {
	if l.n < 0 {
		return body
	}
	return &capped{r: body, l: l, left: l.n}
}

type capped struct {
	r    io.Reader
	l    *limit
	left int64
}

func (c *capped) Read(p []byte) (int, error) {
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	if int64(n) > c.left {
		c.l.hit = true
		return int(c.left), c.l.err
	}
	c.left -= int64(n)
	return n, err
}

// oversize answers a chunk refused by l; the chunk's bytes were never
// stored. An upload that would exceed the blob limit can never finish, so
// it is dropped with all its data; a chunk over the chunk limit leaves the
// session as it was, for the client to retry in smaller parts.
func (r *Registry) oversize(ctx context.Context, s *session, l *limit) error {
	if l.total {
		if err := r.dropSession(ctx, s); err != nil {
			return fmt.Errorf("%w (and %v)", l.err, err)
		}
	}
	return l.err
}
