package registry

import (
	"context"
	"fmt"
	"io"

	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/storage"
)

// linked reports whether repository name may see the blob d: pushed or
// mounted as a blob, or pushed as a manifest.
func (r *Registry) linked(ctx context.Context, name string, d reference.Digest) (bool, error) {
	return r.exists(ctx, blobLink(name, d))
}

// StatBlob returns the size of blob d in repository name.
func (r *Registry) StatBlob(ctx context.Context, name string, d reference.Digest) (int64, error) {
	ok, err := r.linked(ctx, name, d)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errBlobUnknown(d)
	}
	info, err := r.d.Stat(ctx, blobPath(d))
	if isNotFound(err) {
		return 0, errBlobUnknown(d)
	}
	if err != nil {
		return 0, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return info.Size, nil
}

// OpenBlob opens blob d of repository name for reading.
func (r *Registry) OpenBlob(ctx context.Context, name string, d reference.Digest) (io.ReadSeekCloser, storage.Info, error) {
	ok, err := r.linked(ctx, name, d)
	if err != nil {
		return nil, storage.Info{}, err
	}
	if !ok {
		return nil, storage.Info{}, errBlobUnknown(d)
	}
	rc, info, err := r.d.Reader(ctx, blobPath(d))
	if isNotFound(err) {
		return nil, storage.Info{}, errBlobUnknown(d)
	}
	if err != nil {
		return nil, storage.Info{}, fmt.Errorf("opening blob %s: %w", d, err)
	}
	return rc, info, nil
}

// DeleteBlob removes blob d from repository name. The bytes stay until
// garbage collection finds no repository linking them.
func (r *Registry) DeleteBlob(ctx context.Context, name string, d reference.Digest) error {
	ok, err := r.linked(ctx, name, d)
	if err != nil {
		return err
	}
	if !ok {
		return errBlobUnknown(d)
	}
	if err := r.d.Delete(ctx, blobLink(name, d)); err != nil {
		return fmt.Errorf("deleting blob link %s: %w", d, err)
	}
	return nil
}

// MountBlob makes blob d visible in repository name without uploading it.
// With from set, d must be in repository from; with from empty, any blob
// the registry holds is mounted. It reports whether d was mounted.
func (r *Registry) MountBlob(ctx context.Context, name, from string, d reference.Digest) (bool, error) {
	var ok bool
	var err error
	if from != "" {
		ok, err = r.linked(ctx, from, d)
	} else {
		ok, err = r.exists(ctx, blobPath(d))
	}
	if !ok || err != nil {
		return false, err
	}
	if err := r.linkBlob(ctx, name, d); err != nil {
		return false, err
	}
	// A collection may have judged the blob unused just before the link
	// was written (protocol.go). If it is gone, the link stays: removing
	// it could remove the link of a concurrent upload of the same blob.
	// Nothing serves a link without its blob, the client uploads the blob
	// into the session it gets, and a collection removes the link.
	if err := r.settle(ctx, blobLink(name, d), blobPath(d)); err != nil {
		return false, err
	}
	return r.exists(ctx, blobPath(d))
}

// Repositories that link d, for a mount without "from": one listing, not
// a scan of every repository.
func (r *Registry) RepositoriesLinking(ctx context.Context, d reference.Digest) ([]string, error) {
	entries, err := r.d.Names(ctx, linksDir(d), "", 0)
	if err != nil {
		return nil, fmt.Errorf("listing links of %s: %w", d, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.Dir {
			names = append(names, repoName(e.Name))
		}
	}
	return names, nil
}

// linkBlob links blob d into repository name, or refreshes the link that
// is there: either way it is young to a collection running now.
func (r *Registry) linkBlob(ctx context.Context, name string, d reference.Digest) error {
	if err := r.ensureRepository(ctx, name); err != nil {
		return err
	}
	link := blobLink(name, d)
	err := r.d.Touch(ctx, link)
	if isNotFound(err) {
		err = r.d.PutContent(ctx, link, nil)
	}
	if err != nil {
		return fmt.Errorf("linking blob %s into %s: %w", d, name, err)
	}
	return nil
}

// storeBlob makes the verified bytes of srcs (no sources: the empty blob)
// blob d, linked into repository name. The bytes are placed even when d
// is stored already: a stored blob is never trusted over bytes just
// verified, so a damaged one is repaired by the next push. It returns once
// blob and link are both in place and no collection is removing them.
func (r *Registry) storeBlob(ctx context.Context, name string, d reference.Digest, srcs []string) error {
	for try := 1; ; try++ {
		if err := r.linkBlob(ctx, name, d); err != nil {
			return err
		}
		var err error
		if len(srcs) == 0 {
			err = r.d.PutContent(ctx, blobPath(d), nil)
		} else {
			err = r.d.Compose(ctx, blobPath(d), srcs)
		}
		if err != nil {
			return fmt.Errorf("storing blob %s: %w", d, err)
		}
		if err := r.settle(ctx, blobLink(name, d), blobPath(d)); err != nil {
			return err
		}
		ok, err := r.allExist(ctx, blobLink(name, d), blobPath(d))
		if err != nil || ok {
			return err
		}
		if try == 3 {
			return fmt.Errorf("blob %s was removed by garbage collection %d times while it was stored", d, try)
		}
	}
}

// allExist reports whether every path exists.
func (r *Registry) allExist(ctx context.Context, paths ...string) (bool, error) {
	for _, p := range paths {
		if ok, err := r.exists(ctx, p); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// BlobURL returns a URL the client may fetch blob d of repository name
// from directly (a presigned URL of an object store), or "" when the
// store hands out none and the registry serves the bytes itself.
func (r *Registry) BlobURL(ctx context.Context, name string, d reference.Digest) (string, error) {
	rd, ok := r.d.(storage.Redirector)
	if !ok {
		return "", nil
	}
	if _, err := r.StatBlob(ctx, name, d); err != nil {
		return "", err
	}
	u, err := rd.RedirectURL(ctx, blobPath(d))
	if err != nil {
		return "", fmt.Errorf("redirecting to blob %s: %w", d, err)
	}
	return u, nil
}
