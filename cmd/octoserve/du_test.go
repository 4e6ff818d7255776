package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/registry"
)

// pushImage stores blobs in repo and a manifest over them (the first is
// its config) under ref, a tag or "" for by digest only; it returns the
// manifest's size.
func pushImage(t *testing.T, reg *registry.Registry, repo, ref string, blobs ...[]byte) int {
	t.Helper()
	ctx := context.Background()
	var descs []any
	for _, b := range blobs {
		d := reference.FromBytes("sha256", b)
		if err := reg.PutBlob(ctx, repo, d, registry.Chunk{Body: bytes.NewReader(b), Start: -1, Length: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		descs = append(descs, map[string]any{"mediaType": "application/octet-stream", "digest": d, "size": len(b)})
	}
	body, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": registry.MediaTypeOCIManifest, "config": descs[0], "layers": descs[1:]})
	if ref == "" {
		ref = reference.FromBytes("sha256", body).String()
	}
	if _, err := reg.PutManifest(ctx, repo, ref, registry.MediaTypeOCIManifest, body, nil); err != nil {
		t.Fatal(err)
	}
	return len(body)
}

func TestDu(t *testing.T) {
	root := t.TempDir()
	cfg := config.Default()
	cfg.Storage.Root = root
	reg, _, err := openRegistry(cfg) // as du will: the layout is current
	if err != nil {
		t.Fatal(err)
	}
	shared := bytes.Repeat([]byte("s"), 5000)
	cfgA, ownA := []byte(`{"a":1}`), bytes.Repeat([]byte("a"), 3000)
	cfgB, ownB := []byte(`{"b":1}`), bytes.Repeat([]byte("b"), 1000)
	cfgU, ownU := []byte(`{"u":1}`), bytes.Repeat([]byte("u"), 700)
	ma := pushImage(t, reg, "team/a", "v1", cfgA, shared, ownA)
	mb := pushImage(t, reg, "b", "v1", cfgB, shared, ownB)
	mu := pushImage(t, reg, "b", "", cfgU, shared, ownU) // untagged
	// Everything is two hours old: past gc.minAge (1h) for the dry run.
	old := time.Now().Add(-2 * time.Hour)
	err = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			err = os.Chtimes(p, old, old)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := du([]string{"--root", root, "--gc"}, &out); err != nil {
		t.Fatal(err)
	}
	aOwn := len(cfgA) + len(ownA) + ma
	bOwn := len(cfgB) + len(ownB) + mb + len(cfgU) + len(ownU) + mu
	total := aOwn + bOwn + len(shared)
	untagged := len(cfgU) + len(ownU) + mu
	want := fmt.Sprintf(`  BYTES  ONLY HERE  SHARED  BLOBS  REPOSITORY
%7d%11d%8d%7d  b
%7d%11d%8d%7d  team/a
registry: %d bytes (%s) in 10 blobs, 2 repositories; 0 bytes in 0 blobs no repository links (gc removes them); 0 upload sessions holding 0 bytes
gc --delete-untagged would free %d bytes (%s): 3 blobs, 1 manifests (keeping anything newer than 1h0m0s)
`, bOwn+len(shared), bOwn, len(shared), 7, aOwn+len(shared), aOwn, len(shared), 4,
		total, human(int64(total)), untagged, human(int64(untagged)))
	if out.String() != want {
		t.Fatalf("du printed:\n%s\nwant:\n%s", out.String(), want)
	}
	var again bytes.Buffer
	if err := du([]string{"--root", root}, &again); err != nil || !strings.HasPrefix(want, again.String()) {
		t.Fatalf("after the dry run (%v):\n%s", err, again.String())
	}
}

func TestHuman(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := human(n); got != want {
			t.Errorf("human(%d) = %q, want %q", n, got, want)
		}
	}
}
