package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/octoserve/octoserve/internal/storage"
)

// cleanupTimeout bounds an abort sent after the caller's context ended.
const cleanupTimeout = 30 * time.Second

// Writer implements storage.Driver. See writer for how it stores.
func (d *Driver) Writer(ctx context.Context, p string, mode storage.WriteMode) (storage.Writer, error) {
	key, err := d.key(p)
	if err != nil {
		return nil, err
	}
	return d.newWriter(ctx, p, key, mode), nil
}

func (d *Driver) newWriter(ctx context.Context, p, key string, mode storage.WriteMode) *writer {
	return &writer{d: d, ctx: ctx, path: p, key: key, create: mode == storage.Create, token: newToken()}
}

// writer fills one part buffer (taken from the driver's pool once the
// object outgrows a small first buffer, returned at Commit or Cancel). An
// object that fits in it is one PutObject at Commit; a larger one becomes
// a multipart upload, which S3 keeps invisible until
// CompleteMultipartUpload.
type writer struct {
	d      *Driver
	ctx    context.Context // the Writer call's: for the parts Write sends
	path   string
	key    string
	create bool   // If-None-Match: * at Commit
	token  string // the object's x-amz-meta-octoserve-write

	buf      *[]byte // part buffer, nil before the first byte and once released
	small    bool    // buf is the small first buffer
	n        int     // bytes in buf
	size     int64
	uploadID string // "" until the first part is sent
	parts    []types.CompletedPart
	err      error // first failure: the writer is then only good for Cancel
	done     bool
}

func (w *writer) Size() int64 { return w.size }

func (w *writer) usable() error {
	switch {
	case w.done:
		return fmt.Errorf("s3 write %s: writer already committed or cancelled", w.path)
	case w.err != nil:
		return w.err
	}
	return nil
}

