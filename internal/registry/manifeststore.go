package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
)

// resolve turns a tag or digest into the digest of a manifest in name.
func (r *Registry) resolve(ctx context.Context, name, ref string) (reference.Digest, error) {
	if strings.Contains(ref, ":") {
		d, err := reference.ParseDigest(ref)
		if err != nil {
			return "", errManifestUnknown(ref)
		}
		return d, nil
	}
	if !reference.ValidTag(ref) {
		return "", errManifestUnknown(ref)
	}
	b, err := r.d.GetContent(ctx, tagPath(name, ref))
	if isNotFound(err) {
		return "", errManifestUnknown(ref)
	}
	if err != nil {
		return "", fmt.Errorf("reading tag %s: %w", ref, err)
	}
	d, err := reference.ParseDigest(string(b))
	if err != nil {
		return "", fmt.Errorf("tag %s of %s holds a bad digest: %w", ref, name, err)
	}
	return d, nil
}

// GetManifest returns the manifest ref (a tag or digest) of repository name.
func (r *Registry) GetManifest(ctx context.Context, name, ref string) (*Manifest, error) {
	d, err := r.resolve(ctx, name, ref)
	if err != nil {
		return nil, err
	}
	mt, err := r.d.GetContent(ctx, revisionLink(name, d))
	if isNotFound(err) {
		return nil, errManifestUnknown(ref)
	}
	if err != nil {
		return nil, fmt.Errorf("reading manifest link %s: %w", d, err)
	}
	body, err := r.manifestBytes(ctx, d)
	if err != nil {
		return nil, err
	}
	return &Manifest{Digest: d, MediaType: string(mt), Body: body}, nil
}

func (r *Registry) manifestBytes(ctx context.Context, d reference.Digest) ([]byte, error) {
	if b, ok := r.manifest.get(d.String()); ok {
		return b, nil
	}
	b, err := r.d.GetContent(ctx, blobPath(d))
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", d, err)
	}
	// Only bytes that match their digest are kept: damaged ones (a damaged
	// disk or bucket) are read again next time, so that once they are
	// stored again — by a push through any process — this one serves the
	// repaired bytes too, instead of contradicting the store until it
	// restarts.
	if reference.FromBytes(d.Algorithm(), b) == d {
		r.manifest.put(d.String(), b)
	}
	return b, nil
}

// PutResult says what PutManifest stored.
type PutResult struct {
	Digest  reference.Digest
	Subject reference.Digest // empty without a subject
	Tags    []string         // tags now pointing at Digest
}

// PutManifest validates and stores body as manifest ref (a tag or digest)
// of repository name, and points each of tags at it too.
func (r *Registry) PutManifest(ctx context.Context, name, ref, contentType string, body []byte, tags []string) (*PutResult, error) {
	if int64(len(body)) > r.opts.MaxManifestBytes {
		return nil, ocierr.New(ocierr.SizeInvalid, http.StatusRequestEntityTooLarge, "manifest exceeds %d bytes", r.opts.MaxManifestBytes)
	}
	d, tags, err := manifestDigest(ref, body, tags)
	if err != nil {
		return nil, err
	}
	mf, mediaType, err := parseManifest(contentType, body)
	if err != nil {
		return nil, err
	}
	refs, err := r.checkReferences(ctx, name, mediaType, mf)
	if err != nil {
		return nil, err
	}
	res := &PutResult{Digest: d, Tags: tags}
	if mf.Subject != nil {
		res.Subject = reference.Digest(mf.Subject.Digest)
	}
	return res, r.storeManifest(ctx, name, d, mediaType, body, mf, tags, refs)
}

// references are what a manifest relies on in its repository: the links
// of its blobs and of its child manifests, and the blobs' bytes.
type references struct {
	links []string // links found and refreshed
	blobs []string // paths of the blobs' bytes
}

