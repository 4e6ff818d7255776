package registry

import (
	"strings"
	"testing"

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
