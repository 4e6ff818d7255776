package registry

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// Usage counts each blob once for the registry and once per repository
// linking it, split into bytes a repository has alone and bytes it shares.
func TestUsage(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, t.TempDir())
	shared := bytes.Repeat([]byte("shared layer "), 300)
	ownA := bytes.Repeat([]byte("only in a "), 200)
	ownB := bytes.Repeat([]byte("only in b "), 100)
	manifestSize := func(repo string, d reference.Digest) int64 {
		m, err := reg.GetManifest(ctx, repo, d.String())
		if err != nil {
			t.Fatal(err)
		}
		return int64(len(m.Body))
	}
	ma := pushImage(t, reg, "team/a", "a1", shared, ownA)
	mb := pushImage(t, reg, "b", "b1", shared, ownB)
	cfgA, cfgB := int64(len(`{"tag":"a1"}`)), int64(len(`{"tag":"b1"}`))

	// A blob pushed and then deleted from its only repository: stored,
	// linked by nothing until gc.
	orphan := []byte("deleted from its repository")
	od := reference.FromBytes("sha256", orphan)
	if err := reg.PutBlob(ctx, "c", od, Chunk{Body: bytes.NewReader(orphan), Start: -1, Length: int64(len(orphan))}); err != nil {
		t.Fatal(err)
	}
	if err := reg.DeleteBlob(ctx, "c", od); err != nil {
		t.Fatal(err)
	}
	// An upload in progress with 10 bytes received.
	id, err := reg.StartUpload(ctx, "b", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.AppendUpload(ctx, "b", id, Chunk{Body: strings.NewReader("0123456789"), Start: -1, Length: 10}); err != nil {
		t.Fatal(err)
	}

	u, err := reg.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	aOwn := cfgA + int64(len(ownA)) + manifestSize("team/a", ma)
	bOwn := cfgB + int64(len(ownB)) + manifestSize("b", mb)
	want := map[string]*RepositoryUsage{
		"team/a": {Bytes: aOwn + int64(len(shared)), Blobs: 4, OwnBytes: aOwn, SharedBytes: int64(len(shared))},
		"b":      {Bytes: bOwn + int64(len(shared)), Blobs: 4, OwnBytes: bOwn, SharedBytes: int64(len(shared))},
	}
	if !reflect.DeepEqual(u.Repositories, want) {
		t.Errorf("per repository: got %s, want %s", show(u.Repositories), show(want))
	}
	total := aOwn + bOwn + int64(len(shared)) + int64(len(orphan))
	if u.Bytes != total || u.Blobs != 8 {
		t.Errorf("registry: %d bytes in %d blobs, want %d in 8", u.Bytes, u.Blobs, total)
	}
	if u.UnlinkedBytes != int64(len(orphan)) || u.UnlinkedBlobs != 1 {
		t.Errorf("unlinked: %d bytes in %d blobs, want %d in 1", u.UnlinkedBytes, u.UnlinkedBlobs, len(orphan))
	}
	if u.Uploads != 1 || u.UploadBytes != 10 {
		t.Errorf("uploads: %d holding %d bytes, want 1 holding 10", u.Uploads, u.UploadBytes)
	}
}

func show(m map[string]*RepositoryUsage) string {
	var b strings.Builder
	for k, v := range m {
		fmt.Fprintf(&b, "%s:%+v ", k, *v)
	}
	return b.String()
}

// The probe writes under _health/ only (internal/health tests it failing
// on a full disk).
func TestProbeStorage(t *testing.T) {
	root := t.TempDir()
	reg := newRegistry(t, root)
	if err := reg.ProbeStorage(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, root); !strings.Contains(got, "_health/probe") {
		t.Fatalf("probe object not under _health/: %s", got)
	}
}

// BenchmarkUsage10000Repositories is the usage scan's cost as
// docs/operations.md states it: 10,000 repositories, each with three blobs
// of its own (config, layer, manifest) and one of 100 shared base layers,
// written straight into the layout (a push per blob would spend the time
// on fsync). 30,100 blobs and 40,000 links: one walk over 70,100 objects.
//
//	go test -run '^$' -bench Usage10000 -benchtime 3x ./internal/registry/
func BenchmarkUsage10000Repositories(b *testing.B) {
	root := b.TempDir()
	reg := newRegistryTB(b, root)
	write := func(key string, size int) {
		p := filepath.Join(root, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	digest := func(s string) reference.Digest { return reference.FromBytes("sha256", []byte(s)) }
	for i := 0; i < 10000; i++ {
		repo := fmt.Sprintf("team-%d/app-%d", i%100, i)
		for j, size := range []int{300, 4096, 600} {
			d := digest(fmt.Sprintf("%d/%d", i, j))
			write(blobPath(d), size)
			write(blobLink(repo, d), 0)
		}
		base := digest(fmt.Sprintf("base %d", i%100))
		if i < 100 {
			write(blobPath(base), 8192)
		}
		write(blobLink(repo, base), 0)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u, err := reg.Usage(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if len(u.Repositories) != 10000 || u.Blobs != 30100 {
			b.Fatalf("%d repositories, %d blobs", len(u.Repositories), u.Blobs)
		}
	}
}

func newRegistryTB(tb testing.TB, root string) *Registry {
	tb.Helper()
	d, err := filesystem.New(root)
	if err != nil {
		tb.Fatal(err)
	}
	return New(d, Options{})
}
