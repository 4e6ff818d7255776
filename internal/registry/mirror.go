package registry

import (
	"context"
	"fmt"
	"hash"
	"net/http"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/storage"
)

// What a pull-through cache (internal/proxy) stores. A manifest fetched
// from an upstream is stored as a pushed one is, but sparsely — the blobs
// and child manifests it references arrive only if a client asks for
// them — and it is marked as cached by an object of its own,
//
//	repositories/<name>/_cached/<alg>/<hex>
//
// written before the manifest, so that a crash never leaves a fetched
// manifest looking pushed. Its ModTime is the manifest's last use: the
// proxy touches it (throttled) when it serves the manifest. Garbage
// collection removes cached manifests unused for longer than the cache's
// expiry, and the least recently used beyond its size cap (expire.go);
// pushed manifests have no such object and never expire. Blobs come in
// through FillBlob, hashed as they stream and kept only if they hash to
// their digest.

func cachedDir(name string) string { return repoPath(name) + "/_cached" }

func cachedEntry(name string, d reference.Digest) string {
	return cachedDir(name) + "/" + d.Algorithm() + "/" + d.Hex()
}

// PutCachedManifest stores body, fetched from an upstream, as manifest d
// of repository name, with the media type the upstream gave, and points
// tags at it. The body must hash to d and parse; what it references need
// not be stored.
func (r *Registry) PutCachedManifest(ctx context.Context, name string, d reference.Digest, mediaType string, body []byte, tags []string) (*Manifest, error) {
	if int64(len(body)) > r.opts.MaxManifestBytes {
		return nil, ocierr.New(ocierr.SizeInvalid, http.StatusRequestEntityTooLarge, "manifest exceeds %d bytes", r.opts.MaxManifestBytes)
	}
	d, tags, err := manifestDigest(d.String(), body, tags)
	if err != nil {
		return nil, err
	}
	mf, mediaType, err := parseManifest(mediaType, body)
	if err != nil {
		return nil, err
	}
	if err := r.ensureRepository(ctx, name); err != nil {
		return nil, err
	}
	for try := 1; ; try++ {
		if err := r.d.PutContent(ctx, cachedEntry(name, d), nil); err != nil {
			return nil, fmt.Errorf("marking manifest %s of %s cached: %w", d, name, err)
		}
		// Nothing it references is relied on: what the cache lacks, or
		// loses to a collection, it fetches again when asked.
		if err := r.storeManifest(ctx, name, d, mediaType, body, mf, tags, &references{}); err != nil {
			// Whatever of it is left stays marked cached, so that nothing
			// takes it for a push (verify, expiry).
			_ = r.d.PutContent(context.WithoutCancel(ctx), cachedEntry(name, d), nil)
			return nil, err
		}
		ok, err := r.cachedInPlace(ctx, name, d, tags)
		if err != nil {
			return nil, err
		}
		if ok {
			return &Manifest{Digest: d, MediaType: mediaType, Body: body}, nil
		}
		if try == 10 {
			// Whatever of it is left stays marked cached, so that nothing
			// takes it for a push (verify, expiry).
			_ = r.d.PutContent(ctx, cachedEntry(name, d), nil)
			return nil, fmt.Errorf("cached manifest %s of %s was expired by garbage collection %d times while it was stored", d, name, try)
		}
	}
}

// cachedInPlace is the writer's half of the housekeeping protocol
// (protocol.go) against cache expiry, which removes tags too: once no
// collection is judging the cached entry or the tags, it checks that
// they and the manifest link are all still there. A tag another writer
// has moved on since is fine: it is not missing.
func (r *Registry) cachedInPlace(ctx context.Context, name string, d reference.Digest, tags []string) (bool, error) {
	paths := []string{cachedEntry(name, d), revisionLink(name, d)}
	for _, t := range tags {
		paths = append(paths, tagPath(name, t))
	}
	if err := r.settle(ctx, paths...); err != nil {
		return false, err
	}
	return r.allExist(ctx, paths...)
}

