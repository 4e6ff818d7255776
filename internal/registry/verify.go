package registry

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/octoserve/octoserve/internal/reference"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Quarantine moves a blob whose bytes do not hash to its digest out
	// of blobs/ (to _quarantine/), so that it is no longer served and the
	// next push of those bytes stores them anew. It takes the
	// housekeeping lease. Without it, Verify changes nothing.
	Quarantine bool
	Owner      string        // who takes the lease (default: host and pid)
	LeaseTTL   time.Duration // its term (default DefaultLeaseTTL)
}

// VerifyReport is what Verify checked and the inconsistencies it found.
type VerifyReport struct {
	Blobs, Repositories, Manifests, Tags int
	Problems                             []string // corruption: something stored is wrong or missing
	Notes                                []string // harmless leftovers a collection removes
	Quarantined                          []string // digests of blobs moved to _quarantine/
}

func (v *VerifyReport) problem(format string, args ...any) {
	v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
}

// Verify re-hashes every blob and checks that every manifest parses and
// finds what it references, and that every tag, link and referrer entry
// points at something that exists.
func (r *Registry) Verify(ctx context.Context, opts VerifyOptions) (*VerifyReport, error) {
	v := &VerifyReport{}
	var lease *Lease
	if opts.Quarantine {
		owner, ttl := GCOptions{Owner: opts.Owner, LeaseTTL: opts.LeaseTTL}.lease()
		l, err := r.AcquireLease(ctx, owner, ttl)
		if err != nil {
			return nil, err
		}
		defer l.Release(context.WithoutCancel(ctx))
		lease = l
	}
	err := r.walkBlobs(ctx, func(b *blobGroup) error { return r.verifyBlobGroup(ctx, lease, b, v) })
	if err != nil {
		return nil, err
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

func (r *Registry) verifyBlobGroup(ctx context.Context, lease *Lease, b *blobGroup, v *VerifyReport) error {
	if b.data == nil {
		for _, l := range b.links {
			// A push that failed beside a collection leaves one; nothing
			// serves it, and a manifest that needs the blob is a problem
			// reported with the manifest.
			v.Notes = append(v.Notes, fmt.Sprintf("%s: blob link %s without its blob (the next gc removes it)", repoName(l.Name), b.digest))
		}
		return nil
	}
	v.Blobs++
	err := r.verifyBlob(ctx, b.digest)
	if err == nil {
		return nil
	}
	v.problem("blob %s: %v", b.digest, err)
	if lease == nil {
		return nil
	}
	moved, qerr := r.quarantine(ctx, lease, b.digest)
	if qerr != nil {
		return qerr
	}
	if moved {
		v.Quarantined = append(v.Quarantined, b.digest.String())
	}
	return nil
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

// quarantine moves the corrupt blob d aside, unless, once marked, it turns
// out repaired: an upload of d stores its verified bytes over it, and one
// running now settles on the mark and then finds the blob gone, so it
// stores them again (protocol.go).
func (r *Registry) quarantine(ctx context.Context, l *Lease, d reference.Digest) (moved bool, err error) {
	unmark, err := r.mark(ctx, blobPath(d))
	if err != nil {
		return false, err
	}
	defer func() {
		if uerr := unmark(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	if err := r.verifyBlob(ctx, d); err == nil || isNotFound(err) {
		return false, nil
	}
	if !l.Valid() {
		return false, errLeaseLost
	}
	if err := r.d.Compose(ctx, quarantinePath(d), []string{blobPath(d)}); err != nil {
		return false, fmt.Errorf("quarantining %s: %w", d, err)
	}
	if err := r.d.Delete(ctx, blobPath(d)); err != nil {
		return false, fmt.Errorf("quarantining %s: %w", d, err)
	}
	r.manifest.remove(d.String())
	return true, nil
}

func quarantinePath(d reference.Digest) string { return "_quarantine/" + d.Algorithm() + "/" + d.Hex() }

func (r *Registry) verifyRepository(ctx context.Context, name string, v *VerifyReport) error {
	revs, err := r.listRevisions(ctx, name)
	if err != nil {
		return err
	}
	cached, err := r.cachedManifests(ctx, name)
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
		if ok, err := r.exists(ctx, blobPath(rev.digest)); err != nil {
			return err
		} else if !ok {
			v.problem("%s: manifest %s: its bytes are missing", name, rev.digest)
		}
		if r.opts.Sparse {
			continue
		}
		if cached[rev.digest] {
			continue // fetched by a pull-through cache: sparse
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

// checkReferencesExist reports the first blob or child manifest the
// manifest needs that repository name lacks.
func (r *Registry) checkReferencesExist(ctx context.Context, name, mediaType string, mf *manifestFields) error {
	for _, d := range mf.requiredBlobs(mediaType) {
		for _, p := range []string{blobLink(name, d), blobPath(d)} {
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
		subjects, err := r.d.Names(ctx, dir, "", 0)
		if err != nil {
			return fmt.Errorf("listing %s: %w", dir, err)
		}
		for _, s := range subjects {
			entries, err := r.listNames(ctx, dir+"/"+s.Name)
			if err != nil {
				return err
			}
			for _, e := range entries {
				d, err := referrerDigest(e)
				if err != nil {
					v.problem("%s: referrer entry %s/%s is not named by a digest", name, s.Name, e)
					continue
				}
				if ok, err := r.exists(ctx, revisionLink(name, d)); err != nil {
					return err
				} else if !ok {
					v.problem("%s: referrer %s of %s:%s is not a manifest of the repository", name, d, alg, s.Name)
				}
			}
		}
	}
	return nil
}
