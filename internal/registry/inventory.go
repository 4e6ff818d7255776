package registry

import (
	"context"
	"fmt"
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
// (layer links, manifest links); with fanout, under dir/<alg>/<xx>/ (blobs).
// Names that are not valid digests are skipped: they are not ours.
func (r *Registry) listDigests(ctx context.Context, dir string, fanout bool) ([]entry, error) {
	var out []entry
	for _, alg := range algorithms {
		dirs := []string{dir + "/" + alg}
		if fanout {
			prefixes, err := r.d.List(ctx, dir+"/"+alg)
			if err != nil && !isNotFound(err) {
				return nil, fmt.Errorf("listing %s/%s: %w", dir, alg, err)
			}
			dirs = dirs[:0]
			for _, p := range prefixes {
				dirs = append(dirs, dir+"/"+alg+"/"+p)
			}
		}
		for _, sub := range dirs {
			names, err := r.d.List(ctx, sub)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("listing %s: %w", sub, err)
			}
			for _, n := range names {
				d, err := reference.ParseDigest(alg + ":" + n)
				if err != nil {
					continue
				}
				info, err := r.d.Stat(ctx, sub+"/"+n)
				if isNotFound(err) {
					continue // removed while listing
				}
				if err != nil {
					return nil, fmt.Errorf("stat %s/%s: %w", sub, n, err)
				}
				out = append(out, entry{digest: d, size: info.Size, modTime: info.ModTime})
			}
		}
	}
	return out, nil
}

func (r *Registry) listBlobs(ctx context.Context) ([]entry, error) {
	return r.listDigests(ctx, "blobs", true)
}

func (r *Registry) listLayerLinks(ctx context.Context, name string) ([]entry, error) {
	return r.listDigests(ctx, repoPath(name)+"/_layers", false)
}

func (r *Registry) listRevisions(ctx context.Context, name string) ([]entry, error) {
	return r.listDigests(ctx, repoPath(name)+"/_manifests/revisions", false)
}

// tagTargets maps each tag of name to the digest it points at.
func (r *Registry) tagTargets(ctx context.Context, name string) (map[string]reference.Digest, error) {
	tags, err := r.d.List(ctx, tagsDir(name))
	if isNotFound(err) {
		return map[string]reference.Digest{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", name, err)
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
