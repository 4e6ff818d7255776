package registry

import (
	"context"
	"fmt"
	"strings"

	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/storage"
)

// layoutPath records the version of the storage layout a store holds.
const (
	layoutPath    = "_layout"
	layoutVersion = "2"
)

// UpgradeLayout brings a store written by an earlier octoserve to this
// layout, once; on a store already upgraded it costs one read. Layout 1
// kept blob links inside each repository (repositories/<name>/_layers/),
// had no catalog index and kept upload sessions by id alone. Blob bytes
// and manifests stay where they are; links and the catalog are written
// anew; unfinished uploads are dropped (clients start them again). It
// reports how many links it wrote. Run it with no other octoserve
// serving the store (`serve` does at start).
func (r *Registry) UpgradeLayout(ctx context.Context) (int, error) {
	b, err := r.d.GetContent(ctx, layoutPath)
	if err == nil && string(b) == layoutVersion {
		return 0, nil
	}
	if err != nil && !isNotFound(err) {
		return 0, fmt.Errorf("reading the layout version: %w", err)
	}
	links := 0
	err = r.d.Walk(ctx, "repositories", func(e storage.Entry) error {
		name, d, old, ok := parseLayout1Link(e.Name)
		if !ok {
			return nil
		}
		if err := r.linkBlob(ctx, name, d); err != nil {
			return err
		}
		links++
		if old {
			return r.d.Delete(ctx, "repositories/"+e.Name)
		}
		return nil
	})
	if err != nil {
		return links, fmt.Errorf("upgrading the storage layout: %w", err)
	}
	if err := r.dropLayout1Uploads(ctx); err != nil {
		return links, err
	}
	if err := r.restoreLayout1Graves(ctx); err != nil {
		return links, err
	}
	for _, dir := range []string{"_tmp"} { // layout 1's temporary files
		if err := r.d.DeleteAll(ctx, dir); err != nil {
			return links, fmt.Errorf("removing %s: %w", dir, err)
		}
	}
	if err := r.d.PutContent(ctx, layoutPath, []byte(layoutVersion)); err != nil {
		return links, fmt.Errorf("recording the layout version: %w", err)
	}
	return links, nil
}

// parseLayout1Link reads a key under repositories/ that links a digest
// into a repository: a layout 1 blob link "<name>/_layers/<alg>/<hex>"
// (old: to be removed), or a manifest link
// "<name>/_manifests/revisions/<alg>/<hex>", whose bytes need a link too.
func parseLayout1Link(key string) (name string, d reference.Digest, old, ok bool) {
	for _, marker := range []string{"/_layers/", "/_manifests/revisions/"} {
		i := strings.Index(key, marker)
		if i <= 0 {
			continue
		}
		alg, hex, found := strings.Cut(key[i+len(marker):], "/")
		if !found {
			return "", "", false, false
		}
		d, err := reference.ParseDigest(alg + ":" + hex)
		if err != nil {
			return "", "", false, false
		}
		return key[:i], d, marker == "/_layers/", true
	}
	return "", "", false, false
}

// dropLayout1Uploads removes layout 1's upload sessions, "uploads/<id>/".
func (r *Registry) dropLayout1Uploads(ctx context.Context) error {
	entries, err := r.d.Names(ctx, "uploads", "", 0)
	if err != nil {
		return fmt.Errorf("listing uploads: %w", err)
	}
	for _, e := range entries {
		if e.Dir && uploadIDRE.MatchString(e.Name) {
			if err := r.d.DeleteAll(ctx, "uploads/"+e.Name); err != nil {
				return fmt.Errorf("removing a layout 1 upload: %w", err)
			}
		}
	}
	return nil
}

// restoreLayout1Graves puts back what a layout 1 collection interrupted by
// a crash had moved aside into _gc/; the next collection decides again.
func (r *Registry) restoreLayout1Graves(ctx context.Context) error {
	var graves []string
	err := r.d.Walk(ctx, "_gc", func(e storage.Entry) error {
		if strings.HasPrefix(e.Name, "blobs/") || strings.HasPrefix(e.Name, "repositories/") {
			graves = append(graves, e.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing layout 1 graves: %w", err)
	}
	for _, p := range graves {
		ok, err := r.exists(ctx, p)
		if err == nil && !ok {
			err = r.d.Compose(ctx, p, []string{"_gc/" + p})
		}
		if err == nil {
			err = r.d.Delete(ctx, "_gc/"+p)
		}
		if err != nil {
			return fmt.Errorf("restoring %s: %w", p, err)
		}
	}
	return nil
}
