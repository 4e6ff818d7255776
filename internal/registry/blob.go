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
	ok, err := r.exists(ctx, layerLink(name, d))
	if ok || err != nil {
		return ok, err
	}
	return r.exists(ctx, revisionLink(name, d))
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
// garbage collection finds no repository referencing them.
func (r *Registry) DeleteBlob(ctx context.Context, name string, d reference.Digest) error {
	err := r.d.Delete(ctx, layerLink(name, d))
	if isNotFound(err) {
		return errBlobUnknown(d)
	}
	if err != nil {
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
		ok, err = r.exists(ctx, layerLink(from, d))
	} else {
		ok, err = r.exists(ctx, blobPath(d))
	}
	if !ok || err != nil {
		return false, err
	}
	if err := r.linkBlob(ctx, name, d); err != nil {
		return false, err
	}
	// Checked after linking: a garbage collection may have judged the blob
	// unused just before the link was written (see gc.go). If it is gone,
	// the link stays: removing it could remove the link of a concurrent
	// upload of the same blob. Nothing serves a link without its blob, the
	// client uploads the blob into the session it gets, and a collection
	// removes a link no manifest uses.
	return r.blobPresent(ctx, d)
}

func (r *Registry) linkBlob(ctx context.Context, name string, d reference.Digest) error {
	if err := r.d.PutContent(ctx, layerLink(name, d), nil); err != nil {
		return fmt.Errorf("linking blob %s into %s: %w", d, name, err)
	}
	return nil
}
