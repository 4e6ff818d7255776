package registry

import (
	"fmt"
	"strings"
	"testing"

	"github.com/octoserve/octoserve/internal/ocierr"
)

// TestParseManifestRefusesDuplicateKeys: encoding/json keeps the last of
// two equal keys (and matches struct fields case-insensitively), other
// parsers keep the first or fail, so a manifest with a key twice means
// different things to the registry and to its clients — an image manifest
// stored as an index, its config and layers never checked. Such manifests
// are refused at any depth; keys that differ only in case are duplicates
// where encoding/json fills a struct, distinct in maps such as annotations.
func TestParseManifestRefusesDuplicateKeys(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	cfg := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + d + `","size":2}`
	layer := `{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + d + `","size":3}`
	image := func(extra string) string {
		return `{"schemaVersion":2,"mediaType":"` + MediaTypeOCIManifest + `","config":` + cfg + `,"layers":[` + layer + `]` + extra + `}`
	}
	many := func(dup bool) string {
		var kv []string
		for i := 0; i < 40; i++ {
			kv = append(kv, fmt.Sprintf(`"k%d":"v"`, i))
		}
		if dup {
			kv = append(kv, `"k7":"again"`)
		}
		return `,"annotations":{` + strings.Join(kv, ",") + `}`
	}
	for _, tc := range []struct {
		name, ct, body string
		ok             bool
	}{
		{"plain image", MediaTypeOCIManifest, image(""), true},
		{"image read as an index", MediaTypeOCIIndex, image(`,"mediaType":"` + MediaTypeOCIIndex + `","manifests":[]`), false},
		{"mediaType twice, no Content-Type", "", image(`,"mediaType":"` + MediaTypeOCIIndex + `"`), false},
		{"keys differing in case", "", image(`,"MediaType":"` + MediaTypeOCIIndex + `"`), false},
		{"unicode case folding", MediaTypeOCIManifest, image(`,"schemaVerſion":2`), false},
		{"escaped key", MediaTypeOCIManifest, image(`,"media\u0054ype":"` + MediaTypeOCIManifest + `"`), false},
		{"config digest twice", MediaTypeOCIManifest, strings.Replace(image(""), `"size":2}`, `"size":2,"Digest":"`+d+`"}`, 1), false},
		{"second layer with a key twice", MediaTypeOCIManifest, strings.Replace(image(""), `]`, `,{"digest":"`+d+`","size":1,"size":2}]`, 1), false},
		{"subject twice", MediaTypeOCIManifest, image(`,"subject":` + layer + `,"subject":` + layer), false},
		{"annotation twice", MediaTypeOCIManifest, image(`,"annotations":{"a":"1","a":"2"}`), false},
		{"annotations differing in case", MediaTypeOCIManifest, image(`,"annotations":{"a":"1","A":"2"}`), true},
		{"many annotations", MediaTypeOCIManifest, image(many(false)), true},
		{"many annotations, one twice", MediaTypeOCIManifest, image(many(true)), false},
		{"deep in an unknown field", MediaTypeOCIManifest, image(`,"x":{"y":[1,{"z":true,"w":null,"z":false}]}`), false},
		{"unknown fields differing in case", MediaTypeOCIManifest, image(`,"x":{"z":1,"Z":2}`), true},
		{"platform key twice", MediaTypeOCIIndex, `{"schemaVersion":2,"manifests":[{"mediaType":"` + MediaTypeOCIManifest + `","digest":"` + d + `","size":1,"platform":{"os":"linux","os":"windows"}}]}`, false},
		{"trailing bracket", MediaTypeOCIManifest, image("") + "]", false},
		{"trailing space", MediaTypeOCIManifest, image("") + " \n", true},
		{"not UTF-8", MediaTypeOCIManifest, image(`,"annotations":{"a":"` + "\xff" + `"}`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parseManifest(tc.ct, []byte(tc.body))
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if e, ok := ocierr.As(err); !ok || e.Code != ocierr.ManifestInvalid || e.Status != 400 {
				t.Fatalf("got %v, want 400 MANIFEST_INVALID", err)
			}
		})
	}
}

// benchManifest is an image manifest of 2,000 layers with annotations.
func benchManifest() []byte {
	d := "sha256:" + strings.Repeat("a", 64)
	var layers []string
	for i := 0; i < 2000; i++ {
		layers = append(layers, `{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"`+d+`","size":3,"annotations":{"a":"b","c":"d"}}`)
	}
	return []byte(`{"schemaVersion":2,"mediaType":"` + MediaTypeOCIManifest + `","config":{"mediaType":"x","digest":"` + d +
		`","size":2},"layers":[` + strings.Join(layers, ",") + `]}`)
}

// BenchmarkParseManifest and BenchmarkCheckManifestJSON: the key check
// (which allocates nothing) must stay a small part of parsing.
func BenchmarkParseManifest(b *testing.B) {
	body := benchManifest()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := parseManifest(MediaTypeOCIManifest, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckManifestJSON(b *testing.B) {
	body := benchManifest()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := checkManifestJSON(body); err != nil {
			b.Fatal(err)
		}
	}
}
