// Package registry implements the distribution spec's model — repositories
// holding blobs, upload sessions, manifests, tags and referrers — on top of a
// storage.Driver. It knows the storage layout and the validation rules; it
// knows nothing of HTTP. Failures a client caused are *ocierr.Error.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/storage"
)

// Options tune validation and limits.
type Options struct {
	// Sparse accepts manifests whose layers or child manifests are not in
	// the repository (mirrors that copy only some platforms of an index).
	Sparse bool
	// MaxManifestBytes bounds a manifest body.
	MaxManifestBytes int64
	// ManifestCacheBytes bounds the in-memory cache of manifest bodies.
	ManifestCacheBytes int64
	// MaxBlobBytes bounds a blob's total size and MaxChunkBytes one
	// upload request's body; 0 means no limit (see limits.go).
	MaxBlobBytes, MaxChunkBytes int64
}

// DefaultMaxManifestBytes is the 4 MiB the spec recommends accepting.
const DefaultMaxManifestBytes = 4 << 20

// Registry is the repository model over one storage driver.
type Registry struct {
	d        storage.Driver
	opts     Options
	uploads  *uploadSessions
	manifest *byteCache
}

// New returns a registry storing through d.
func New(d storage.Driver, opts Options) *Registry {
	if opts.MaxManifestBytes <= 0 {
		opts.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if opts.ManifestCacheBytes <= 0 {
		opts.ManifestCacheBytes = 64 << 20
	}
	return &Registry{
		d:        d,
		opts:     opts,
		uploads:  newUploadSessions(),
		manifest: newByteCache(opts.ManifestCacheBytes),
	}
}

// MaxManifestBytes is the largest manifest body PutManifest accepts.
func (r *Registry) MaxManifestBytes() int64 { return r.opts.MaxManifestBytes }

// Storage layout. Blob data is stored once, by digest, for all
// repositories; a repository sees a blob only through a link of its own.
//
//	blobs/<alg>/<hex[:2]>/<hex>                         blob and manifest bytes
//	repositories/<name>/_layers/<alg>/<hex>             blob link (empty)
//	repositories/<name>/_manifests/revisions/<alg>/<hex> manifest link (media type)
//	repositories/<name>/_manifests/tags/<tag>           tag (digest)
//	repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex> referrer descriptor (JSON)
//	uploads/<id>/repository                             upload session: its repository
//	uploads/<id>/data                                   upload session: bytes so far
//
// Upload sessions live outside the repositories so that an abandoned or
// refused upload never makes a repository appear to exist.
func blobPath(d reference.Digest) string {
	h := d.Hex()
	return "blobs/" + d.Algorithm() + "/" + h[:2] + "/" + h
}

func repoPath(name string) string { return "repositories/" + name }

func layerLink(name string, d reference.Digest) string {
	return repoPath(name) + "/_layers/" + d.Algorithm() + "/" + d.Hex()
}

func revisionLink(name string, d reference.Digest) string {
	return repoPath(name) + "/_manifests/revisions/" + d.Algorithm() + "/" + d.Hex()
}

func tagsDir(name string) string { return repoPath(name) + "/_manifests/tags" }

func tagPath(name, tag string) string { return tagsDir(name) + "/" + tag }

func referrersDir(name string, subject reference.Digest) string {
	return repoPath(name) + "/_referrers/" + subject.Algorithm() + "/" + subject.Hex()
}

func referrerLink(name string, subject, referrer reference.Digest) string {
	return referrersDir(name, subject) + "/" + referrer.Algorithm() + "-" + referrer.Hex()
}

func uploadDir(id string) string { return "uploads/" + id }

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// exists reports whether path exists; other errors are returned.
func (r *Registry) exists(ctx context.Context, path string) (bool, error) {
	_, err := r.d.Stat(ctx, path)
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("stat %s: %w", path, err)
}

// RepositoryExists reports whether anything was ever pushed to name.
func (r *Registry) RepositoryExists(ctx context.Context, name string) (bool, error) {
	return r.exists(ctx, repoPath(name))
}

func errNameUnknown(name string) *ocierr.Error {
	return ocierr.New(ocierr.NameUnknown, http.StatusNotFound, "repository name not known to registry").WithDetail(map[string]string{"name": name})
}

func errBlobUnknown(d reference.Digest) *ocierr.Error {
	return ocierr.New(ocierr.BlobUnknown, http.StatusNotFound, "blob unknown to registry").WithDetail(map[string]string{"digest": d.String()})
}

func errManifestUnknown(ref string) *ocierr.Error {
	return ocierr.New(ocierr.ManifestUnknown, http.StatusNotFound, "manifest unknown").WithDetail(map[string]string{"reference": ref})
}
