//go:build replicas

package replicas

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
)

// TestTagMoveSeenByEveryReplica moves one tag between manifests, each
// move through another replica, and reads it right after from every
// other replica and the balancer, with no wait: each must already serve
// the new digest (GET and HEAD) — no replica keeps a tag in memory. Then
// a tag deleted through one replica, and a manifest deleted by digest
// through another, are gone from every replica at once.
func TestTagMoveSeenByEveryReplica(t *testing.T) {
	c := newClient()
	bases := cl.bases()
	n := len(bases)
	rng := rand.New(rand.NewPCG(12, 3))
	repo := repoName("tags")
	shared := randomBytes(rng, 32<<10)
	var images []image
	for i := range 4 {
		img := newImage(rng, fmt.Sprintf("tag move %d", i), shared)
		if err := c.pushImage(&rotation{bases: bases, next: i}, repo, img.digest, img); err != nil {
			t.Fatal(err)
		}
		images = append(images, img)
	}

	moves := 4 * n
	for i := range moves {
		writer := cl.replicas[i%n]
		img := images[i%len(images)]
		if err := c.pushManifest(writer.base(), repo, "moving", img.manifest); err != nil {
			t.Fatalf("move %d through %s: %v", i, writer.name, err)
		}
		for _, r := range cl.replicas {
			if err := c.pull(r.base(), repo, "moving", img); err != nil {
				t.Fatalf("move %d (through %s), read on %s at once: %v", i, writer.name, r.name, err)
			}
		}
		if got, err := c.tagDigest(cl.lbBase(), repo, "moving"); err != nil || got != img.digest {
			t.Fatalf("move %d (through %s), HEAD through the balancer: %s %v, want %s", i, writer.name, got, err, img.digest)
		}
	}

	// Another tag, then the tag deleted through one replica.
	if err := c.pushManifest(bases[0], repo, "kept", images[1].manifest); err != nil {
		t.Fatal(err)
	}
	if _, err := c.expect(http.StatusAccepted, http.MethodDelete, bases[1%n]+"/v2/"+repo+"/manifests/moving", nil, nil); err != nil {
		t.Fatalf("deleting the tag through %s: %v", cl.replicas[1%n].name, err)
	}
	for _, r := range cl.replicas {
		if _, err := c.expect(http.StatusNotFound, http.MethodGet, r.base()+"/v2/"+repo+"/manifests/moving", nil, nil); err != nil {
			t.Fatalf("the deleted tag on %s: %v", r.name, err)
		}
		if tags := c.tags(t, r.base(), repo); !slices.Equal(tags, []string{"kept"}) {
			t.Fatalf("tags on %s after the delete: %v, want [kept]", r.name, tags)
		}
	}

	// A manifest deleted by digest through another replica: its tag goes
	// with it, everywhere.
	if _, err := c.expect(http.StatusAccepted, http.MethodDelete, bases[2%n]+"/v2/"+repo+"/manifests/"+images[1].digest, nil, nil); err != nil {
		t.Fatalf("deleting a manifest through %s: %v", cl.replicas[2%n].name, err)
	}
	for _, r := range cl.replicas {
		for _, ref := range []string{images[1].digest, "kept"} {
			if _, err := c.expect(http.StatusNotFound, http.MethodGet, r.base()+"/v2/"+repo+"/manifests/"+ref, nil, nil); err != nil {
				t.Fatalf("the deleted manifest as %s on %s: %v", ref, r.name, err)
			}
		}
		if tags := c.tags(t, r.base(), repo); len(tags) != 0 {
			t.Fatalf("tags on %s after the manifest's delete: %v, want none", r.name, tags)
		}
		if err := c.pull(r.base(), repo, images[0].digest, images[0]); err != nil {
			t.Fatalf("a manifest not deleted, on %s: %v", r.name, err)
		}
	}
	t.Logf("%d tag moves over %d replicas, each read at once from all; a tag delete and a manifest delete seen by all at once", moves, n)
}

// tags lists the tags of repo on base.
func (c *client) tags(t *testing.T, base, repo string) []string {
	t.Helper()
	r, err := c.expect(http.StatusOK, http.MethodGet, base+"/v2/"+repo+"/tags/list", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatalf("tags list on %s: %v", base, err)
	}
	return list.Tags
}
