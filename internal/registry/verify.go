package registry

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/octoserve/octoserve/internal/reference"
)

// VerifyReport is what Verify checked and the inconsistencies it found.
type VerifyReport struct {
	Blobs, Repositories, Manifests, Tags int
	Problems                             []string // corruption: something stored is wrong or missing
	Notes                                []string // harmless leftovers a collection removes
}

func (v *VerifyReport) problem(format string, args ...any) {
	v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
}

// Verify re-hashes every blob and checks that every manifest parses and
// finds what it references, and that every tag, link and referrer entry
// points at something that exists. It changes nothing.
func (r *Registry) Verify(ctx context.Context) (*VerifyReport, error) {
	v := &VerifyReport{}
	blobs, err := r.listBlobs(ctx)
	if err != nil {
		return nil, err
	}
	for _, b := range blobs {
		v.Blobs++
		if err := r.verifyBlob(ctx, b.digest); err != nil {
			v.problem("blob %s: %v", b.digest, err)
		}
	}
	repos, err := r.allRepositories(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range repos {
		v.Repositories++
		if err := r.verifyRepository(ctx, name, v); err != nil {
			return v, err
		}
	}
	return v, nil
}

func (r *Registry) verifyBlob(ctx context.Context, d reference.Digest) error {
	rc, _, err := r.d.Reader(ctx, blobPath(d))
	if err != nil {
		return err
	}
	defer rc.Close()
	h := reference.NewHash(d.Algorithm())
	if _, err := io.Copy(h, rc); err != nil {
		return fmt.Errorf("reading: %w", err)
	}
	if got := reference.FromHash(d.Algorithm(), h); got != d {
		return fmt.Errorf("content hashes to %s", got)
	}
	return nil
}

func (r *Registry) verifyRepository(ctx context.Context, name string, v *VerifyReport) error {
	links, err := r.listLayerLinks(ctx, name)
	if err != nil {
		return err
	}
	for _, l := range links {
		if ok, err := r.exists(ctx, blobPath(l.digest)); err != nil {
			return err
		} else if !ok {
			// A push that failed beside a collection leaves one; nothing
			// serves it, and a manifest that needs the blob is a problem
			// reported below.
			v.Notes = append(v.Notes, fmt.Sprintf("%s: blob link %s without its blob (the next gc removes it)", name, l.digest))
		}
	}
	revs, err := r.listRevisions(ctx, name)
	if err != nil {
		return err
	}
	for _, rev := range revs {
		v.Manifests++
		mf, mediaType, err := r.storedManifest(ctx, name, rev.digest)
		if err != nil {
			v.problem("%s: %v", name, err)
			continue
		}
		if err := r.verifyManifestBytes(ctx, rev.digest); err != nil {
			v.problem("%s: manifest %s: %v", name, rev.digest, err)
		}
		if r.opts.Sparse {
			continue
		}
		if err := r.checkReferencesExist(ctx, name, mediaType, mf); err != nil {
			v.problem("%s: manifest %s: %v", name, rev.digest, err)
		}
	}
	tags, err := r.tagTargets(ctx, name)
	if err != nil {
		return err
	}
	for tag, d := range tags {
		v.Tags++
		if _, err := reference.ParseDigest(string(d)); err != nil {
			v.problem("%s: tag %s holds %q, not a digest", name, tag, d)
		} else if ok, err := r.exists(ctx, revisionLink(name, d)); err != nil {
			return err
		} else if !ok {
			v.problem("%s: tag %s points at missing manifest %s", name, tag, d)
		}
	}
	return r.verifyReferrers(ctx, name, v)
}

// verifyManifestBytes checks the stored bytes of manifest d hash to d;
// the blob pass already did unless the bytes are missing.
func (r *Registry) verifyManifestBytes(ctx context.Context, d reference.Digest) error {
	ok, err := r.exists(ctx, blobPath(d))
	if err != nil || ok {
		return err
	}
	return fmt.Errorf("its bytes are missing")
}

// checkReferencesExist reports the first blob or child manifest the
// manifest needs that repository name lacks.
func (r *Registry) checkReferencesExist(ctx context.Context, name, mediaType string, mf *manifestFields) error {
	for _, d := range mf.requiredBlobs(mediaType) {
		for _, p := range []string{layerLink(name, d), blobPath(d)} {
			if ok, err := r.exists(ctx, p); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("references blob %s, which is missing (%s)", d, p)
			}
		}
	}
	for _, desc := range mf.Manifests {
		if ok, err := r.exists(ctx, revisionLink(name, reference.Digest(desc.Digest))); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("references manifest %s, which is missing", desc.Digest)
		}
	}
	return nil
}

func (r *Registry) verifyReferrers(ctx context.Context, name string, v *VerifyReport) error {
	for _, alg := range algorithms {
		dir := repoPath(name) + "/_referrers/" + alg
		subjects, err := r.d.List(ctx, dir)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("listing %s: %w", dir, err)
		}
		for _, s := range subjects {
			entries, err := r.d.List(ctx, dir+"/"+s)
			if err != nil && !isNotFound(err) {
				return fmt.Errorf("listing referrers of %s:%s: %w", alg, s, err)
			}
			for _, e := range entries {
				d, err := reference.ParseDigest(strings.Replace(e, "-", ":", 1))
				if err != nil {
					v.problem("%s: referrer entry %s/%s is not named by a digest", name, s, e)
					continue
				}
				if ok, err := r.exists(ctx, revisionLink(name, d)); err != nil {
					return err
				} else if !ok {
					v.problem("%s: referrer %s of %s:%s is not a manifest of the repository", name, d, alg, s)
				}
			}
		}
	}
	return nil
}
