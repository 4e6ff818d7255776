package securitytest

import (
	"bytes"
	"testing"

	"github.com/octoserve/octoserve/internal/registry"
)

// TestDuplicateKeyManifest is the attack of issue 10: an image manifest
// whose layers are not in the repository, with "mediaType" given a second
// time as an index and pushed as an index, was stored (Go keeps the last
// key) without its config and layers ever being checked. It is refused
// with MANIFEST_INVALID and nothing is stored.
func TestDuplicateKeyManifest(t *testing.T) {
	e := newHostileEnv(t)
	// manifestWith's config and layers are not in the repository.
	body := bytes.TrimSuffix(manifestWith(""), []byte("}"))
	body = append(body, []byte(`,"mediaType":"`+registry.MediaTypeOCIIndex+`","manifests":[]}`)...)
	before := tree(t, e.root)
	st, _, b := e.raw(t, "PUT", "/v2/library/app/manifests/dup", body, map[string]string{"Content-Type": registry.MediaTypeOCIIndex}, false)
	if st != 400 || errorCode(b) != "MANIFEST_INVALID" {
		t.Fatalf("manifest with mediaType twice: %d %s", st, b)
	}
	if d := diffTrees(before, tree(t, e.root)); d != "" {
		t.Fatalf("data directory changed:\n%s", d)
	}
}
