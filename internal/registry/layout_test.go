package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/octoserve/octoserve/internal/reference"
)

// A store written by octoserve before the layout changed — blob links in
// the repositories, no catalog index, upload sessions by id — reads the
// same after UpgradeLayout, and a second upgrade changes nothing.
func TestUpgradeLayout1(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	write := func(rel string, b []byte) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, layer := []byte(`{"os":"linux"}`), []byte("layer of a layout 1 image")
	cd, ld := reference.FromBytes("sha256", cfg), reference.FromBytes("sha256", layer)
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaTypeOCIManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": len(layer)}}})
	md := reference.FromBytes("sha256", m)
	for d, b := range map[reference.Digest][]byte{cd: cfg, ld: layer, md: m} {
		write(blobPath(d), b)
	}
	for _, d := range []reference.Digest{cd, ld} {
		write("repositories/team/app/_layers/sha256/"+d.Hex(), nil)
	}
	write(revisionLink("team/app", md), []byte(MediaTypeOCIManifest))
	write(tagPath("team/app", "v1"), []byte(md))
	write("uploads/0f8c2a4e-1b2c-4d5e-8f90-a1b2c3d4e5f6/repository", []byte("team/app"))
	write("uploads/0f8c2a4e-1b2c-4d5e-8f90-a1b2c3d4e5f6/data", []byte("half"))
	write("_gc/"+blobPath(reference.FromBytes("sha256", []byte("set aside"))), []byte("set aside"))

	reg := newRegistry(t, root)
	n, err := reg.UpgradeLayout(ctx)
	if err != nil || n != 3 {
		t.Fatalf("upgrade wrote %d links, %v; want 3 (config, layer, manifest)", n, err)
	}
	pullComplete(t, reg, "team/app", "v1")
	if repos, _, err := reg.Repositories(ctx, -1, ""); err != nil || len(repos) != 1 || repos[0] != "team/app" {
		t.Fatalf("catalog %v, %v", repos, err)
	}
	if _, err := os.Stat(filepath.Join(root, "repositories/team/app/_layers")); !os.IsNotExist(err) {
		t.Fatalf("layout 1 links left behind: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "uploads/0f8c2a4e-1b2c-4d5e-8f90-a1b2c3d4e5f6")); !os.IsNotExist(err) {
		t.Fatalf("a layout 1 upload session left behind: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, blobPath(reference.FromBytes("sha256", []byte("set aside"))))); err != nil || !bytes.Equal(b, []byte("set aside")) {
		t.Fatalf("a blob a layout 1 collection had set aside was not put back: %q %v", b, err)
	}
	verifyClean(t, reg)
	if n, err := reg.UpgradeLayout(ctx); err != nil || n != 0 {
		t.Fatalf("second upgrade: %d, %v", n, err)
	}
	// A new store is marked at once, so later starts skip the walk.
	fresh := newRegistry(t, t.TempDir())
	if _, err := fresh.UpgradeLayout(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := fresh.d.GetContent(ctx, layoutPath); string(b) != layoutVersion {
		t.Fatalf("layout version %q", b)
	}
}