// checkReferences requires every blob and child manifest the manifest
// references to be in the repository, unless the registry is sparse, and
// refreshes their links — Touch, not Stat: a link a new manifest uses
// must look young to a garbage collection running now (protocol.go).
func (r *Registry) checkReferences(ctx context.Context, name, mediaType string, mf *manifestFields) (*references, error) {
	refs := &references{}
	check := func(path string, d reference.Digest, what string) (bool, error) {
		err := r.d.Touch(ctx, path)
		switch {
		case err == nil:
			refs.links = append(refs.links, path)
			return true, nil
		case !isNotFound(err):
			return false, fmt.Errorf("refreshing %s link %s: %w", what, d, err)
		case r.opts.Sparse:
			return false, nil
		}
		return false, ocierr.New(ocierr.ManifestBlobUnknown, http.StatusBadRequest, "%s unknown to registry", what).WithDetail(map[string]string{"digest": d.String()})
	}
	for _, d := range mf.requiredBlobs(mediaType) {
		found, err := check(blobLink(name, d), d, "blob")
		if err != nil {
			return nil, err
		}
		if found {
			refs.blobs = append(refs.blobs, blobPath(d))
		}
	}
	for _, desc := range mf.Manifests {
		d := reference.Digest(desc.Digest)
		if _, err := check(revisionLink(name, d), d, "manifest"); err != nil {
			return nil, err
		}
	}
	return refs, nil
}

// refresh touches links once more; it reports whether all are still
// there.
func (r *Registry) refresh(ctx context.Context, links []string) (bool, error) {
	for _, p := range links {
		if err := r.d.Touch(ctx, p); isNotFound(err) {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("refreshing %s: %w", p, err)
		}
	}
	return true, nil
}

func errReferenceGone() *ocierr.Error {
	return ocierr.New(ocierr.ManifestBlobUnknown, http.StatusBadRequest,
		"blob unknown to registry: removed by garbage collection while the manifest was pushed; push the blob again")
}

// storeManifest writes, in crash-safe order, the bytes, their link in the
// repository, the manifest link, the referrer entry and the tags: each
// step is durable before the next makes it reachable. It does the
// writer's half of the collection protocol (protocol.go) twice.
//
// Once the manifest link is written, the references and the bytes' own
// link are refreshed again — the first refresh alone would not do: a
// collection that listed the repository's manifests before the manifest
// link was written judges these links by their age, and a push slower
// than gc.minAge would make them look old — and everything the manifest
// relies on is checked once no collection is judging it; a reference
// gone refuses the push before any tag moves.
//
// Once the tags are written, the manifest link is refreshed and checked
// once more: a collection removing untagged manifests may have read the
// tags before they were written.
func (r *Registry) storeManifest(ctx context.Context, name string, d reference.Digest, mediaType string, body []byte, mf *manifestFields, tags []string, refs *references) error {
	existed, err := r.exists(ctx, revisionLink(name, d))
	if err != nil {
		return err
	}
	if err := r.storeManifestLinks(ctx, name, d, mediaType, body, refs, existed); err != nil {
		return err
	}
	if mf.Subject != nil {
		if err := r.putReferrer(ctx, name, d, mediaType, int64(len(body)), mf); err != nil {
			return err
		}
	}
	for _, t := range tags {
		if err := r.d.PutContent(ctx, tagPath(name, t), []byte(d)); err != nil {
			return fmt.Errorf("tagging %s as %s: %w", d, t, err)
		}
	}
	if err := r.keepManifest(ctx, name, d, mediaType, body, refs, existed); err != nil {
		r.untagRefused(context.WithoutCancel(ctx), name, d, tags)
		return err
	}
	return nil
}

// untagRefused removes the tags a refused push wrote, those still
// pointing at its manifest d, so that none points at what is not there.
func (r *Registry) untagRefused(ctx context.Context, name string, d reference.Digest, tags []string) {
	for _, t := range tags {
		if b, err := r.d.GetContent(ctx, tagPath(name, t)); err == nil && string(b) == d.String() {
			_ = r.d.Delete(ctx, tagPath(name, t))
		}
	}
}

