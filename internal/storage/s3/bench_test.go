package s3

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/octoserve/octoserve/internal/storage"
)

// The benchmarks run against the server of the tests (scripts/test-s3.sh
// bench). Bytes go through as a registry moves them: written in 32 KiB
// pieces (an HTTP request body copied into the writer), read with a
// 32 KiB buffer.

var benchSizes = []int{1 << 20, 64 << 20}

func sizeName(n int) string { return fmt.Sprintf("%dMiB", n>>20) }

func BenchmarkWriter(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			d := newTestDriver(b, testConfig(b))
			data := pattern(1, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				w, err := d.Writer(ctx, "obj", storage.Replace)
				if err != nil {
					b.Fatal(err)
				}
				for off := 0; off < size; off += 32 << 10 {
					if _, err := w.Write(data[off:min(off+32<<10, size)]); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Commit(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// onlyReader hides bytes.Reader's WriteTo, so io.Copy uses the writer's
// ReadFrom as it does with a request body.
type onlyReader struct{ io.Reader }

func BenchmarkWriterReadFrom(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			d := newTestDriver(b, testConfig(b))
			data := pattern(2, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				w, err := d.Writer(ctx, "obj", storage.Replace)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(w, onlyReader{bytes.NewReader(data)}); err != nil {
					b.Fatal(err)
				}
				if err := w.Commit(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReader(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			d := newTestDriver(b, testConfig(b))
			if err := d.PutContent(ctx, "obj", pattern(3, size)); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				rc, _, err := d.Reader(ctx, "obj")
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, rc, buf)
				rc.Close()
				if err != nil || n != int64(size) {
					b.Fatalf("read %d bytes, %v", n, err)
				}
			}
		})
	}
}

// Small objects: what a manifest, a tag or a link costs.
func BenchmarkSmallPutGet(b *testing.B) {
	d := newTestDriver(b, testConfig(b))
	data := pattern(4, 4<<10)
	b.ReportAllocs()
	for b.Loop() {
		if err := d.PutContent(ctx, "small", data); err != nil {
			b.Fatal(err)
		}
		if _, err := d.GetContent(ctx, "small"); err != nil {
			b.Fatal(err)
		}
	}
}
