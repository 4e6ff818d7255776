package registry

import (
	"context"
	"fmt"
	"net/http"
	"sort"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
)

// Tags returns up to n tags of repository name (all when n < 0) that sort
// after last, in lexical byte order, and whether more follow.
func (r *Registry) Tags(ctx context.Context, name string, n int, last string) ([]string, bool, error) {
	ok, err := r.RepositoryExists(ctx, name)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		return nil, false, errNameUnknown(name)
	}
	limit := 0
	if n >= 0 {
		limit = n + 1 // one more tells whether more follow
	}
	entries, err := r.d.Names(ctx, tagsDir(name), last, limit)
	if err != nil {
		return nil, false, fmt.Errorf("listing tags of %s: %w", name, err)
	}
	tags := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.Dir {
			tags = append(tags, e.Name)
		}
	}
	page, more := paginate(tags, n, "")
	return page, more, nil
}

// paginate returns up to n entries of sorted after last (all when n < 0)
// and whether more follow.
func paginate(sorted []string, n int, last string) ([]string, bool) {
	if last != "" {
		i := sort.SearchStrings(sorted, last)
		if i < len(sorted) && sorted[i] == last {
			i++
		}
		sorted = sorted[i:]
	}
	if n >= 0 && len(sorted) > n {
		return sorted[:n], true
	}
	return sorted, false
}

func (r *Registry) deleteTag(ctx context.Context, name, tag string) error {
	if !reference.ValidTag(tag) {
		return ocierr.New(ocierr.TagInvalid, http.StatusBadRequest, "invalid tag %q", tag)
	}
	ok, err := r.exists(ctx, tagPath(name, tag))
	if err != nil {
		return err
	}
	if !ok {
		return errManifestUnknown(tag)
	}
	if err := r.d.Delete(ctx, tagPath(name, tag)); err != nil {
		return fmt.Errorf("deleting tag %s: %w", tag, err)
	}
	return nil
}

// untagDigest deletes every tag of name that points at d.
func (r *Registry) untagDigest(ctx context.Context, name string, d reference.Digest) error {
	tags, err := r.listNames(ctx, tagsDir(name))
	if err != nil {
		return err
	}
	for _, t := range tags {
		b, err := r.d.GetContent(ctx, tagPath(name, t))
		if err != nil || string(b) != d.String() {
			continue
		}
		if err := r.d.Delete(ctx, tagPath(name, t)); err != nil {
			return fmt.Errorf("deleting tag %s: %w", t, err)
		}
	}
	return nil
}
