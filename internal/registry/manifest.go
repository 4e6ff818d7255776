package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
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
