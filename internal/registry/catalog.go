package registry

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Repositories returns up to n repository names (all when n < 0) sorting
// after last, and whether more follow.
func (r *Registry) Repositories(ctx context.Context, n int, last string) ([]string, bool, error) {
	var names []string
	if err := r.walkRepositories(ctx, "", &names); err != nil {
		return nil, false, err
	}
	sort.Strings(names)
	page, more := paginate(names, n, last)
	return page, more, nil
}

// walkRepositories collects the repositories under prefix: directories
// holding manifests or blobs. A name component never starts with '_', so
// the layout's own directories cannot be mistaken for repositories.
func (r *Registry) walkRepositories(ctx context.Context, prefix string, out *[]string) error {
	dir := strings.TrimSuffix("repositories/"+prefix, "/")
	children, err := r.d.List(ctx, dir)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	for _, c := range children {
		switch {
		case c == "_manifests" || c == "_layers":
			if n := strings.TrimSuffix(prefix, "/"); !contains(*out, n) {
				*out = append(*out, n)
			}
		case strings.HasPrefix(c, "_"):
		default:
			if err := r.walkRepositories(ctx, prefix+c+"/", out); err != nil {
				return err
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	return len(list) > 0 && list[len(list)-1] == s
}
