// Package registry implements the distribution spec's model — repositories
// holding blobs, upload sessions, manifests, tags and referrers — on top of a
// storage.Driver. It knows the storage layout and the validation rules; it
// knows nothing of HTTP. Failures a client caused are *ocierr.Error.
//
// Nothing the registry relies on lives only in this process's memory: any
// number of processes (replicas, `octoserve gc` beside `octoserve serve`)
// may share one store. What is cached (manifest bytes by digest, the names
// of repositories known to exist) cannot go stale.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

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
	// MaxUploadsPerRepository bounds the upload sessions open at once in
	// one repository, MaxUploadsPerOwner those one user has open in all
	// repositories; 0 means no limit.
	MaxUploadsPerRepository, MaxUploadsPerOwner int
}

// DefaultMaxManifestBytes is the 4 MiB the spec recommends accepting.
const DefaultMaxManifestBytes = 4 << 20

// Registry is the repository model over one storage driver.
type Registry struct {
	d        storage.Driver
	opts     Options
	manifest *byteCache
	known    sync.Map // repository name -> struct{}: in the catalog
}

// New returns a registry storing through d.
func New(d storage.Driver, opts Options) *Registry {
	if opts.MaxManifestBytes <= 0 {
		opts.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if opts.ManifestCacheBytes <= 0 {
		opts.ManifestCacheBytes = 64 << 20
	}
	return &Registry{d: d, opts: opts, manifest: newByteCache(opts.ManifestCacheBytes)}
}

// MaxManifestBytes is the largest manifest body PutManifest accepts.
func (r *Registry) MaxManifestBytes() int64 { return r.opts.MaxManifestBytes }

// Storage layout. Blob data is stored once, by digest, for all
// repositories; a repository sees a blob only through a link of its own,
// kept beside the blob so that "who links this blob" is one listing.
//
//	blobs/<alg>/<hex[:2]>/<hex>                          blob and manifest bytes
//	blobs/<alg>/<hex[:2]>/<hex>.repos/<repo>             link: repository <repo> holds the blob (empty)
//	repositories/<name>/_manifests/revisions/<alg>/<hex> manifest link (its media type)
//	repositories/<name>/_manifests/tags/<tag>            tag (a digest)
//	repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex> referrer descriptor (JSON)
//	repositories/<name>/_cached/<alg>/<hex>              manifest fetched by a pull-through cache; ModTime: last use (mirror.go)
//	catalog/<repo>                                       the repository exists (empty)
//	uploads/<repo>/<id>/started                          upload session (its owner: the user who started it)
//	owners/<hash of user>/<repo>@<id>                    the session counts against its owner's cap (empty)
//	uploads/<repo>/<id>/data/<start>                     a chunk of it, from byte <start> (20 digits)
//	uploads/<repo>/<id>/sha256/<end>                     hash state after byte <end>
//	_gc/...                                              the housekeeping lease and markers (protocol.go)
//	_quarantine/<alg>/<hex>                              blobs verify found corrupt
//	_health/probe                                        written by readiness probes (probe.go)
//
// <repo> is the repository name with '/' written as '~', one path
// element. Upload sessions live outside the repositories so that an
// abandoned or refused upload never makes a repository appear to exist,
// and under their repository's name so that a request naming another
// repository never finds them.
func blobPath(d reference.Digest) string {
	h := d.Hex()
	return "blobs/" + d.Algorithm() + "/" + h[:2] + "/" + h
}

func linksDir(d reference.Digest) string { return blobPath(d) + ".repos" }

func blobLink(name string, d reference.Digest) string { return linksDir(d) + "/" + repoKey(name) }

// repoKey writes a repository name as one path element; names never hold
// '~', so the mapping is one to one.
func repoKey(name string) string { return strings.ReplaceAll(name, "/", "~") }

func repoName(key string) string { return strings.ReplaceAll(key, "~", "/") }

func repoPath(name string) string { return "repositories/" + name }

func catalogEntry(name string) string { return "catalog/" + repoKey(name) }

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

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// exists reports whether the object at path exists; other errors are
// returned.
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
	if _, ok := r.known.Load(name); ok {
		return true, nil
	}
	ok, err := r.exists(ctx, catalogEntry(name))
	if ok {
		r.known.Store(name, struct{}{})
	}
	return ok, err
}

// ensureRepository enters name in the catalog, before anything is linked
// into it, so that a repository holding something is always listed.
func (r *Registry) ensureRepository(ctx context.Context, name string) error {
	ok, err := r.RepositoryExists(ctx, name)
	if err != nil || ok {
		return err
	}
	if err := r.d.PutContent(ctx, catalogEntry(name), nil); err != nil {
		return fmt.Errorf("adding %s to the catalog: %w", name, err)
	}
	r.known.Store(name, struct{}{})
	return nil
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
