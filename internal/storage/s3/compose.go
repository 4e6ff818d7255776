package s3

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/octoserve/octoserve/internal/storage"
)

// source is one object Compose reads, pinned to the ETag its HEAD gave:
// every copy and GET of it carries that ETag as a condition, so a source
// replaced meanwhile fails the Compose instead of mixing two objects.
type source struct {
	path, key, etag string
	size            int64
}

// Compose implements storage.Driver, copying inside the store wherever
// S3 allows: one source up to 5 GiB is one CopyObject; otherwise a
// multipart upload takes every run of at least 5 MiB that starts a part
// with UploadPartCopy and streams only the rest (small sources, and the
// few MiB needed to top a part up to 5 MiB) through the part buffer. So
// sources that are all at least 5 MiB but the last are copied without a
// byte passing through this process.
func (d *Driver) Compose(ctx context.Context, dst string, srcs []string) error {
	dkey, err := d.key(dst)
	if err != nil {
		return err
	}
	if len(srcs) == 0 {
		return fmt.Errorf("s3 compose %s: no sources", dst)
	}
	sources := make([]source, len(srcs))
	for i, p := range srcs {
		info, etag, err := d.head(ctx, p)
		if err != nil {
			return fmt.Errorf("s3 compose %s: %w", dst, err)
		}
		key, _ := d.key(p) // checked by head
		sources[i] = source{path: p, key: key, etag: etag, size: info.Size}
	}
	if len(sources) == 1 && sources[0].size <= d.copyObjectMax {
		return d.copyObject(ctx, dst, dkey, sources[0])
	}
	w := d.newWriter(ctx, dst, dkey, storage.Replace)
	for i, src := range sources {
		if err := w.appendObject(ctx, src, i == len(sources)-1); err != nil {
			_ = w.Cancel(ctx)
			return err
		}
	}
	return w.Commit(ctx)
}

// copyObject publishes a copy of src at dst.
func (d *Driver) copyObject(ctx context.Context, dst, dkey string, src source) error {
	_, err := d.client.CopyObject(ctx, &s3sdk.CopyObjectInput{
		Bucket:            &d.bucket,
		Key:               &dkey,
		CopySource:        aws.String(copySource(d.bucket, src.key)),
		CopySourceIfMatch: aws.String(quote(src.etag)),
		MetadataDirective: types.MetadataDirectiveReplace,
		ContentType:       aws.String("application/octet-stream"),
		Metadata:          map[string]string{tokenKey: newToken()},
	})
	if err != nil {
		return d.sourceError("compose "+dst+" from", src.path, err)
	}
	return nil
}

// appendObject adds src to the writer: a range that would start a part
// is copied in the store when it is at least 5 MiB (such a part may sit
// anywhere) or ends the object (the last part may be smaller); the rest
// is read through the buffer, which is first topped up to 5 MiB when
// what follows can then be copied.
func (w *writer) appendObject(ctx context.Context, src source, last bool) error {
	for pos := int64(0); pos < src.size; {
		if w.n >= minPartSize {
			if err := w.flush(ctx); err != nil {
				return err
			}
		}
		rest := src.size - pos
		if w.n == 0 && (rest >= minPartSize || last) {
			n := min(rest, w.d.copyPartMax)
			if err := w.copyPart(ctx, src, pos, n); err != nil {
				return err
			}
			pos += n
			continue
		}
		take := rest
		if topUp := int64(minPartSize - w.n); w.n > 0 && rest-topUp >= minPartSize {
			take = topUp
		}
		if err := w.stream(ctx, src, pos, take); err != nil {
			return err
		}
		pos += take
	}
	return nil
}

// stream reads bytes [from, from+n) of src into the buffer.
func (w *writer) stream(ctx context.Context, src source, from, n int64) error {
	out, err := w.d.client.GetObject(ctx, &s3sdk.GetObjectInput{
		Bucket:  &w.d.bucket,
		Key:     &src.key,
		Range:   aws.String(byteRange(from, n)),
		IfMatch: aws.String(quote(src.etag)),
	})
	if err != nil {
		return w.d.sourceError("compose "+w.path+" from", src.path, err)
	}
	defer out.Body.Close()
	if _, err := w.fill(ctx, out.Body, n); err != nil {
		return fmt.Errorf("s3 compose %s from %s: %w", w.path, src.path, err)
	}
	return nil
}

// sourceError wraps an error of a request that read a pinned source.
func (d *Driver) sourceError(op, p string, err error) error {
	if isPrecondition(err) {
		return fmt.Errorf("s3 %s %s: the source was replaced during the copy", op, p)
	}
	return d.wrap(op, p, err)
}

// copySource is the x-amz-copy-source of key: the bucket and the key,
// URL-encoded except for the slashes between elements.
func copySource(bucket, key string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.WriteString(bucket)
	b.WriteByte('/')
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
