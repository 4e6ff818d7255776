package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/octoserve/octoserve/internal/storage"
)

// Reader implements storage.Driver. The object is described by a HEAD;
// its bytes are fetched by a ranged GET from the current offset at the
// first Read after a Seek, so http.ServeContent's seek to the end (for
// the size) and back to the range start costs no request. Every GET
// carries If-Match with the HEAD's ETag: if the object is replaced while
// it is read, Read fails rather than mix two objects.
func (d *Driver) Reader(ctx context.Context, p string) (io.ReadSeekCloser, storage.Info, error) {
	info, etag, err := d.head(ctx, p)
	if err != nil {
		return nil, storage.Info{}, err
	}
	key, _ := d.key(p) // checked by head
	return &reader{d: d, ctx: ctx, path: p, key: key, etag: etag, size: info.Size}, info, nil
}

type reader struct {
	d    *Driver
	ctx  context.Context // the caller's, for the GETs of later Reads
	path string
	key  string
	etag string
	size int64

	off    int64         // where the next Read starts
	body   io.ReadCloser // open GET whose next byte is at off, or nil
	closed bool
}

func (r *reader) Read(b []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("s3 read %s: reader is closed", r.path)
	}
	if r.off >= r.size {
		return 0, io.EOF
	}
	if len(b) == 0 {
		return 0, nil
	}
	if r.body == nil {
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	n, err := r.body.Read(b)
	r.off += int64(n)
	switch {
	case errors.Is(err, io.EOF) && r.off < r.size:
		r.drop()
		return n, fmt.Errorf("s3 read %s: body ended at %d of %d bytes: %w", r.path, r.off, r.size, io.ErrUnexpectedEOF)
	case errors.Is(err, io.EOF):
		r.drop()
		if n > 0 {
			return n, nil // the next Read says EOF
		}
		return 0, io.EOF
	case err != nil:
		r.drop() // a later Read asks again from off
		return n, r.d.wrap("read", r.path, err)
	}
	return n, nil
}

// open starts a GET of the bytes from off to the end.
func (r *reader) open() error {
	out, err := r.d.client.GetObject(r.ctx, &s3sdk.GetObjectInput{
		Bucket:  &r.d.bucket,
		Key:     &r.key,
		Range:   aws.String("bytes=" + strconv.FormatInt(r.off, 10) + "-"),
		IfMatch: aws.String(quote(r.etag)),
	})
	if isPrecondition(err) {
		return fmt.Errorf("s3 read %s: the object was replaced while it was read", r.path)
	}
	if err != nil {
		return r.d.wrap("read", r.path, err)
	}
	r.body = out.Body
	return nil
}

func (r *reader) drop() {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
}

func (r *reader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, fmt.Errorf("s3 seek %s: reader is closed", r.path)
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, fmt.Errorf("s3 seek %s: invalid whence %d", r.path, whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("s3 seek %s: negative position %d", r.path, abs)
	}
	if abs != r.off {
		r.drop()
		r.off = abs
	}
	return abs, nil
}

func (r *reader) Close() error {
	r.drop()
	r.closed = true
	return nil
}