// TouchCached records that cached manifest d of name was used now. A
// manifest that is not cached (pushed, or expired meanwhile) is left
// alone.
func (r *Registry) TouchCached(ctx context.Context, name string, d reference.Digest) error {
	err := r.d.Touch(ctx, cachedEntry(name, d))
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("recording use of %s in %s: %w", d, name, err)
	}
	return nil
}

// cachedManifests returns the digests of name's manifests that came from
// an upstream.
func (r *Registry) cachedManifests(ctx context.Context, name string) (map[reference.Digest]bool, error) {
	entries, err := r.listDigests(ctx, cachedDir(name))
	if err != nil {
		return nil, err
	}
	out := make(map[reference.Digest]bool, len(entries))
	for _, e := range entries {
		out[e.digest] = true
	}
	return out, nil
}

// BlobStored reports whether the registry holds the bytes of blob d, in
// any repository.
func (r *Registry) BlobStored(ctx context.Context, d reference.Digest) (bool, error) {
	return r.exists(ctx, blobPath(d))
}

// BlobFill stores a blob whose bytes arrive as a stream (from an
// upstream): they are written to the store and hashed as they come, and
// become blob d of the repository only if they hash to d. A fill is used
// by one goroutine.
type BlobFill struct {
	r        *Registry
	s        *session // never started, like PutBlob's: invisible to clients
	d        reference.Digest
	w        storage.Writer
	h        hash.Hash
	n        int64
	verified bool
}

// FillBlob starts storing blob d of repository name from a stream. The
// caller writes the bytes, calls Verify once they are all written, and
// then Commit (or Cancel).
func (r *Registry) FillBlob(ctx context.Context, name string, d reference.Digest) (*BlobFill, error) {
	s := &session{name: name, id: newUploadID(), hashes: map[int64]bool{}}
	w, err := r.d.Writer(ctx, chunkPath(name, s.id, 0), storage.Create)
	if err != nil {
		return nil, fmt.Errorf("storing blob %s: %w", d, err)
	}
	return &BlobFill{r: r, s: s, d: d, w: w, h: reference.NewHash(d.Algorithm())}, nil
}

// Write stores and hashes p.
func (f *BlobFill) Write(p []byte) (int, error) {
	if m := f.r.opts.MaxBlobBytes; m > 0 && f.n+int64(len(p)) > m {
		return 0, errTooLarge("blob", m)
	}
	n, err := f.w.Write(p)
	f.h.Write(p[:n])
	f.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("storing blob %s: %w", f.d, err)
	}
	return n, nil
}

// Size is the number of bytes written so far.
func (f *BlobFill) Size() int64 { return f.n }

// Verify checks that the bytes written hash to the blob's digest. It does
// no I/O: a caller streaming the bytes on may release the last of them
// once it returns nil, before Commit makes them durable.
func (f *BlobFill) Verify() error {
	if got := reference.FromHash(f.d.Algorithm(), f.h); got != f.d {
		return ocierr.New(ocierr.DigestInvalid, http.StatusBadGateway, "upstream sent content that does not match its digest").
			WithDetail(map[string]string{"expected": f.d.String(), "computed": got.String()})
	}
	f.verified = true
	return nil
}

// Commit stores the verified bytes as blob d, linked into the repository;
// they are durable when it returns nil. Without a successful Verify it
// stores nothing.
func (f *BlobFill) Commit(ctx context.Context) error {
	if !f.verified {
		_ = f.Cancel(ctx)
		return fmt.Errorf("blob %s: commit before its digest was verified", f.d)
	}
	var srcs []string
	if f.n == 0 {
		_ = f.w.Cancel(ctx)
	} else {
		if err := f.w.Commit(ctx); err != nil {
			_ = f.r.dropSession(context.WithoutCancel(ctx), f.s)
			return fmt.Errorf("storing blob %s: %w", f.d, err)
		}
		f.s.chunks = []int64{0}
		srcs = f.s.chunkPaths()
	}
	err := f.r.storeBlob(ctx, f.s.name, f.d, srcs)
	if derr := f.r.dropSession(context.WithoutCancel(ctx), f.s); err == nil {
		err = derr
	}
	return err
}

// Cancel discards what was written.
func (f *BlobFill) Cancel(ctx context.Context) error {
	return f.w.Cancel(ctx)
}
