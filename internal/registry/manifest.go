package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
)

// Manifest is a stored manifest: its bytes exactly as pushed.
type Manifest struct {
	Digest    reference.Digest
	MediaType string
	Body      []byte
}

// Descriptor is the OCI content descriptor.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	URLs         []string          `json:"urls,omitempty"`
	Platform     json.RawMessage   `json:"platform,omitempty"`
}

// manifestFields are the fields of image manifests and indexes that the
// registry reads; everything else is kept as pushed.
type manifestFields struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *Descriptor       `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Manifests     []Descriptor      `json:"manifests"`
	Subject       *Descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

func errManifestInvalid(format string, args ...any) *ocierr.Error {
	return ocierr.New(ocierr.ManifestInvalid, http.StatusBadRequest, "manifest invalid").WithDetail(fmt.Sprintf(format, args...))
}

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
	r.manifest.put(d.String(), b)
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

// manifestDigest computes the digest of body — with ref's algorithm when
// ref is a digest, which must then match — and collects the tags to set.
func manifestDigest(ref string, body []byte, tags []string) (reference.Digest, []string, error) {
	for _, t := range tags {
		if !reference.ValidTag(t) {
			return "", nil, ocierr.New(ocierr.TagInvalid, http.StatusBadRequest, "invalid tag %q", t)
		}
	}
	if !strings.Contains(ref, ":") {
		if !reference.ValidTag(ref) {
			return "", nil, ocierr.New(ocierr.TagInvalid, http.StatusBadRequest, "invalid tag %q", ref)
		}
		return reference.FromBytes("sha256", body), append([]string{ref}, tags...), nil
	}
	want, err := reference.ParseDigest(ref)
	if err != nil {
		return "", nil, ocierr.New(ocierr.DigestInvalid, http.StatusBadRequest, "invalid digest").WithDetail(err.Error())
	}
	if got := reference.FromBytes(want.Algorithm(), body); got != want {
		return "", nil, ocierr.New(ocierr.DigestInvalid, http.StatusBadRequest, "manifest digest did not match").
			WithDetail(map[string]string{"expected": want.String(), "computed": got.String()})
	}
	return want, tags, nil
}

// parseManifest checks body is a manifest of a supported type that agrees
// with the Content-Type it was pushed with, and returns its fields and type.
// The JSON must be UTF-8 (RFC 8259; encoding/json would silently replace
// bad bytes) with no key twice in an object (see checkManifestJSON).
func parseManifest(contentType string, body []byte) (*manifestFields, string, error) {
	if !utf8.Valid(body) {
		return nil, "", errManifestInvalid("not valid JSON: not UTF-8")
	}
	var mf manifestFields
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&mf); err != nil {
		return nil, "", errManifestInvalid("not valid JSON: %v", err)
	}
	if err := checkManifestJSON(body); err != nil {
		return nil, "", err
	}
	mediaType := contentType
	switch {
	case mediaType == "":
		mediaType = mf.MediaType
	case mf.MediaType != "" && mf.MediaType != mediaType:
		return nil, "", errManifestInvalid("mediaType %q does not match Content-Type %q", mf.MediaType, contentType)
	}
	if !isIndex(mediaType) && !isImageManifest(mediaType) {
		return nil, "", errManifestInvalid("unsupported manifest media type %q", mediaType)
	}
	if mf.SchemaVersion != 2 {
		return nil, "", errManifestInvalid("schemaVersion must be 2")
	}
	return &mf, mediaType, validateDescriptors(mediaType, &mf)
}

// descriptors returns every descriptor a manifest of mediaType points at:
// config and layers or child manifests, and the subject.
func (mf *manifestFields) descriptors(mediaType string) []Descriptor {
	var all []Descriptor
	if isImageManifest(mediaType) {
		if mf.Config != nil {
			all = append(all, *mf.Config)
		}
		all = append(all, mf.Layers...)
	} else {
		all = append(all, mf.Manifests...)
	}
	if mf.Subject != nil {
		all = append(all, *mf.Subject)
	}
	return all
}

func validateDescriptors(mediaType string, mf *manifestFields) error {
	if isImageManifest(mediaType) && mf.Config == nil {
		return errManifestInvalid("image manifest has no config")
	}
	for _, desc := range mf.descriptors(mediaType) {
		if _, err := reference.ParseDigest(desc.Digest); err != nil {
			return errManifestInvalid("descriptor: %v", err)
		}
		if desc.Size < 0 {
			return errManifestInvalid("descriptor %s has a negative size", desc.Digest)
		}
	}
	return nil
}

// requiredBlobs returns the blobs a manifest of mediaType needs in its
// repository: an image's config and its layers, except non-distributable
// ones, whose bytes may live elsewhere.
func (mf *manifestFields) requiredBlobs(mediaType string) []reference.Digest {
	if !isImageManifest(mediaType) {
		return nil
	}
	var out []reference.Digest
	for _, desc := range append([]Descriptor{*mf.Config}, mf.Layers...) {
		if !nonDistributable(desc.MediaType) {
			out = append(out, reference.Digest(desc.Digest))
		}
	}
	return out
}

// nonDistributable reports whether a layer's bytes may live elsewhere, so
// its presence in the repository is not required.
func nonDistributable(mediaType string) bool {
	return strings.Contains(mediaType, "nondistributable") || strings.Contains(mediaType, ".foreign.")
}

// references are the links a manifest relies on: its blobs' and its child
// manifests'.
type references struct {
	blobs []reference.Digest // blobs whose links were found
	links []string           // paths of the links found
}

// checkReferences requires every blob and child manifest the manifest
// references to be in the repository, unless the registry is sparse, and
// touches their links — touch, not stat: a link used by a new manifest
// must look fresh to a garbage collection running right now (see gc.go).
// It returns the links it found.
func (r *Registry) checkReferences(ctx context.Context, name, mediaType string, mf *manifestFields) (*references, error) {
	refs := &references{}
	check := func(path string, d reference.Digest, what string) error {
		err := r.d.Touch(ctx, path)
		switch {
		case err == nil:
			refs.links = append(refs.links, path)
			return nil
		case !isNotFound(err):
			return fmt.Errorf("touching %s link %s: %w", what, d, err)
		case r.opts.Sparse:
			return nil
		}
		return ocierr.New(ocierr.ManifestBlobUnknown, http.StatusBadRequest, "%s unknown to registry", what).WithDetail(map[string]string{"digest": d.String()})
	}
	for _, d := range mf.requiredBlobs(mediaType) {
		n := len(refs.links)
		if err := check(layerLink(name, d), d, "blob"); err != nil {
			return nil, err
		}
		if len(refs.links) > n {
			refs.blobs = append(refs.blobs, d)
		}
	}
	for _, desc := range mf.Manifests {
		d := reference.Digest(desc.Digest)
		if err := check(revisionLink(name, d), d, "manifest"); err != nil {
			return nil, err
		}
	}
	return refs, nil
}

// touchAgain touches the links found before once more, looking again for
// up to a second at one that is missing, since a collection moves a link
// it is judging aside for a moment; it reports whether all are there.
func (r *Registry) touchAgain(ctx context.Context, refs *references) (bool, error) {
	for _, path := range refs.links {
		for try := 0; ; try++ {
			err := r.d.Touch(ctx, path)
			if err == nil {
				break
			}
			if !isNotFound(err) {
				return false, fmt.Errorf("touching %s: %w", path, err)
			}
			if try == 20 {
				return false, nil
			}
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return true, nil
}

// storeManifest writes, in crash-safe order, the bytes, the repository's
// link, the referrer entry and the tags: each step is durable before the
// next makes it reachable. Once the link is written, the references are
// touched again and the bytes and referenced blobs checked again: a
// garbage collection that listed the repository's manifests before the
// link was written may be judging them unused right now (see gc.go).
func (r *Registry) storeManifest(ctx context.Context, name string, d reference.Digest, mediaType string, body []byte, mf *manifestFields, tags []string, refs *references) error {
	if err := r.ensureManifestBytes(ctx, d, body); err != nil {
		return err
	}
	r.manifest.put(d.String(), body)
	if err := r.d.PutContent(ctx, revisionLink(name, d), []byte(mediaType)); err != nil {
		return fmt.Errorf("linking manifest %s: %w", d, err)
	}
	if err := r.ensureManifestBytes(ctx, d, body); err != nil {
		return err
	}
	refuse := func(err error) error {
		_ = r.d.Delete(context.WithoutCancel(ctx), revisionLink(name, d))
		return err
	}
	if ok, err := r.touchAgain(ctx, refs); err != nil || !ok {
		if err == nil {
			err = ocierr.New(ocierr.ManifestBlobUnknown, http.StatusBadRequest, "blob unknown to registry: removed while the manifest was pushed")
		}
		return refuse(err)
	}
	for _, b := range refs.blobs {
		ok, err := r.blobPresent(ctx, b)
		if err != nil {
			return err
		}
		if !ok {
			return refuse(ocierr.New(ocierr.ManifestBlobUnknown, http.StatusBadRequest, "blob unknown to registry").WithDetail(map[string]string{"digest": b.String()}))
		}
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
	return nil
}

func (r *Registry) ensureManifestBytes(ctx context.Context, d reference.Digest, body []byte) error {
	have, err := r.exists(ctx, blobPath(d))
	if err != nil || have {
		return err
	}
	if err := r.d.PutContent(ctx, blobPath(d), body); err != nil {
		return fmt.Errorf("storing manifest %s: %w", d, err)
	}
	return nil
}

// DeleteManifest deletes a tag, or (ref a digest) a manifest with every tag
// pointing at it and its referrer entry.
func (r *Registry) DeleteManifest(ctx context.Context, name, ref string) error {
	if !strings.Contains(ref, ":") {
		return r.deleteTag(ctx, name, ref)
	}
	d, err := r.resolve(ctx, name, ref)
	if err != nil {
		return err
	}
	m, err := r.GetManifest(ctx, name, ref)
	if err != nil {
		return err
	}
	// Tags and the referrer entry go before the manifest itself, so a crash
	// midway leaves nothing pointing at a missing manifest.
	if err := r.untagDigest(ctx, name, d); err != nil {
		return err
	}
	var mf manifestFields
	if json.Unmarshal(m.Body, &mf) == nil && mf.Subject != nil {
		if subject, err := reference.ParseDigest(mf.Subject.Digest); err == nil {
			if err := r.d.Delete(ctx, referrerLink(name, subject, d)); err != nil && !isNotFound(err) {
				return fmt.Errorf("removing referrer %s: %w", d, err)
			}
		}
	}
	err = r.d.Delete(ctx, revisionLink(name, d))
	if isNotFound(err) {
		return errManifestUnknown(ref)
	}
	if err != nil {
		return fmt.Errorf("deleting manifest %s: %w", d, err)
	}
	return nil
}
