package registry

import (
	"context"
	"fmt"
	"strings"

	"github.com/octoserve/octoserve/internal/storage"
)

// Usage is what the store holds, counted in one walk over blobs/ and one
// over uploads/. Each blob's links lie beside it, so the walk over blobs/
// sees, blob by blob, its size and every repository linking it: per
// repository totals cost no more than the registry total. The walk reads
// every object under blobs/ once (a blob and one empty object per link:
// on a filesystem a directory read per blob, on an object store one List
// request per 1000 of them) and keeps one small record per repository.
type Usage struct {
	Bytes int64 // bytes of every stored blob (manifests included), each once
	Blobs int   // blobs stored
	// UnlinkedBytes and UnlinkedBlobs are blobs no repository links any
	// more; the next collection past gc.minAge removes them.
	UnlinkedBytes int64
	UnlinkedBlobs int
	// Repositories maps a repository name to what it links.
	Repositories map[string]*RepositoryUsage
	// Uploads counts upload sessions in the store (open, or abandoned and
	// not yet expired) and UploadBytes the bytes they received.
	Uploads     int
	UploadBytes int64
}

// RepositoryUsage is what one repository links: Bytes = OwnBytes +
// SharedBytes.
type RepositoryUsage struct {
	Bytes int64
	Blobs int
	// OwnBytes are the bytes of blobs only this repository links: what
	// deleting the repository's content would free. SharedBytes are those
	// of blobs other repositories link too.
	OwnBytes    int64
	SharedBytes int64
}

// Usage counts what the store holds. It changes nothing and takes no
// lease; a push or collection running meanwhile may or may not be seen.
func (r *Registry) Usage(ctx context.Context) (*Usage, error) {
	u := &Usage{Repositories: map[string]*RepositoryUsage{}}
	err := r.walkBlobs(ctx, func(b *blobGroup) error {
		u.addBlob(b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walking blobs: %w", err)
	}
	if err := r.countUploads(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *Usage) addBlob(b *blobGroup) {
	if b.data == nil {
		return // links left by a push refused beside a collection: no bytes
	}
	size := b.data.Size
	u.Bytes += size
	u.Blobs++
	if len(b.links) == 0 {
		u.UnlinkedBytes += size
		u.UnlinkedBlobs++
	}
	for _, l := range b.links {
		name := repoName(l.Name)
		ru := u.Repositories[name]
		if ru == nil {
			ru = &RepositoryUsage{}
			u.Repositories[name] = ru
		}
		ru.Bytes += size
		ru.Blobs++
		if len(b.links) == 1 {
			ru.OwnBytes += size
		} else {
			ru.SharedBytes += size
		}
	}
}

// countUploads walks uploads/<repo>/<id>/...: objects of one session
// arrive together, in key order.
func (r *Registry) countUploads(ctx context.Context, u *Usage) error {
	last := ""
	err := r.d.Walk(ctx, "uploads", func(e storage.Entry) error {
		parts := strings.SplitN(e.Name, "/", 3)
		if len(parts) < 3 {
			return nil // not ours
		}
		if session := parts[0] + "/" + parts[1]; session != last {
			u.Uploads++
			last = session
		}
		if strings.HasPrefix(parts[2], "data/") {
			u.UploadBytes += e.Size // chunks, not the hash states beside them
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("walking uploads: %w", err)
	}
	return nil
}