func (w *writer) Write(b []byte) (int, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	written := 0
	for len(b) > 0 {
		buf := w.buffer()
		c := copy(buf[w.n:], b)
		w.n += c
		w.size += int64(c)
		written += c
		b = b[c:]
		if w.n == w.d.partSize {
			if err := w.flush(w.ctx); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// ReadFrom reads r to its end straight into the part buffer, so that
// io.Copy into a writer copies each byte once.
func (w *writer) ReadFrom(r io.Reader) (int64, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	return w.fill(w.ctx, r, -1)
}

// fill reads n bytes of r (n < 0: up to EOF) into the buffer, sending
// each part as it fills.
func (w *writer) fill(ctx context.Context, r io.Reader, n int64) (int64, error) {
	var total int64
	for n < 0 || total < n {
		buf := w.buffer()
		room := buf[w.n:]
		if n >= 0 && int64(len(room)) > n-total {
			room = room[:n-total]
		}
		c, err := io.ReadFull(r, room)
		w.n += c
		w.size += int64(c)
		total += int64(c)
		if w.n == w.d.partSize {
			if ferr := w.flush(ctx); ferr != nil {
				return total, ferr
			}
		}
		switch {
		case n < 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
			return total, nil
		case errors.Is(err, io.EOF):
			return total, io.ErrUnexpectedEOF
		case err != nil:
			return total, err
		}
	}
	return total, nil
}

// smallBuffer holds a writer's first bytes: most objects written through
// a Writer (small blobs, upload chunks of small clients) fit in it, and do
// not each hold a part buffer (8 MiB by default) while they arrive.
const smallBuffer = 64 << 10

// buffer returns the buffer to write into: the small first buffer, then,
// once that is full, a part buffer from the pool holding what it held.
func (w *writer) buffer() []byte {
	switch {
	case w.buf == nil && w.d.partSize <= smallBuffer:
		w.buf = w.d.pool.Get().(*[]byte)
	case w.buf == nil:
		w.buf, w.small = w.d.small.Get().(*[]byte), true
	case w.small && w.n == len(*w.buf):
		part := w.d.pool.Get().(*[]byte)
		copy(*part, (*w.buf)[:w.n])
		w.d.small.Put(w.buf)
		w.buf, w.small = part, false
	}
	return *w.buf
}

// release gives the buffer back. After a failed request it is dropped
// instead: the HTTP transport may still be reading a body it was sending.
func (w *writer) release() {
	if w.buf != nil && w.err == nil {
		if w.small {
			w.d.small.Put(w.buf)
		} else {
			w.d.pool.Put(w.buf)
		}
	}
	w.buf = nil
	w.done = true
}

// fail records the writer's first failure.
func (w *writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

// flush sends the buffered bytes as the next part.
func (w *writer) flush(ctx context.Context) error {
	if w.n == 0 {
		return nil
	}
	if err := w.startUpload(ctx); err != nil {
		return err
	}
	num := aws.Int32(int32(len(w.parts) + 1))
	out, err := w.d.client.UploadPart(ctx, &s3sdk.UploadPartInput{
		Bucket:        &w.d.bucket,
		Key:           &w.key,
		UploadId:      &w.uploadID,
		PartNumber:    num,
		Body:          bytes.NewReader((*w.buf)[:w.n]),
		ContentLength: aws.Int64(int64(w.n)),
	})
	if err != nil {
		return w.fail(w.d.wrap("upload part "+strconv.Itoa(int(*num))+" of", w.path, err))
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: num})
	w.n = 0
	return nil
}

// startUpload starts the multipart upload if it is not yet, and refuses
// a part beyond S3's 10,000.
func (w *writer) startUpload(ctx context.Context) error {
	if len(w.parts) == maxParts {
		return w.fail(fmt.Errorf("s3 write %s: more than %d parts of %d bytes: raise storage.s3.partSize",
			w.path, maxParts, w.d.partSize))
	}
	if w.uploadID != "" {
		return nil
	}
	out, err := w.d.client.CreateMultipartUpload(ctx, &s3sdk.CreateMultipartUploadInput{
		Bucket:      &w.d.bucket,
		Key:         &w.key,
		ContentType: aws.String("application/octet-stream"),
		Metadata:    map[string]string{tokenKey: w.token},
	})
	if err != nil {
		return w.fail(w.d.wrap("start upload of", w.path, err))
	}
	w.uploadID = aws.ToString(out.UploadId)
	return nil
}

// copyPart adds bytes [from, from+n) of src as the next part, copied
// inside the store; n is at least 5 MiB.
func (w *writer) copyPart(ctx context.Context, src source, from, n int64) error {
	if err := w.startUpload(ctx); err != nil {
		return err
	}
	num := aws.Int32(int32(len(w.parts) + 1))
	out, err := w.d.client.UploadPartCopy(ctx, &s3sdk.UploadPartCopyInput{
		Bucket:            &w.d.bucket,
		Key:               &w.key,
		UploadId:          &w.uploadID,
		PartNumber:        num,
		CopySource:        aws.String(copySource(w.d.bucket, src.key)),
		CopySourceRange:   aws.String(byteRange(from, n)),
		CopySourceIfMatch: aws.String(quote(src.etag)),
	})
	if err != nil {
		return w.fail(w.d.sourceError("copy part of "+w.path+" from", src.path, err))
	}
	if out.CopyPartResult == nil {
		return w.fail(fmt.Errorf("s3 copy part of %s from %s: no result in the answer", w.path, src.path))
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: num})
	w.size += n
	return nil
}

// Commit implements storage.Writer; it releases the writer whatever
// happens, and aborts the multipart upload unless it published it.
func (w *writer) Commit(ctx context.Context) error {
	if w.done {
		return w.usable()
	}
	defer w.release()
	if w.err != nil {
		_ = w.abort(ctx)
		return w.err
	}
	if w.uploadID == "" {
		return w.putWhole(ctx)
	}
	err := w.flush(ctx)
	if err == nil {
		err = w.complete(ctx)
	}
	if err != nil {
		_ = w.abort(ctx)
	}
	return err
}

// putWhole publishes an object that fitted in the buffer.
func (w *writer) putWhole(ctx context.Context) error {
	var data []byte
	if w.buf != nil {
		data = (*w.buf)[:w.n]
	}
	in := w.d.putInput(w.key, data, w.token)
	if w.create {
		in.IfNoneMatch = aws.String("*")
	}
	_, err := w.d.client.PutObject(ctx, in)
	if err != nil {
		w.fail(err)
	}
	if w.create {
		return w.d.conditionFailed(ctx, "commit", w.path, w.key, w.token, true, err)
	}
	return w.d.wrap("commit", w.path, err)
}

// complete publishes the multipart upload.
func (w *writer) complete(ctx context.Context) error {
	in := &s3sdk.CompleteMultipartUploadInput{
		Bucket:          &w.d.bucket,
		Key:             &w.key,
		UploadId:        &w.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
	}
	if w.create {
		in.IfNoneMatch = aws.String("*")
	}
	_, err := w.d.client.CompleteMultipartUpload(ctx, in)
	if isNoSuchUpload(err) && w.d.hasToken(ctx, w.key, w.token) {
		err = nil // the SDK retried a Complete whose answer was lost
	}
	if err == nil {
		w.uploadID = "" // published: nothing to abort
		return nil
	}
	w.fail(err)
	if w.create {
		return w.d.conditionFailed(ctx, "commit", w.path, w.key, w.token, true, err)
	}
	return w.d.wrap("complete upload of", w.path, err)
}

// Cancel implements storage.Writer.
func (w *writer) Cancel(ctx context.Context) error {
	if w.done {
		return nil
	}
	err := w.abort(ctx)
	w.release()
	return err
}

// abort discards the multipart upload, if any, even when ctx has ended.
func (w *writer) abort(ctx context.Context) error {
	if w.uploadID == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, err := w.d.client.AbortMultipartUpload(ctx, &s3sdk.AbortMultipartUploadInput{
		Bucket:   &w.d.bucket,
		Key:      &w.key,
		UploadId: &w.uploadID,
	})
	if err != nil && !isNoSuchUpload(err) {
		return w.d.wrap("abort upload of", w.path, err)
	}
	w.uploadID = ""
	return nil
}

func isNoSuchUpload(err error) bool {
	code, _ := errorCode(err)
	return code == "NoSuchUpload"
}

// byteRange is an HTTP range of n bytes from from.
func byteRange(from, n int64) string {
	return "bytes=" + strconv.FormatInt(from, 10) + "-" + strconv.FormatInt(from+n-1, 10)
}
