package registry

import (
	"bytes"
	"context"
	"testing"

	"github.com/octoserve/octoserve/internal/storage/memory"
)

// Three replicas — three registries on one store, as three processes on
// one bucket are. The stored bytes of a manifest get damaged; replica C
// reads them; the manifest is pushed again through replica B (as a client
// does once verify has quarantined it), which stores the right bytes. C
// must then serve the right bytes too: a cache that kept what C read
// would contradict the store for as long as C runs, even after pushes
// through C itself.
func TestManifestCacheNeverHoldsDamagedBytes(t *testing.T) {
	ctx := context.Background()
	d := memory.New()
	a, b, c := New(d, Options{}), New(d, Options{}), New(d, Options{})
	dg := pushImage(t, a, "r", "v1", []byte("a layer"))
	good, err := b.GetManifest(ctx, "r", dg.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(ctx, blobPath(dg), []byte(`{"damaged":true}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetManifest(ctx, "r", dg.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutManifest(ctx, "r", "v1", MediaTypeOCIManifest, good.Body, nil); err != nil {
		t.Fatal(err)
	}
	for name, reg := range map[string]*Registry{"a": a, "b": b, "c": c} {
		m, err := reg.GetManifest(ctx, "r", dg.String())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Body, good.Body) {
			t.Fatalf("replica %s serves %q after the manifest was stored again, not the pushed bytes", name, m.Body)
		}
	}
}
