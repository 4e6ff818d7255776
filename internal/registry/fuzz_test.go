package registry

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/octoserve/octoserve/internal/reference"
)

// Run with: go test -fuzz=FuzzParseManifest ./internal/registry (see make fuzz).

func FuzzParseManifest(f *testing.F) {
	d := "sha256:" + strings.Repeat("a", 64)
	desc := `{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + d + `","size":3}`
	cfg := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + d + `","size":2}`
	for _, s := range []struct{ ct, body string }{
		{MediaTypeOCIManifest, `{"schemaVersion":2,"mediaType":"` + MediaTypeOCIManifest + `","config":` + cfg + `,"layers":[` + desc + `]}`},
		{"", `{"schemaVersion":2,"mediaType":"` + MediaTypeOCIIndex + `","manifests":[` + desc + `]}`},
		{MediaTypeDockerManifest, `{"schemaVersion":2,"config":` + cfg + `,"layers":[]}`},
		{MediaTypeDockerList, `{"schemaVersion":2,"manifests":[]}`},
		{MediaTypeOCIManifest, `{"schemaVersion":2,"config":` + cfg + `,"subject":` + desc + `,"artifactType":"x/y","annotations":{"a":"b"}}`},
		{MediaTypeOCIIndex, `{"schemaVersion":2,"mediaType":"` + MediaTypeOCIManifest + `","manifests":[]}`},
		{MediaTypeOCIManifest, `{"schemaVersion":1}`},
		{MediaTypeOCIManifest, `{"schemaVersion":2,"config":{"digest":"sha256:xyz","size":-1}}`},
		{MediaTypeOCIManifest, `{"schemaVersion":2,"config":` + cfg + `}{}`},
		{MediaTypeOCIManifest, `[[[[[[[[[[]]]]]]]]]]`},
		{MediaTypeOCIManifest, `{"schemaVersion":2.5}`},
		{MediaTypeOCIManifest, `{"schemaVersion":2,"config":` + cfg + `,"layers":null}`},
		{"text/plain", `{}`},
		{MediaTypeOCIManifest, ""},
		{MediaTypeOCIManifest, "\xff\xfe"},
		// Duplicate keys (issue 10), at the top, in descriptors, in maps, escaped
		// and differing in case; trailing data and bytes that are not UTF-8.
		{MediaTypeOCIIndex, `{"schemaVersion":2,"mediaType":"` + MediaTypeOCIManifest + `","config":` + cfg + `,"layers":[],"mediaType":"` + MediaTypeOCIIndex + `","manifests":[]}`},
		{"", `{"schemaVersion":2,"mediaType":"` + MediaTypeOCIIndex + `","MediaType":"` + MediaTypeOCIManifest + `","manifests":[]}`},
		{MediaTypeOCIManifest, `{"schemaVersion":2,"config":` + cfg + `,"layers":[{"digest":"` + d + `","size":1,"size":2}]}`},
		{MediaTypeOCIManifest, `{"schemaVersion":2,"config":` + cfg + `,"annotations":{"a":"1","A":"2","\u0061":"3"}}`},
		{MediaTypeOCIManifest, `{"schemaVersion":2,"schemaVerſion":2,"config":` + cfg + `}`},
		{MediaTypeOCIManifest, `{"schemaVersion":2,"config":` + cfg + `,"x":[{"k":1,"k":2}]}`},
		{MediaTypeOCIManifest, `{"schemaVersion":2,"config":` + cfg + `}]`},
		{MediaTypeOCIManifest, `{"schemaVersion":2,"config":` + cfg + `,"annotations":{"a":"\xff"}}`},
	} {
		f.Add(s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		mf, mediaType, err := parseManifest(contentType, body)
		if err != nil {
			return
		}
		if !isIndex(mediaType) && !isImageManifest(mediaType) {
			t.Fatalf("accepted media type %q", mediaType)
		}
		if contentType != "" && mediaType != contentType {
			t.Fatalf("media type %q differs from Content-Type %q", mediaType, contentType)
		}
		if mf.SchemaVersion != 2 {
			t.Fatalf("schemaVersion %d", mf.SchemaVersion)
		}
		if isImageManifest(mediaType) && mf.Config == nil {
			t.Fatal("image manifest without config accepted")
		}
		// What is accepted is one JSON document, in UTF-8, in which no
		// object holds a key twice.
		if !utf8.Valid(body) || !json.Valid(body) {
			t.Fatalf("accepted %q", body)
		}
		if k, dup := duplicateKey(body); dup {
			t.Fatalf("accepted a manifest with key %q twice", k)
		}
		// Every descriptor the registry reads (and later stats by digest)
		// has a valid digest and a non-negative size.
		for _, desc := range mf.descriptors(mediaType) {
			if _, err := reference.ParseDigest(desc.Digest); err != nil {
				t.Fatalf("descriptor with digest %q accepted", desc.Digest)
			}
			if desc.Size < 0 {
				t.Fatalf("descriptor with size %d accepted", desc.Size)
			}
		}
	})
}

// duplicateKey looks for a key twice in one object with encoding/json's
// tokenizer: a slow, independent check of checkManifestJSON.
func duplicateKey(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		keys     map[string]bool
		isObject bool
		wantKey  bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.isObject && top.wantKey {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return k, true
				}
				top.keys[k] = true
				top.wantKey = false
				continue
			}
		}
		if top != nil && top.isObject {
			top.wantKey = true // a value was read (or the object ends)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, isObject: true, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].isObject {
				stack[len(stack)-1].wantKey = true
			}
		}
	}
}
