package s3

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/octoserve/octoserve/internal/storage"
)

// Names implements storage.Driver: a listing returns the Info anyway.
func (d *Driver) Names(ctx context.Context, dir, after string, limit int) ([]storage.Entry, error) {
	return d.List(ctx, dir, after, limit)
}

// List implements storage.Driver (see the package doc for the order).
func (d *Driver) List(ctx context.Context, dir, after string, limit int) ([]storage.Entry, error) {
	prefix, err := d.dirKey(dir)
	if err != nil {
		return nil, err
	}
	in := &s3sdk.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix, Delimiter: aws.String("/")}
	if after != "" {
		// Misses nothing named after `after`: a prefix "x/" sorts after
		// "x" whenever the name x does.
		in.StartAfter = aws.String(prefix + after)
	}
	if limit > 0 {
		// A few more than asked: the prefixes that `after` extends come
		// back too, and are dropped.
		in.MaxKeys = aws.Int32(int32(min(limit+2, listPage)))
	}
	var entries []storage.Entry
	var lastKey string // the last key or prefix S3 returned: all before it are seen
	pages := s3sdk.NewListObjectsV2Paginator(d.client, in)
	for pages.HasMorePages() && (limit <= 0 || len(entries) < limit) {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, d.wrap("list", dir, err)
		}
		entries = appendPage(entries, page, prefix, after)
		lastKey = max(lastKey, lastOfPage(page))
	}
	slices.SortFunc(entries, func(a, b storage.Entry) int { return strings.Compare(a.Name, b.Name) })
	if limit <= 0 {
		return entries, nil
	}
	entries = entries[:min(limit, len(entries))]
	if pages.HasMorePages() { // the LIST stopped early: see addHiddenPrefixes
		entries, err = d.addHiddenPrefixes(ctx, dir, prefix, after, lastKey, entries)
		if err != nil {
			return nil, err
		}
	}
	return entries[:min(limit, len(entries))], nil
}

func lastOfPage(page *s3sdk.ListObjectsV2Output) string {
	last := ""
	if n := len(page.Contents); n > 0 {
		last = aws.ToString(page.Contents[n-1].Key)
	}
	if n := len(page.CommonPrefixes); n > 0 {
		last = max(last, aws.ToString(page.CommonPrefixes[n-1].Prefix))
	}
	return last
}

// appendPage adds the objects and prefixes of one LIST page named after
// `after`.
func appendPage(entries []storage.Entry, page *s3sdk.ListObjectsV2Output, prefix, after string) []storage.Entry {
	for _, o := range page.Contents {
		name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
		if name == "" || name <= after {
			continue // a folder marker for the directory itself
		}
		entries = append(entries, objectEntry(name, o))
	}
	for _, cp := range page.CommonPrefixes {
		name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
		if name == "" || name <= after {
			continue
		}
		entries = append(entries, storage.Entry{Name: name, Dir: true})
	}
	return entries
}

func objectEntry(name string, o types.Object) storage.Entry {
	return storage.Entry{Name: name, Info: storage.Info{Size: aws.ToInt64(o.Size), ModTime: modTime(o.LastModified)}}
}

// addHiddenPrefixes completes a page taken in S3's key order. A prefix
// "x/" comes after every key "x" + c... with c < '/' (such as "x-1" and
// "x.2"), yet its name x comes before them, so the LIST may have stopped
// before it. Only a prefix whose name is such a proper prefix of the last
// name on the page can be missing, and only if its key comes after the
// last one the LIST returned; each is checked with a LIST of one key.
func (d *Driver) addHiddenPrefixes(ctx context.Context, dir, prefix, after, lastKey string, page []storage.Entry) ([]storage.Entry, error) {
	last := page[len(page)-1].Name
	for i := 1; i < len(last); i++ {
		name := last[:i]
		if last[i] >= '/' || name <= after || prefix+name+"/" <= lastKey || hasDir(page, name) {
			continue
		}
		out, err := d.client.ListObjectsV2(ctx, &s3sdk.ListObjectsV2Input{
			Bucket: &d.bucket, Prefix: aws.String(prefix + name + "/"), MaxKeys: aws.Int32(1),
		})
		if err != nil {
			return nil, d.wrap("list", dir, err)
		}
		if len(out.Contents) > 0 {
			page = append(page, storage.Entry{Name: name, Dir: true})
		}
	}
	slices.SortFunc(page, func(a, b storage.Entry) int { return strings.Compare(a.Name, b.Name) })
	return page, nil
}

func hasDir(entries []storage.Entry, name string) bool {
	for _, e := range entries {
		if e.Dir && e.Name == name {
			return true
		}
	}
	return false
}

// Walk implements storage.Driver: a LIST without delimiter is in byte
// order of the keys, which is that of the paths.
func (d *Driver) Walk(ctx context.Context, dir string, fn func(storage.Entry) error) error {
	prefix, err := d.dirKey(dir)
	if err != nil {
		return err
	}
	pages := s3sdk.NewListObjectsV2Paginator(d.client, &s3sdk.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return d.wrap("walk", dir, err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			if name == "" || strings.HasSuffix(name, "/") {
				continue // folder markers are not objects
			}
			if err := fn(objectEntry(name, o)); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeleteAll implements storage.Driver: each LIST page (up to 1,000 keys)
// is one DeleteObjects.
func (d *Driver) DeleteAll(ctx context.Context, dir string) error {
	prefix, err := d.dirKey(dir)
	if err != nil {
		return err
	}
	pages := s3sdk.NewListObjectsV2Paginator(d.client, &s3sdk.ListObjectsV2Input{
		Bucket: &d.bucket, Prefix: &prefix, MaxKeys: aws.Int32(deleteBatch),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return d.wrap("delete-all", dir, err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			ids[i] = types.ObjectIdentifier{Key: o.Key}
		}
		out, err := d.client.DeleteObjects(ctx, &s3sdk.DeleteObjectsInput{
			Bucket: &d.bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return d.wrap("delete-all", dir, err)
		}
		for _, e := range out.Errors {
			if aws.ToString(e.Code) != "NoSuchKey" {
				return fmt.Errorf("s3 delete-all %s: %s: %s %s", dir, aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
			}
		}
	}
	return nil
}
