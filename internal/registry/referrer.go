package registry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/octoserve/octoserve/internal/reference"
)

// putReferrer records manifest d as a referrer of its subject, with the
// descriptor the referrers API serves, so listing never re-parses
// manifests. The spec wants every annotation of the manifest in it, so
// the entry is as large as the manifest's annotations (at most about the
// manifest's size: HTML characters are not escaped); listing pages by
// bytes, so no size of entry makes a listing unbounded.
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
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(desc); err != nil {
		return fmt.Errorf("encoding referrer descriptor: %w", err)
	}
	subject := reference.Digest(mf.Subject.Digest)
	if err := r.d.PutContent(ctx, referrerLink(name, subject, d), bytes.TrimSuffix(buf.Bytes(), []byte("\n"))); err != nil {
		return fmt.Errorf("recording referrer %s of %s: %w", d, subject, err)
	}
	return nil
}

// Page bounds of the referrers API: a page stops before the descriptor
// that would take it past either, but always holds at least one.
const (
	DefaultReferrersPageCount = 1000
	DefaultReferrersPageBytes = 1 << 20
)

// ReferrersQuery selects one page of a subject's referrers.
type ReferrersQuery struct {
	ArtifactType string // only referrers of this artifactType; "" for all
	After        string // ReferrersPage.Next of the previous page; "" for the first
	MaxCount     int    // descriptors per page; 0: DefaultReferrersPageCount
	MaxBytes     int    // bytes of descriptors per page; 0: DefaultReferrersPageBytes
}

// ReferrersPage is one page of referrers: each descriptor's JSON as
// stored, and where the next page starts ("" when this is the last).
type ReferrersPage struct {
	Descriptors []json.RawMessage
	Next        string
}

// ListReferrers returns one page of the descriptors of the manifests in
// repository name whose subject is subject, ordered by digest so that
// pages are stable. Entries are read one at a time and only as far as the
// page needs (one past it, to know whether another page follows), and an
// artifactType filter reads only the head of the entries it skips, so a
// request's memory is bounded by the page, whatever was pushed.
func (r *Registry) ListReferrers(ctx context.Context, name string, subject reference.Digest, q ReferrersQuery) (*ReferrersPage, error) {
	if q.MaxCount <= 0 {
		q.MaxCount = DefaultReferrersPageCount
	}
	if q.MaxBytes <= 0 {
		q.MaxBytes = DefaultReferrersPageBytes
	}
	page := &ReferrersPage{Descriptors: []json.RawMessage{}}
	dir := referrersDir(name, subject)
	listed, err := r.d.Names(ctx, dir, q.After, 0)
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s: %w", subject, err)
	}
	size, last := 0, ""
	for _, l := range listed {
		if l.Dir {
			continue
		}
		e := l.Name
		desc, err := r.referrerEntry(ctx, dir+"/"+e, q.ArtifactType)
		if err != nil {
			return nil, err
		}
		if desc == nil {
			continue
		}
		if n := len(page.Descriptors); n > 0 && (n == q.MaxCount || size+len(desc) > q.MaxBytes) {
			page.Next = last
			return page, nil
		}
		page.Descriptors = append(page.Descriptors, desc)
		size += len(desc) + 1
		last = e
	}
	return page, nil
}

// Referrers returns every referrer of subject in repository name (of
// artifactType, when it is not empty) without its annotations, for
// housekeeping that needs to know which manifests refer to subject, not
// what they say; the HTTP API pages with ListReferrers.
func (r *Registry) Referrers(ctx context.Context, name string, subject reference.Digest, artifactType string) ([]Descriptor, error) {
	out := []Descriptor{}
	q := ReferrersQuery{ArtifactType: artifactType}
	for {
		page, err := r.ListReferrers(ctx, name, subject, q)
		if err != nil {
			return nil, err
		}
		for _, b := range page.Descriptors {
			var desc Descriptor
			if err := json.Unmarshal(b, &desc); err != nil {
				return nil, fmt.Errorf("decoding a referrer of %s: %w", subject, err)
			}
			desc.Annotations = nil
			out = append(out, desc)
		}
		if page.Next == "" {
			return out, nil
		}
		q.After = page.Next
	}
}

// referrerEntry reads the referrer entry at path, or nil when it is gone
// (deleted while listing) or, with artifactType set, of another type.
func (r *Registry) referrerEntry(ctx context.Context, path, artifactType string) (json.RawMessage, error) {
	if artifactType != "" {
		at, err := r.referrerArtifactType(ctx, path)
		if isNotFound(err) || (err == nil && at != artifactType) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
	b, err := r.d.GetContent(ctx, path)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading referrer %s: %w", path, err)
	}
	// Served as stored: it must be one JSON object.
	if !json.Valid(b) || len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("referrer entry %s is not a JSON object", path)
	}
	return b, nil
}

// referrerArtifactType reads the artifactType of the referrer entry at
// path, decoding it token by token and stopping there. Entries are
// written from a Descriptor, whose fields come in a fixed order, so the
// annotations (which may be large) are never read: artifactType comes
// before them or is absent.
func (r *Registry) referrerArtifactType(ctx context.Context, path string) (string, error) {
	rc, _, err := r.d.Reader(ctx, path)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(rc, 4096))
	bad := func(err error) (string, error) { return "", fmt.Errorf("decoding referrer %s: %w", path, err) }
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return bad(fmt.Errorf("not a JSON object (%v)", err))
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return bad(err)
		}
		switch key {
		case "artifactType":
			var at string
			if err := dec.Decode(&at); err != nil {
				return bad(err)
			}
			return at, nil
		case "annotations", "urls", "platform":
			return "", nil
		}
		if err := skipValue(dec); err != nil {
			return bad(err)
		}
	}
	return "", nil
}

// skipValue reads the next value of dec without keeping it.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
