package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/octoserve/octoserve/internal/storage"
)

// GetContent implements storage.Driver.
func (d *Driver) GetContent(ctx context.Context, p string) ([]byte, error) {
	b, _, err := d.GetVersioned(ctx, p)
	return b, err
}

// GetVersioned implements storage.Driver: the version is the ETag that
// came with the bytes, so the two always match.
func (d *Driver) GetVersioned(ctx context.Context, p string) ([]byte, storage.Version, error) {
	key, err := d.key(p)
	if err != nil {
		return nil, storage.Absent, err
	}
	out, err := d.client.GetObject(ctx, &s3sdk.GetObjectInput{Bucket: &d.bucket, Key: &key})
	if err != nil {
		return nil, storage.Absent, d.wrap("get", p, err)
	}
	defer out.Body.Close()
	n := int64(-1)
	if out.ContentLength != nil {
		n = *out.ContentLength
	}
	b, err := readBody(out.Body, n)
	if err != nil {
		return nil, storage.Absent, d.wrap("get", p, err)
	}
	etag := unquote(out.ETag)
	if etag == "" {
		return nil, storage.Absent, fmt.Errorf("s3 get %s: the service sent no ETag, which versions need", p)
	}
	return b, storage.Version(etag), nil
}

// PutContent implements storage.Driver.
func (d *Driver) PutContent(ctx context.Context, p string, data []byte) error {
	key, err := d.key(p)
	if err != nil {
		return err
	}
	_, err = d.client.PutObject(ctx, d.putInput(key, data, newToken()))
	return d.wrap("put", p, err)
}

func (d *Driver) putInput(key string, data []byte, token string) *s3sdk.PutObjectInput {
	return &s3sdk.PutObjectInput{
		Bucket:        &d.bucket,
		Key:           &key,
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/octet-stream"),
		Metadata:      map[string]string{tokenKey: token},
	}
}

// PutIf implements storage.Driver with If-None-Match: * (Absent) or
// If-Match: the version's ETag, which the service checks atomically.
func (d *Driver) PutIf(ctx context.Context, p string, data []byte, match storage.Version) error {
	key, err := d.key(p)
	if err != nil {
		return err
	}
	token := newToken()
	in := d.putInput(key, data, token)
	if match == storage.Absent {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(quote(string(match)))
	}
	_, err = d.client.PutObject(ctx, in)
	return d.conditionFailed(ctx, "put-if", p, key, token, match == storage.Absent, err)
}

// conditionFailed maps the outcome of a conditional write that carried
// token: nil when it landed, even if a retry of it then failed its own
// condition (the first attempt's answer was lost); ErrExists or
// ErrChanged when another write got there first; the wrapped error
// otherwise.
func (d *Driver) conditionFailed(ctx context.Context, op, p, key, token string, create bool, err error) error {
	if err == nil {
		return nil
	}
	// If-Match on a missing object answers 404: it changed (was deleted).
	conflict := isPrecondition(err) || (!create && isNotFound(err))
	if !conflict {
		return d.wrap(op, p, err)
	}
	if d.hasToken(ctx, key, token) {
		return nil
	}
	if create {
		return fmt.Errorf("s3 %s %s: %w", op, p, storage.ErrExists)
	}
	return fmt.Errorf("s3 %s %s: %w", op, p, storage.ErrChanged)
}

// hasToken reports whether the object at key is the one written with
// token.
func (d *Driver) hasToken(ctx context.Context, key, token string) bool {
	out, err := d.client.HeadObject(ctx, &s3sdk.HeadObjectInput{Bucket: &d.bucket, Key: &key})
	return err == nil && out.Metadata[tokenKey] == token
}

// Stat implements storage.Driver.
func (d *Driver) Stat(ctx context.Context, p string) (storage.Info, error) {
	info, _, err := d.head(ctx, p)
	return info, err
}

// head returns the object's Info and ETag.
func (d *Driver) head(ctx context.Context, p string) (storage.Info, string, error) {
	key, err := d.key(p)
	if err != nil {
		return storage.Info{}, "", err
	}
	out, err := d.client.HeadObject(ctx, &s3sdk.HeadObjectInput{Bucket: &d.bucket, Key: &key})
	if err != nil {
		return storage.Info{}, "", d.wrap("stat", p, err)
	}
	info := storage.Info{Size: aws.ToInt64(out.ContentLength), ModTime: modTime(out.LastModified)}
	return info, unquote(out.ETag), nil
}

// Delete implements storage.Driver. S3 answers success for a missing key.
func (d *Driver) Delete(ctx context.Context, p string) error {
	key, err := d.key(p)
	if err != nil {
		return err
	}
	_, err = d.client.DeleteObject(ctx, &s3sdk.DeleteObjectInput{Bucket: &d.bucket, Key: &key})
	if err != nil && !isNotFound(err) {
		return d.wrap("delete", p, err)
	}
	return nil
}

// readBody reads a response body of length n (-1: unknown) in one
// allocation.
func readBody(body io.Reader, n int64) ([]byte, error) {
	if n < 0 {
		return io.ReadAll(body)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(body, b); err != nil {
		return nil, err
	}
	return b, nil
}

// CheckBucket asks the service whether the bucket is there and these
// credentials may use it, so that a configuration error shows at startup
// with its cause rather than as failing requests (or, for a HEAD, whose
// 404 cannot tell a missing bucket from a missing key, as "not found").
func (d *Driver) CheckBucket(ctx context.Context) error {
	_, err := d.client.HeadBucket(ctx, &s3sdk.HeadBucketInput{Bucket: &d.bucket})
	if err != nil {
		return fmt.Errorf("s3 storage: bucket %s at %s: %w", d.bucket, d.where, err)
	}
	return nil
}

// Touch implements storage.Driver by writing the object's bytes again,
// only if it is still the version just read (If-Match): the service
// stamps the new write with its now, and a touch never re-creates an
// object deleted meanwhile. (A copy of the object onto itself would take
// one request, but a service need not give it a new Last-Modified:
// versitygw's posix backend only rewrites the metadata of an object
// copied onto itself and keeps its time, so garbage collection judged a
// link a push had just refreshed as old, and removed it.) Touched objects
// are small (storage.Driver.Touch).
func (d *Driver) Touch(ctx context.Context, p string) error {
	b, v, err := d.GetVersioned(ctx, p)
	if err != nil {
		return err
	}
	err = d.PutIf(ctx, p, b, v)
	if !errors.Is(err, storage.ErrChanged) {
		return err
	}
	// Deleted since it was read (not found), or written again by someone
	// else, which stamped it after this touch began: as good as touched.
	_, err = d.Stat(ctx, p)
	return err
}
