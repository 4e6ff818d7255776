package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/reference"
)

// cacheImage stores, as a pull-through cache does, config and layers in
// repo and a manifest over them tagged tag; it returns the manifest.
func cacheImage(t testing.TB, reg *Registry, repo, tag string, layers ...[]byte) *Manifest {
	t.Helper()
	ctx := context.Background()
	var descs []any
	for _, b := range append([][]byte{[]byte(`{"cached":"` + repo + ":" + tag + `"}`)}, layers...) {
		d := reference.FromBytes("sha256", b)
		fill, err := reg.FillBlob(ctx, repo, d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fill.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := fill.Verify(); err != nil {
			t.Fatal(err)
		}
		if err := fill.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		descs = append(descs, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(b)})
	}
	body, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaTypeOCIManifest, "config": descs[0], "layers": descs[1:]})
	m, err := reg.PutCachedManifest(ctx, repo, reference.FromBytes("sha256", body), MediaTypeOCIManifest, body, []string{tag})
	if err != nil {
		t.Fatalf("caching %s:%s: %v", repo, tag, err)
	}
	return m
}

// ageAll makes everything stored look written at the given age.
func ageAll(t *testing.T, root string, age time.Duration) {
	t.Helper()
	old := time.Now().Add(-age)
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			err = os.Chtimes(p, old, old)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// lastUsed sets the last use of cached manifest d of repo.
func lastUsed(t *testing.T, root, repo string, d reference.Digest, age time.Duration) {
	t.Helper()
	at := time.Now().Add(-age)
	if err := os.Chtimes(filepath.Join(root, cachedEntry(repo, d)), at, at); err != nil {
		t.Fatal(err)
	}
}

func blobStored(t *testing.T, reg *Registry, b []byte) bool {
	t.Helper()
	ok, err := reg.BlobStored(context.Background(), reference.FromBytes("sha256", b))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// Cached manifests not used for longer than the expiry go, with their
// tags, and so do the bytes only they used; bytes a local repository
// links stay, and so does every recently used or pushed manifest.
func TestCacheExpiryByLastUse(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	shared, onlyOld, onlyNew := []byte("layer shared with a local repository"), []byte("layer of the unused image"), []byte("layer of the used image")
	old := cacheImage(t, reg, "cache/app", "1", shared, onlyOld)
	used := cacheImage(t, reg, "cache/app", "2", onlyNew)
	pushed := pushImage(t, reg, "cache/app", "pushed", []byte("layer pushed into the cache's repository"))
	pushImage(t, reg, "local/app", "v1", shared)
	ageAll(t, root, 48*time.Hour)
	if err := reg.TouchCached(ctx, "cache/app", used.Digest); err != nil {
		t.Fatal(err)
	}
	settle(t, reg)

	report, err := reg.CollectGarbage(ctx, GCOptions{MinAge: time.Hour, CacheExpiry: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cache/app@" + old.Digest.String()}; len(report.Expired) != 1 || report.Expired[0] != want[0] {
		t.Fatalf("expired %v, want %v", report.Expired, want)
	}
	if _, err := reg.GetManifest(ctx, "cache/app", "1"); err == nil {
		t.Error("the tag of the expired manifest is still there")
	}
	if _, err := reg.GetManifest(ctx, "cache/app", old.Digest.String()); err == nil {
		t.Error("the expired manifest is still there")
	}
	if blobStored(t, reg, onlyOld) || blobStored(t, reg, old.Body) {
		t.Error("bytes only the expired manifest used were not freed")
	}
	if !blobStored(t, reg, shared) {
		t.Fatal("expiry freed a layer a local repository uses")
	}
	pullComplete(t, reg, "local/app", "v1")
	pullComplete(t, reg, "cache/app", "2")
	pullComplete(t, reg, "cache/app", "pushed")
	if _, err := reg.GetManifest(ctx, "cache/app", pushed.String()); err != nil {
		t.Errorf("a pushed manifest expired: %v", err)
	}
	v, err := reg.Verify(ctx, VerifyOptions{})
	if err != nil || len(v.Problems) > 0 {
		t.Fatalf("verify after expiry: %v %v", v.Problems, err)
	}
}

// Past the size cap, the least recently used cached manifests go first;
// bytes a local repository holds do not count, and what was used within
// gc.minAge never goes.
func TestCacheSizeCap(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	layer := func(c byte) []byte { return bytes.Repeat([]byte{c}, 10000) }
	shared := bytes.Repeat([]byte{'s'}, 50000)
	a := cacheImage(t, reg, "cache/r", "a", layer('a'), shared)
	b := cacheImage(t, reg, "cache/r", "b", layer('b'))
	c := cacheImage(t, reg, "cache/other", "c", layer('c'))
	recent := cacheImage(t, reg, "cache/other", "recent", layer('r'))
	pushImage(t, reg, "local/app", "v1", shared)
	ageAll(t, root, 48*time.Hour)
	lastUsed(t, root, "cache/r", a.Digest, 3*time.Hour)
	lastUsed(t, root, "cache/r", b.Digest, 10*time.Hour) // least recently used
	lastUsed(t, root, "cache/other", c.Digest, 2*time.Hour)
	if err := reg.TouchCached(ctx, "cache/other", recent.Digest); err != nil {
		t.Fatal(err)
	}
	settle(t, reg)
	size := func(m *Manifest, layers ...[]byte) int64 {
		n := int64(len(m.Body))
		var mf manifestFields
		_ = json.Unmarshal(m.Body, &mf)
		n += mf.Config.Size
		for _, l := range layers {
			n += int64(len(l))
		}
		return n
	}
	total := size(a, layer('a')) + size(b, layer('b')) + size(c, layer('c')) + size(recent, layer('r'))
	// Room for all but about two images: b and then a must go; c and the
	// recent one stay (the recent one could not go anyway).
	limit := total - size(b, layer('b')) - size(a, layer('a')) + 1
	report, err := reg.CollectGarbage(ctx, GCOptions{MinAge: time.Hour, CacheMaxBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	if report.CacheBytes != total {
		t.Errorf("cache bytes %d, want %d (the shared layer is not the cache's)", report.CacheBytes, total)
	}
	got := append([]string{}, report.Expired...)
	sort.Strings(got)
	want := []string{"cache/r@" + a.Digest.String(), "cache/r@" + b.Digest.String()}
	sort.Strings(want)
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("expired %v, want %v", got, want)
	}
	if !blobStored(t, reg, shared) || blobStored(t, reg, layer('a')) || blobStored(t, reg, layer('b')) {
		t.Error("the cap freed the wrong bytes")
	}
	pullComplete(t, reg, "cache/other", "c")
	pullComplete(t, reg, "cache/other", "recent")
	pullComplete(t, reg, "local/app", "v1")

	// Nothing is over the cap any more: the next collection expires nothing.
	report, err = reg.CollectGarbage(ctx, GCOptions{MinAge: time.Hour, CacheMaxBytes: limit})
	if err != nil || len(report.Expired) != 0 {
		t.Fatalf("second collection expired %v (%v)", report.Expired, err)
	}
}

// A dry run reports what expiry would remove and removes nothing.
func TestCacheExpiryDryRun(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	m := cacheImage(t, reg, "cache/app", "1", []byte("layer"))
	ageAll(t, root, 48*time.Hour)
	settle(t, reg)
	before := tree(t, root)
	report, err := reg.CollectGarbage(ctx, GCOptions{DryRun: true, MinAge: time.Hour, CacheExpiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Expired) != 1 || report.Expired[0] != "cache/app@"+m.Digest.String() || len(report.Blobs) != 3 {
		t.Errorf("dry run reports expired %v and %d blobs, want the manifest and its 3 blobs", report.Expired, len(report.Blobs))
	}
	if after := tree(t, root); after != before {
		t.Fatalf("a dry run changed the store:\n%s\n---\n%s", before, after)
	}
}

// A cache storing a manifest again while a collection expires it loses
// nothing it acknowledged: afterwards every tag points at a manifest that
// is there, and the last store leaves it complete.
func TestCacheExpiryBesideStores(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, t.TempDir())
	m := cacheImage(t, reg, "cache/app", "t", []byte("layer"))
	stop := make(chan struct{})
	stored := make(chan error, 1)
	go func() {
		// A store that loses to the collection every time it tries
		// answers an error — the cache fetches again on the next pull —
		// and never an acknowledgement of something missing, which the
		// checks below would find.
		acked := 0
		for {
			select {
			case <-stop:
				if acked == 0 {
					stored <- errors.New("no store was acknowledged beside the collections")
				}
				stored <- nil
				return
			default:
			}
			if _, err := reg.PutCachedManifest(ctx, "cache/app", m.Digest, m.MediaType, m.Body, []string{"t"}); err == nil {
				acked++
			}
		}
	}()
	for i := 0; i < 30; i++ {
		if _, err := reg.CollectGarbage(ctx, GCOptions{CacheExpiry: time.Nanosecond}); err != nil {
			t.Error(err)
			break
		}
	}
	close(stop)
	if err := <-stored; err != nil {
		t.Fatal(err)
	}
	v, err := reg.Verify(ctx, VerifyOptions{})
	if err != nil || len(v.Problems) > 0 {
		t.Fatalf("verify: %v %v", v.Problems, err)
	}
	if _, err := reg.PutCachedManifest(ctx, "cache/app", m.Digest, m.MediaType, m.Body, []string{"t"}); err != nil {
		t.Fatal(err)
	}
	if got, err := reg.GetManifest(ctx, "cache/app", "t"); err != nil || got.Digest != m.Digest {
		t.Fatalf("after the last store: %v", err)
	}
}

// verify does not report what a cache did not fetch: a cached index
// without its children, a cached image without its layers.
func TestVerifyCachedManifestsAreSparse(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, t.TempDir())
	child := []byte(`{"schemaVersion":2,"mediaType":"` + MediaTypeOCIManifest + `","config":{"mediaType":"a","digest":"` +
		reference.FromBytes("sha256", []byte("c")).String() + `","size":1},"layers":[]}`)
	cd := reference.FromBytes("sha256", child)
	if _, err := reg.PutCachedManifest(ctx, "cache/app", cd, MediaTypeOCIManifest, child, nil); err != nil {
		t.Fatal(err)
	}
	index := []byte(`{"schemaVersion":2,"mediaType":"` + MediaTypeOCIIndex + `","manifests":[{"mediaType":"` + MediaTypeOCIManifest + `","digest":"` +
		reference.FromBytes("sha256", []byte("other platform")).String() + `","size":10}]}`)
	if _, err := reg.PutCachedManifest(ctx, "cache/app", reference.FromBytes("sha256", index), MediaTypeOCIIndex, index, []string{"multi"}); err != nil {
		t.Fatal(err)
	}
	v, err := reg.Verify(ctx, VerifyOptions{})
	if err != nil || len(v.Problems) > 0 {
		t.Fatalf("verify: %v %v", v.Problems, err)
	}
	// A body that does not hash to the digest is refused.
	if _, err := reg.PutCachedManifest(ctx, "cache/app", cd, MediaTypeOCIManifest, index, nil); err == nil {
		t.Fatal("a manifest that does not match its digest was stored")
	}
}
