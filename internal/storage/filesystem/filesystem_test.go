package filesystem

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/storagetest"
)

func newDriver(t *testing.T) *Driver {
	t.Helper()
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Driver { return newDriver(t) })
}

func TestPathsStayInsideRoot(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	for _, p := range []string{"../escape", "a/../../escape", "a/./b", "/abs", internalDir + "/tmp/x"} {
		if err := d.PutContent(ctx, p, []byte("x")); err == nil {
			t.Errorf("PutContent(%q) accepted a non-canonical or reserved path", p)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(d.Root()), "escape")); err == nil {
		t.Fatal("a file was written outside the root")
	}
	if err := d.DeleteAll(ctx, ""); err == nil {
		t.Fatal("DeleteAll of the root was allowed")
	}
	entries, err := d.List(ctx, "", "", 0)
	if err != nil || len(entries) != 0 {
		t.Fatalf("the driver's own files show in a listing: %v %v", entries, err)
	}
}

// A write interrupted by a crash leaves its data only in the temporary
// directory, which a later start clears: the target never holds a part.
func TestInterruptedPutLeavesNothingVisible(t *testing.T) {
	root := t.TempDir()
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.PutContent(ctx, "tags/latest", []byte("old")); err != nil {
		t.Fatal(err)
	}
	// What a crash between write and rename leaves behind.
	partial := filepath.Join(d.tmp, "w-crashed")
	if err := os.WriteFile(partial, []byte("ne"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Another process's write in flight is young and must survive.
	inflight := filepath.Join(d.tmp, "w-inflight")
	if err := os.WriteFile(inflight, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * staleTmpAge)
	if err := os.Chtimes(partial, old, old); err != nil {
		t.Fatal(err)
	}
	d, err = New(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Fatal("restart kept a stale partial temporary file")
	}
	if _, err := os.Stat(inflight); err != nil {
		t.Fatal("restart removed a young temporary file another process may be writing")
	}
	b, _ := d.GetContent(ctx, "tags/latest")
	if string(b) != "old" {
		t.Fatalf("content %q after interrupted replace", b)
	}
}

// The HTTP layer serves blobs with sendfile, which needs the *os.File.
func TestReaderIsAFile(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	if err := d.PutContent(ctx, "blobs/x", []byte("bytes")); err != nil {
		t.Fatal(err)
	}
	rc, info, err := d.Reader(ctx, "blobs/x")
	if err != nil || info.Size != 5 {
		t.Fatalf("Reader: %v %v", info, err)
	}
	defer rc.Close()
	if _, ok := rc.(*os.File); !ok {
		t.Fatal("Reader does not return an *os.File; sendfile would be lost")
	}
}

// A reader keeps the bytes it opened while the object is replaced or
// deleted, and Compose of one source shares the file without copying.
func TestReplacedObjectKeepsOpenReaders(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	if err := d.PutContent(ctx, "a", []byte("first")); err != nil {
		t.Fatal(err)
	}
	rc, _, err := d.Reader(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := d.Compose(ctx, "b", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	sa, _ := os.Stat(filepath.Join(d.Root(), "a"))
	sb, _ := os.Stat(filepath.Join(d.Root(), "b"))
	if !os.SameFile(sa, sb) {
		t.Error("Compose of one source copied instead of linking")
	}
	if err := d.PutContent(ctx, "a", []byte("second")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := rc.Read(buf); err != nil || string(buf) != "first" {
		t.Fatalf("open reader sees %q, %v", buf, err)
	}
	if b, _ := d.GetContent(ctx, "b"); string(b) != "first" {
		t.Fatalf("composed object changed with its source: %q", b)
	}
}

// A directory emptied by a Delete goes, so it does not show in listings,
// and a writer that races the pruning still places its object.
func TestPruneRacesWriters(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	done := make(chan error)
	go func() {
		for i := 0; i < 300; i++ {
			if err := d.PutContent(ctx, "p/q/x", nil); err != nil {
				done <- err
				return
			}
			if err := d.Delete(ctx, "p/q/x"); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < 300; i++ {
		if err := d.PutContent(ctx, "p/q/y", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Stat(ctx, "p/q/y"); err != nil {
			t.Fatal(err)
		}
		if err := d.Delete(ctx, "p/q/y"); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.Root(), "p")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("emptied directories left behind: %v", err)
	}
}