// storeManifestLinks stores the bytes and the links of manifest d and
// returns once they and everything the manifest references are in place.
func (r *Registry) storeManifestLinks(ctx context.Context, name string, d reference.Digest, mediaType string, body []byte, refs *references, existed bool) error {
	refuse := func(err error) error {
		if !existed {
			_ = r.d.Delete(context.WithoutCancel(ctx), revisionLink(name, d))
		}
		return err
	}
	own := []string{blobPath(d), blobLink(name, d), revisionLink(name, d)}
	referenced := append(append([]string{}, refs.links...), refs.blobs...)
	relied := append(append([]string{}, own...), referenced...)
	for try := 1; ; try++ {
		if err := r.writeManifestBytes(ctx, d, body); err != nil {
			return err
		}
		if err := r.linkBlob(ctx, name, d); err != nil {
			return err
		}
		if err := r.d.PutContent(ctx, revisionLink(name, d), []byte(mediaType)); err != nil {
			return fmt.Errorf("linking manifest %s: %w", d, err)
		}
		// The bytes' own link is refreshed too; if a collection removed it
		// meanwhile, the check below finds it missing and the loop writes
		// it again, as any of the manifest's own objects.
		if err := r.d.Touch(ctx, blobLink(name, d)); err != nil && !isNotFound(err) {
			return fmt.Errorf("refreshing the link of manifest %s: %w", d, err)
		}
		ok, err := r.refresh(ctx, refs.links)
		if err == nil && ok {
			err = r.settle(ctx, relied...)
		}
		if err == nil && ok {
			ok, err = r.allExist(ctx, referenced...)
		}
		if err != nil || !ok {
			if err == nil {
				err = errReferenceGone()
			}
			return refuse(err)
		}
		if ok, err = r.allExist(ctx, own...); err != nil || ok {
			return err
		}
		if try == 3 {
			return refuse(fmt.Errorf("manifest %s was removed by garbage collection %d times while it was stored", d, try))
		}
	}
}

// keepManifest refreshes the link of manifest d after its tags were
// written and, once no collection is judging it, stores the manifest
// again — bytes, links and the check of what it references — if one
// removed it in between (a collection removing untagged manifests that
// read the tags before they were written; with minAge that short, it may
// have removed the bytes' link and bytes as well).
func (r *Registry) keepManifest(ctx context.Context, name string, d reference.Digest, mediaType string, body []byte, refs *references, existed bool) error {
	link := revisionLink(name, d)
	for try := 1; ; try++ {
		err := r.d.Touch(ctx, link)
		if err == nil {
			err = r.settle(ctx, link)
		}
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("keeping manifest %s: %w", d, err)
		}
		if ok, err := r.exists(ctx, link); err != nil || ok {
			return err
		}
		if try == 3 {
			return fmt.Errorf("manifest %s was removed by garbage collection %d times after it was tagged", d, try)
		}
		if err := r.storeManifestLinks(ctx, name, d, mediaType, body, refs, existed); err != nil {
			return err
		}
	}
}

// writeManifestBytes stores the verified body of manifest d unless the
// stored bytes are exactly it: stored bytes are never trusted over a body
// just verified.
func (r *Registry) writeManifestBytes(ctx context.Context, d reference.Digest, body []byte) error {
	stored, err := r.d.GetContent(ctx, blobPath(d))
	if err == nil && bytes.Equal(stored, body) {
		r.manifest.put(d.String(), body)
		return nil
	}
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("reading manifest %s: %w", d, err)
	}
	if err := r.d.PutContent(ctx, blobPath(d), body); err != nil {
		return fmt.Errorf("storing manifest %s: %w", d, err)
	}
	r.manifest.put(d.String(), body)
	return nil
}

// DeleteManifest deletes a tag, or (ref a digest) a manifest with every tag
// pointing at it, its referrer entry and its bytes' link.
func (r *Registry) DeleteManifest(ctx context.Context, name, ref string) error {
	if !strings.Contains(ref, ":") {
		return r.deleteTag(ctx, name, ref)
	}
	m, err := r.GetManifest(ctx, name, ref)
	if err != nil {
		return err
	}
	d := m.Digest
	// Tags and the referrer entry go before the manifest itself, so a crash
	// midway leaves nothing pointing at a missing manifest.
	if err := r.untagDigest(ctx, name, d); err != nil {
		return err
	}
	var mf manifestFields
	if json.Unmarshal(m.Body, &mf) == nil && mf.Subject != nil {
		if subject, err := reference.ParseDigest(mf.Subject.Digest); err == nil {
			if err := r.d.Delete(ctx, referrerLink(name, subject, d)); err != nil {
				return fmt.Errorf("removing referrer %s: %w", d, err)
			}
		}
	}
	for _, p := range []string{revisionLink(name, d), blobLink(name, d)} {
		if err := r.d.Delete(ctx, p); err != nil {
			return fmt.Errorf("deleting manifest %s: %w", d, err)
		}
	}
	return nil
}
