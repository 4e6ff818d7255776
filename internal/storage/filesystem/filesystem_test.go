package filesystem

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/storage"
)

func newDriver(t *testing.T) *Driver {
	t.Helper()
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPutGetListDelete(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	if err := d.PutContent(ctx, "a/b/c", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(ctx, "a/b/c", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(ctx, "a/b/d", nil); err != nil {
		t.Fatal(err)
	}
	b, err := d.GetContent(ctx, "a/b/c")
	if err != nil || string(b) != "two" {
		t.Fatalf("GetContent = %q, %v", b, err)
	}
	names, err := d.List(ctx, "a/b")
	sort.Strings(names)
	if err != nil || len(names) != 2 || names[0] != "c" || names[1] != "d" {
		t.Fatalf("List = %v, %v", names, err)
	}
	if err := d.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "a/b/c"} {
		if _, err := d.Stat(ctx, p); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Stat(%s) after delete: %v", p, err)
		}
	}
	if err := d.Delete(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	if _, err := d.GetContent(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetContent(missing): %v", err)
	}
}

func TestPathsStayInsideRoot(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	for _, p := range []string{"../escape", "a/../../escape", "a/./b", "/abs"} {
		if err := d.PutContent(ctx, p, []byte("x")); err == nil {
			t.Errorf("PutContent(%q) accepted a non-canonical path", p)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(d.Root()), "escape")); err == nil {
		t.Fatal("a file was written outside the root")
	}
	if err := d.Delete(ctx, ""); err == nil {
		t.Fatal("Delete of the root was allowed")
	}
}

// A PutContent interrupted by a crash leaves its data only in the temporary
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
	partial := filepath.Join(root, tmpDir, "put-crashed")
	if err := os.WriteFile(partial, []byte("ne"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Another process's write in flight is young and must survive.
	inflight := filepath.Join(root, tmpDir, "put-inflight")
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

func TestWriterCommitAndCancel(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	w, err := d.Writer(ctx, "up/data")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "hello ")
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w, err = d.Writer(ctx, "up/data")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "bad chunk")
	if w.Size() != 15 {
		t.Fatalf("Size = %d", w.Size())
	}
	if err := w.Cancel(); err != nil {
		t.Fatal(err)
	}
	b, _ := d.GetContent(ctx, "up/data")
	if string(b) != "hello " {
		t.Fatalf("after cancel: %q", b)
	}
	if err := d.Move(ctx, "up/data", "blobs/x"); err != nil {
		t.Fatal(err)
	}
	rc, info, err := d.Reader(ctx, "blobs/x")
	if err != nil || info.Size != 6 {
		t.Fatalf("Reader: %v %v", info, err)
	}
	if _, ok := rc.(*os.File); !ok {
		t.Fatal("Reader does not return an *os.File; sendfile would be lost")
	}
	rc.Close()
}
