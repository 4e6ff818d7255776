package registry_test

// Micro-benchmarks of the registry's hot paths through its exported API
// only (so they outlive rewrites of the internals), over a filesystem
// store in a temporary directory: upload hashing and placement, manifest
// parse and validation, tag and referrer lookups. `make bench-go` runs
// them with -benchmem; `make bench` is the end-to-end comparison.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

func benchRegistry(b *testing.B) *registry.Registry {
	b.Helper()
	d, err := filesystem.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return registry.New(d, registry.Options{})
}

// uniqueBlob returns a blob of size bytes whose first bytes are i, so that
// every iteration stores new content.
func uniqueBlob(size, i int) []byte {
	blob := bytes.Repeat([]byte{0x5a}, size)
	binary.LittleEndian.PutUint64(blob, uint64(i))
	return blob
}

type desc struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int    `json:"size"`
}

func pushBlob(b *testing.B, reg *registry.Registry, repo string, blob []byte) desc {
	b.Helper()
	d := reference.FromBytes("sha256", blob)
	if err := reg.PutBlob(context.Background(), repo, d, registry.Chunk{Body: bytes.NewReader(blob), Start: -1, Length: int64(len(blob))}); err != nil {
		b.Fatal(err)
	}
	return desc{"application/vnd.oci.image.layer.v1.tar", d.String(), len(blob)}
}

// image pushes a config and layers to repo and returns the manifest body.
func image(b *testing.B, reg *registry.Registry, repo string, layers int, extra map[string]any) []byte {
	b.Helper()
	cfg := pushBlob(b, reg, repo, []byte(`{"architecture":"amd64","os":"linux"}`))
	cfg.MediaType = "application/vnd.oci.image.config.v1+json"
	m := map[string]any{"schemaVersion": 2, "mediaType": registry.MediaTypeOCIManifest, "config": cfg}
	var ls []desc
	for i := range layers {
		ls = append(ls, pushBlob(b, reg, repo, uniqueBlob(1024, i)))
	}
	m["layers"] = ls
	for k, v := range extra {
		m[k] = v
	}
	body, err := json.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkUpload stores a new blob per iteration, hashed while it
// streams and fsync'd before it becomes visible.
func BenchmarkUpload(b *testing.B) {
	for _, size := range []int{16 << 10, 1 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("monolithic-%dKiB", size>>10), func(b *testing.B) {
			reg := benchRegistry(b)
			ctx := context.Background()
			blob := uniqueBlob(size, 0)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				binary.LittleEndian.PutUint64(blob, uint64(i))
				d := reference.FromBytes("sha256", blob)
				if err := reg.PutBlob(ctx, "bench/up", d, registry.Chunk{Body: bytes.NewReader(blob), Start: -1, Length: int64(size)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("chunked-4x1MiB", func(b *testing.B) {
		reg := benchRegistry(b)
		ctx := context.Background()
		blob := uniqueBlob(4<<20, 0)
		b.SetBytes(int64(len(blob)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			binary.LittleEndian.PutUint64(blob, uint64(i))
			id, err := reg.StartUpload(ctx, "bench/up", "")
			if err != nil {
				b.Fatal(err)
			}
			for off := 0; off < len(blob); off += 1 << 20 {
				chunk := registry.Chunk{Body: bytes.NewReader(blob[off : off+1<<20]), Start: int64(off), Length: 1 << 20}
				if _, err := reg.AppendUpload(ctx, "bench/up", id, chunk); err != nil {
					b.Fatal(err)
				}
			}
			if err := reg.FinishUpload(ctx, "bench/up", id, reference.FromBytes("sha256", blob), registry.Chunk{Start: -1, Length: 0}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPutManifest parses, validates (every referenced blob looked
// up) and stores a 10-layer manifest under a new tag per iteration.
func BenchmarkPutManifest(b *testing.B) {
	reg := benchRegistry(b)
	ctx := context.Background()
	body := image(b, reg, "bench/m", 10, nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := reg.PutManifest(ctx, "bench/m", fmt.Sprintf("t%d", i), registry.MediaTypeOCIManifest, body, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetManifest resolves a tag and returns the manifest, the
// request every pull starts with.
func BenchmarkGetManifest(b *testing.B) {
	reg := benchRegistry(b)
	ctx := context.Background()
	body := image(b, reg, "bench/m", 2, nil)
	if _, err := reg.PutManifest(ctx, "bench/m", "latest", registry.MediaTypeOCIManifest, body, nil); err != nil {
		b.Fatal(err)
	}
	d := reference.FromBytes("sha256", body).String()
	for _, ref := range []string{"latest", d} {
		name := "by-tag"
		if ref == d {
			name = "by-digest"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.GetManifest(ctx, "bench/m", ref); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTags lists a repository's tags, whole and one page.
func BenchmarkTags(b *testing.B) {
	reg := benchRegistry(b)
	ctx := context.Background()
	body := image(b, reg, "bench/t", 1, nil)
	const tags = 1000
	for i := range tags {
		if _, err := reg.PutManifest(ctx, "bench/t", fmt.Sprintf("v%04d", i), registry.MediaTypeOCIManifest, body, nil); err != nil {
			b.Fatal(err)
		}
	}
	for _, page := range []struct {
		name string
		n    int
		last string
	}{{"all-1000", -1, ""}, {"page-100-of-1000", 100, "v0500"}} {
		b.Run(page.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := reg.Tags(ctx, "bench/t", page.n, page.last); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReferrers lists the 50 referrers of a subject, unfiltered and
// filtered by artifact type.
func BenchmarkReferrers(b *testing.B) {
	reg := benchRegistry(b)
	ctx := context.Background()
	subject := image(b, reg, "bench/r", 1, nil)
	res, err := reg.PutManifest(ctx, "bench/r", "latest", registry.MediaTypeOCIManifest, subject, nil)
	if err != nil {
		b.Fatal(err)
	}
	subjectDesc := desc{registry.MediaTypeOCIManifest, res.Digest.String(), len(subject)}
	for i := range 50 {
		artifact := fmt.Sprintf("application/vnd.bench.type%d", i%5)
		body := image(b, reg, "bench/r", 1, map[string]any{"subject": subjectDesc, "artifactType": artifact,
			"annotations": map[string]string{"n": fmt.Sprint(i)}})
		d := reference.FromBytes("sha256", body).String()
		if _, err := reg.PutManifest(ctx, "bench/r", d, registry.MediaTypeOCIManifest, body, nil); err != nil {
			b.Fatal(err)
		}
	}
	for _, filter := range []string{"", "application/vnd.bench.type3"} {
		name := "all-50"
		if filter != "" {
			name = "filtered-10-of-50"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Referrers(ctx, "bench/r", res.Digest, filter); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenBlob opens a stored blob for reading, as every blob GET does.
func BenchmarkOpenBlob(b *testing.B) {
	reg := benchRegistry(b)
	ctx := context.Background()
	l := pushBlob(b, reg, "bench/o", uniqueBlob(1<<20, 1))
	d, err := reference.ParseDigest(l.Digest)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		rc, _, err := reg.OpenBlob(ctx, "bench/o", d)
		if err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}
