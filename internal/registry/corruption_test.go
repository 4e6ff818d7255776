package registry

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/storage/memory"
)

// Issue 10's corruption, as the attack went: a request is still writing a
// chunk of a session (its body arrives slowly) when a request naming the
// session under another repository comes, and then the session is
// finished. On the old code the stray request dropped the session's lock,
// the finish placed the session's data file as the blob, and the slow
// writer went on writing into it: the stored blob no longer matched its
// digest, for every repository. Now no request touches stored bytes, and a
// stray one changes nothing.
func TestSlowChunkCannotReachThePlacedBlob(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	honest := bytes.Repeat([]byte("honest bytes "), 4096)
	d := reference.FromBytes("sha256", honest)
	id, err := reg.StartUpload(ctx, "victim", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.AppendUpload(ctx, "victim", id, Chunk{Body: bytes.NewReader(honest), Start: 0, Length: int64(len(honest))}); err != nil {
		t.Fatal(err)
	}

	// The slow writer: its first bytes are read, the rest waits.
	slow := &gatedReader{first: bytes.Repeat([]byte("X"), 100), rest: bytes.Repeat([]byte("Y"), 100), started: make(chan struct{}), release: make(chan struct{})}
	slowDone := make(chan error, 1)
	go func() {
		_, err := reg.AppendUpload(ctx, "victim", id, Chunk{Body: slow, Start: int64(len(honest)), Length: -1})
		slowDone <- err
	}()
	<-slow.started

	// The stray request, under another repository.
	_, err = reg.AppendUpload(ctx, "attacker", id, Chunk{Body: bytes.NewReader([]byte("zzz")), Start: -1, Length: 3})
	if e, ok := ocierr.As(err); !ok || e.Code != ocierr.BlobUploadUnknown {
		t.Fatalf("request under another repository: %v, want BLOB_UPLOAD_UNKNOWN", err)
	}
	if size, err := reg.UploadSize(ctx, "victim", id); err != nil || size != int64(len(honest)) {
		t.Fatalf("the stray request changed the session: size %d, %v", size, err)
	}

	finished := make(chan error, 1)
	go func() { finished <- reg.FinishUpload(ctx, "victim", id, d, Chunk{Start: -1, Length: 0}) }()
	select {
	case err := <-finished:
		if err != nil {
			t.Fatalf("finish while a chunk is in flight: %v", err)
		}
	case err := <-slowDone:
		t.Fatalf("the slow chunk ended before it was released: %v", err)
	}
	close(slow.release)
	if err := <-slowDone; err == nil {
		t.Fatal("a chunk for a finished session was accepted")
	}

	got, err := os.ReadFile(filepath.Join(root, blobPath(d)))
	if err != nil || !bytes.Equal(got, honest) {
		t.Fatalf("the stored blob is %d bytes, not the %d verified ones (%v)", len(got), len(honest), err)
	}
	if v, err := reg.Verify(ctx, VerifyOptions{}); err != nil || len(v.Problems) != 0 {
		t.Fatalf("verify: %v %v", v.Problems, err)
	}
	if n, _ := reg.PurgeUploads(ctx, -1, true); n != 0 {
		t.Fatalf("the refused chunk left %d sessions behind", n)
	}
}

// gatedReader yields first, then blocks until release before rest.
type gatedReader struct {
	first, rest []byte
	started     chan struct{}
	release     chan struct{}
	once        sync.Once
	phase       int
}

func (g *gatedReader) Read(p []byte) (int, error) {
	switch g.phase {
	case 0:
		g.phase = 1
		g.once.Do(func() { close(g.started) })
		return copy(p, g.first), nil
	case 1:
		<-g.release
		g.phase = 2
		return copy(p, g.rest), nil
	}
	return 0, io.EOF
}

// Two requests appending at the same offset: exactly one succeeds, and the
// upload is exactly its bytes.
func TestConcurrentAppendsAtOneOffset(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, t.TempDir())
	id, err := reg.StartUpload(ctx, "r", "")
	if err != nil {
		t.Fatal(err)
	}
	gates := make([]*gatedReader, 2)
	errs := make(chan error, 2)
	for i := range gates {
		gates[i] = &gatedReader{first: bytes.Repeat([]byte{byte('a' + i)}, 1000), rest: bytes.Repeat([]byte{byte('a' + i)}, 1000),
			started: make(chan struct{}), release: make(chan struct{})}
		go func() {
			_, err := reg.AppendUpload(ctx, "r", id, Chunk{Body: gates[i], Start: 0, Length: -1})
			errs <- err
		}()
		<-gates[i].started // both have read the session (size 0) and started writing
	}
	close(gates[0].release)
	close(gates[1].release)
	var won int
	for range gates {
		if err := <-errs; err == nil {
			won++
		} else if e, ok := ocierr.As(err); !ok || e.Status != 416 {
			t.Fatalf("losing append: %v, want 416", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d appends at one offset succeeded, want exactly 1", won)
	}
	size, err := reg.UploadSize(ctx, "r", id)
	if err != nil || size != 2000 {
		t.Fatalf("size %d, %v", size, err)
	}
	for _, c := range []byte("ab") {
		want := bytes.Repeat([]byte{c}, 2000)
		err := reg.FinishUpload(ctx, "r", id, reference.FromBytes("sha256", want), Chunk{Start: -1, Length: 0})
		if err == nil {
			pullBlob(t, reg, "r", reference.FromBytes("sha256", want), want)
			return
		}
	}
	t.Fatal("the upload is neither writer's bytes")
}

// A blob whose stored bytes were damaged is repaired by the next honest
// push of it, into any repository: an upload of a digest the registry
// holds stores the bytes it just verified, it does not only link the old.
func TestPushRepairsDamagedBlob(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	data := []byte("the real layer")
	d := reference.FromBytes("sha256", data)
	if err := reg.PutBlob(ctx, "first", d, Chunk{Body: bytes.NewReader(data), Start: -1, Length: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, blobPath(d)), []byte("the fake layer"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, repo := range []string{"second", "first"} {
		id, err := reg.StartUpload(ctx, repo, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.FinishUpload(ctx, repo, id, d, Chunk{Body: bytes.NewReader(data), Start: 0, Length: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		pullBlob(t, reg, repo, d, data)
		if i == 0 {
			pullBlob(t, reg, "first", d, data)
		}
	}
}

func pullBlob(t *testing.T, reg *Registry, repo string, d reference.Digest, want []byte) {
	t.Helper()
	rc, _, err := reg.OpenBlob(context.Background(), repo, d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s@%s serves %q, want %q", repo, d, got, want)
	}
}

// Open sessions per repository are capped; finishing one makes room.
func TestUploadSessionCap(t *testing.T) {
	ctx := context.Background()
	d, err := newFS(t)
	if err != nil {
		t.Fatal(err)
	}
	reg := New(d, Options{MaxUploadsPerRepository: 3})
	var ids []string
	for i := 0; i < 3; i++ {
		id, err := reg.StartUpload(ctx, "r", "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	_, err = reg.StartUpload(ctx, "r", "")
	if e, ok := ocierr.As(err); !ok || e.Status != 429 || e.Code != ocierr.TooManyRequests {
		t.Fatalf("fourth session: %v, want 429 TOOMANYREQUESTS", err)
	}
	if _, err := reg.StartUpload(ctx, "other", ""); err != nil {
		t.Fatalf("another repository's session: %v", err)
	}
	if err := reg.CancelUpload(ctx, "r", ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.StartUpload(ctx, "r", ""); err != nil {
		t.Fatalf("after a cancel: %v", err)
	}
	data := []byte("monolithic")
	if err := reg.PutBlob(ctx, "r", reference.FromBytes("sha256", data), Chunk{Body: bytes.NewReader(data), Start: -1, Length: int64(len(data))}); err != nil {
		t.Fatalf("a monolithic upload needs no session: %v", err)
	}
}

// Open sessions per user are capped across repositories; finishing or
// cancelling one makes room, and an entry a crash left behind does not
// count once its session is gone.
func TestUploadSessionCapPerOwner(t *testing.T) {
	ctx := context.Background()
	reg := New(memory.New(), Options{MaxUploadsPerOwner: 2})
	a, err := reg.StartUpload(ctx, "one", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.StartUpload(ctx, "two", "alice"); err != nil {
		t.Fatal(err)
	}
	_, err = reg.StartUpload(ctx, "three", "alice")
	if e, ok := ocierr.As(err); !ok || e.Status != 429 || e.Code != ocierr.TooManyRequests {
		t.Fatalf("alice's third session: %v, want 429 TOOMANYREQUESTS", err)
	}
	for _, owner := range []string{"bob", "", ""} {
		if _, err := reg.StartUpload(ctx, "three", owner); err != nil {
			t.Fatalf("%q's session beside alice's: %v", owner, err)
		}
	}
	data := []byte("finished")
	if err := reg.FinishUpload(ctx, "one", a, reference.FromBytes("sha256", data), Chunk{Body: bytes.NewReader(data), Start: -1, Length: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	c, err := reg.StartUpload(ctx, "three", "alice")
	if err != nil {
		t.Fatalf("after a finish: %v", err)
	}
	// A crash between removing a session and its entry: the session is
	// gone, its entry stays; it is not held against alice.
	if err := reg.d.DeleteAll(ctx, sessionDir("three", c)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := reg.exists(ctx, ownerEntry("alice", "three", c)); !ok {
		t.Fatal("the test lost the entry it meant to leave behind")
	}
	if _, err := reg.StartUpload(ctx, "four", "alice"); err != nil {
		t.Fatalf("a stale entry still counted: %v", err)
	}
	if ok, _ := reg.exists(ctx, ownerEntry("alice", "three", c)); ok {
		t.Fatal("the stale entry was not removed")
	}
}
