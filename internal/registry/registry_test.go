package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

func newRegistry(t *testing.T, root string) *Registry {
	t.Helper()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return New(d, Options{})
}

// failingReader yields n bytes of data then fails, like a client that
// disconnects mid-upload.
type failingReader struct {
	r io.Reader
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset")
	}
	return n, err
}

func TestInterruptedUploadLeavesNothingVisible(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, t.TempDir())
	data := bytes.Repeat([]byte("x"), 1<<20)
	d := reference.FromBytes("sha256", data)

	err := reg.PutBlob(ctx, "r", d, Chunk{Body: &failingReader{bytes.NewReader(data[:1000])}, Start: -1, Length: -1})
	if err == nil {
		t.Fatal("PutBlob succeeded on a broken body")
	}
	if _, err := reg.StatBlob(ctx, "r", d); err == nil {
		t.Fatal("a partial blob is visible")
	}
	if ok, _ := reg.exists(ctx, blobPath(d)); ok {
		t.Fatal("partial data reached the blob store")
	}
	if n, _ := reg.PurgeUploads(ctx, -time.Hour, true); n != 0 {
		t.Fatalf("the failed upload left %d sessions behind", n)
	}
	if ok, _ := reg.RepositoryExists(ctx, "r"); ok {
		t.Fatal("a failed upload created the repository")
	}
}

// A chunk that fails midway is rolled back, and the session continues from
// where the last good chunk ended, also after a restart that loses the
// in-memory hash state.
func TestChunkRollbackAndResumeAfterRestart(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	data := []byte("first part|second part")
	id, err := reg.StartUpload(ctx, "r", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.AppendUpload(ctx, "r", id, Chunk{Body: bytes.NewReader(data[:11]), Start: 0, Length: 11}); err != nil {
		t.Fatal(err)
	}
	_, err = reg.AppendUpload(ctx, "r", id, Chunk{Body: &failingReader{bytes.NewReader(data[11:15])}, Start: 11, Length: -1})
	if err == nil {
		t.Fatal("broken chunk accepted")
	}
	if size, _ := reg.UploadSize(ctx, "r", id); size != 11 {
		t.Fatalf("size after rollback %d, want 11", size)
	}
	if _, err := reg.UploadSize(ctx, "other", id); err == nil {
		t.Fatal("upload visible through another repository")
	}

	reg = newRegistry(t, root) // restart
	d := reference.FromBytes("sha512", data)
	if err := reg.FinishUpload(ctx, "r", id, d, Chunk{Body: bytes.NewReader(data[11:]), Start: 11, Length: int64(len(data) - 11)}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := reg.OpenBlob(ctx, "r", d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, _ := io.ReadAll(rc)
	if string(got) != string(data) {
		t.Fatalf("stored %q", got)
	}
}

func TestFinishWithWrongDigestStoresNothing(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, t.TempDir())
	id, _ := reg.StartUpload(ctx, "r", "")
	wrong := reference.FromBytes("sha256", []byte("something else"))
	err := reg.FinishUpload(ctx, "r", id, wrong, Chunk{Body: bytes.NewReader([]byte("payload")), Start: -1, Length: 7})
	if e, ok := ocierr.As(err); !ok || e.Code != ocierr.DigestInvalid {
		t.Fatalf("err = %v, want DIGEST_INVALID", err)
	}
	if ok, _ := reg.exists(ctx, blobPath(wrong)); ok {
		t.Fatal("mismatched upload was stored")
	}
}

func TestPaginate(t *testing.T) {
	all := []string{"a", "b", "c", "d"}
	cases := []struct {
		n    int
		last string
		want string
		more bool
	}{
		{-1, "", "abcd", false},
		{2, "", "ab", true},
		{2, "b", "cd", false},
		{10, "bb", "cd", false},
		{0, "", "", true},
		{-1, "z", "", false},
	}
	for _, tc := range cases {
		page, more := paginate(all, tc.n, tc.last)
		got := ""
		for _, p := range page {
			got += p
		}
		if got != tc.want || more != tc.more {
			t.Errorf("paginate(n=%d, last=%q) = %q %v, want %q %v", tc.n, tc.last, got, more, tc.want, tc.more)
		}
	}
}

func TestByteCacheEvicts(t *testing.T) {
	c := newByteCache(100)
	c.put("a", make([]byte, 20))
	c.put("b", make([]byte, 20))
	c.get("a")
	for i := 0; i < 4; i++ {
		c.put(string(rune('c'+i)), make([]byte, 20))
	}
	if _, ok := c.get("b"); ok {
		t.Fatal("least recently used entry survived")
	}
	if _, ok := c.get("a"); !ok {
		t.Fatal("recently used entry evicted")
	}
	if c.size > 100 {
		t.Fatalf("cache holds %d bytes over its bound", c.size)
	}
}

func newFS(t *testing.T) (*filesystem.Driver, error) { return filesystem.New(t.TempDir()) }
