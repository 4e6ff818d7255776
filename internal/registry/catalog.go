package registry

import (
	"context"
	"fmt"
	"sort"
)

// Repositories returns up to n repository names (all when n < 0) sorting
// after last, and whether more follow. It reads the catalog index, one
// listing, instead of walking every repository.
func (r *Registry) Repositories(ctx context.Context, n int, last string) ([]string, bool, error) {
	entries, err := r.d.Names(ctx, "catalog", "", 0)
	if err != nil {
		return nil, false, fmt.Errorf("listing the catalog: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.Dir {
			names = append(names, repoName(e.Name))
		}
	}
	// The index's order is not the names' ('~' sorts after every letter,
	// '/' before): sort the names themselves.
	sort.Strings(names)
	page, more := paginate(names, n, last)
	return page, more, nil
}
