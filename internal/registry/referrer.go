package registry

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/octoserve/octoserve/internal/reference"
)

// putReferrer records manifest d as a referrer of its subject, with the
// descriptor the referrers API serves, so listing never re-parses manifests.
func (r *Registry) putReferrer(ctx context.Context, name string, d reference.Digest, mediaType string, size int64, mf *manifestFields) error {
	artifactType := mf.ArtifactType
	if artifactType == "" && mf.Config != nil && isImageManifest(mediaType) {
		artifactType = mf.Config.MediaType
	}
	desc := Descriptor{
		MediaType:    mediaType,
		Digest:       d.String(),
		Size:         size,
		ArtifactType: artifactType,
		Annotations:  mf.Annotations,
	}
	b, err := json.Marshal(desc)
	if err != nil {
		return fmt.Errorf("encoding referrer descriptor: %w", err)
	}
	subject := reference.Digest(mf.Subject.Digest)
	if err := r.d.PutContent(ctx, referrerLink(name, subject, d), b); err != nil {
		return fmt.Errorf("recording referrer %s of %s: %w", d, subject, err)
	}
	return nil
}

// Referrers returns the descriptors of the manifests in repository name
// whose subject is subject, filtered by artifactType when it is not empty,
// ordered by digest so that pages are stable.
func (r *Registry) Referrers(ctx context.Context, name string, subject reference.Digest, artifactType string) ([]Descriptor, error) {
	entries, err := r.listNames(ctx, referrersDir(name, subject))
	if err != nil {
		return nil, err
	}
	out := []Descriptor{}
	for _, e := range entries {
		b, err := r.d.GetContent(ctx, referrersDir(name, subject)+"/"+e)
		if isNotFound(err) {
			continue // deleted while listing
		}
		if err != nil {
			return nil, fmt.Errorf("reading referrer %s: %w", e, err)
		}
		var desc Descriptor
		if err := json.Unmarshal(b, &desc); err != nil {
			return nil, fmt.Errorf("decoding referrer %s: %w", e, err)
		}
		if artifactType == "" || desc.ArtifactType == artifactType {
			out = append(out, desc)
		}
	}
	return out, nil
}
