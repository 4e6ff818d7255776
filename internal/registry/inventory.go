package registry

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/octoserve/octoserve/internal/reference"
)

// algorithms are the digest algorithms the layout has directories for.
var algorithms = []string{"sha256", "sha512"}

// entry is a stored object named by a digest, with its modification time.
type entry struct {
	digest  reference.Digest
	size    int64
	modTime time.Time
}

// listDigests returns the objects under dir/<alg>/ whose names are digests
// (manifest links). Names that are not valid digests are skipped: they are
// not ours.
func (r *Registry) listDigests(ctx context.Context, dir string) ([]entry, error) {
	var out []entry
	for _, alg := range algorithms {
		entries, err := r.d.List(ctx, dir+"/"+alg, "", 0)
		if err != nil {
			return nil, fmt.Errorf("listing %s/%s: %w", dir, alg, err)
		}
		for _, e := range entries {
			d, err := reference.ParseDigest(alg + ":" + e.Name)
			if e.Dir || err != nil {
				continue
			}
			out = append(out, entry{digest: d, size: e.Size, modTime: e.ModTime})
		}
	}
	return out, nil
}

// listNames returns the names of the objects directly in dir, sorted.
func (r *Registry) listNames(ctx context.Context, dir string) ([]string, error) {
	entries, err := r.d.Names(ctx, dir, "", 0)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.Dir {
			names = append(names, e.Name)
		}
	}
	return names, nil
}

func (r *Registry) listRevisions(ctx context.Context, name string) ([]entry, error) {
	return r.listDigests(ctx, repoPath(name)+"/_manifests/revisions")
}

// tagTargets maps each tag of name to the digest it points at.
func (r *Registry) tagTargets(ctx context.Context, name string) (map[string]reference.Digest, error) {
	tags, err := r.listNames(ctx, tagsDir(name))
	if err != nil {
		return nil, err
	}
	out := make(map[string]reference.Digest, len(tags))
	for _, t := range tags {
		b, err := r.d.GetContent(ctx, tagPath(name, t))
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading tag %s of %s: %w", t, name, err)
		}
		out[t] = reference.Digest(b)
	}
	return out, nil
}

// storedManifest reads and parses manifest d of repository name.
func (r *Registry) storedManifest(ctx context.Context, name string, d reference.Digest) (*manifestFields, string, error) {
	mt, err := r.d.GetContent(ctx, revisionLink(name, d))
	if err != nil {
		return nil, "", fmt.Errorf("reading manifest link %s in %s: %w", d, name, err)
	}
	body, err := r.manifestBytes(ctx, d)
	if err != nil {
		return nil, "", err
	}
	mf, mediaType, err := parseManifest(string(mt), body)
	if err != nil {
		return nil, "", fmt.Errorf("manifest %s in %s: %w", d, name, err)
	}
	return mf, mediaType, nil
}

// allRepositories lists every repository.
func (r *Registry) allRepositories(ctx context.Context) ([]string, error) {
	names, _, err := r.Repositories(ctx, -1, "")
	return names, err
}

// referencedBlobs returns the blobs an image manifest references (config
// and layers, nondistributable ones included: if they were pushed, they
// are kept); an index references none.
func (mf *manifestFields) referencedBlobs(mediaType string) []reference.Digest {
	if !isImageManifest(mediaType) || mf.Config == nil {
		return nil
	}
	out := []reference.Digest{reference.Digest(mf.Config.Digest)}
	for _, l := range mf.Layers {
		out = append(out, reference.Digest(l.Digest))
	}
	return out
}

// referrerDigest reads the name of a referrer entry, "<alg>-<hex>".
func referrerDigest(entry string) (reference.Digest, error) {
	return reference.ParseDigest(strings.Replace(entry, "-", ":", 1))
}

// referrerDigests returns the digests of the referrers of subject in name,
// from the entries' names alone.
func (r *Registry) referrerDigests(ctx context.Context, name string, subject reference.Digest) ([]reference.Digest, error) {
	entries, err := r.listNames(ctx, referrersDir(name, subject))
	if err != nil {
		return nil, err
	}
	var out []reference.Digest
	for _, e := range entries {
		if d, err := referrerDigest(e); err == nil {
			out = append(out, d)
		}
	}
	return out, nil
}
