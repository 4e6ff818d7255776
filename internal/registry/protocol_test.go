package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/memory"
)

// hooked is a store that lets a test stop the collector or a writer at
// one exact step of the protocol (protocol.go) and run the other side
// there. Each hook runs once.
type hooked struct {
	storage.Driver
	mu    sync.Mutex
	hooks []hook
}

type hook struct {
	op    string // "put", "stat", "delete"
	match func(path string) bool
	run   func()
}

func (h *hooked) on(op string, match func(string) bool, run func()) {
	h.mu.Lock()
	h.hooks = append(h.hooks, hook{op, match, run})
	h.mu.Unlock()
}

func (h *hooked) fire(op, path string) {
	h.mu.Lock()
	var run func()
	for i, k := range h.hooks {
		if k.op == op && k.match(path) {
			run = k.run
			h.hooks = append(h.hooks[:i], h.hooks[i+1:]...)
			break
		}
	}
	h.mu.Unlock()
	if run != nil {
		run()
	}
}

func (h *hooked) PutContent(ctx context.Context, p string, b []byte) error {
	h.fire("put", p)
	return h.Driver.PutContent(ctx, p, b)
}

func (h *hooked) Stat(ctx context.Context, p string) (storage.Info, error) {
	h.fire("stat", p)
	return h.Driver.Stat(ctx, p)
}

func (h *hooked) Delete(ctx context.Context, p string) error {
	h.fire("delete", p)
	return h.Driver.Delete(ctx, p)
}

func newHooked(t *testing.T) (*hooked, *Registry) {
	h := &hooked{Driver: memory.New()}
	return h, New(h, Options{})
}

func is(path string) func(string) bool { return func(p string) bool { return p == path } }

// markOf matches the collector's mark of path: the step where a writer
// that settles on path waits.
func markOf(path string) func(string) bool { return is(judgingMark(path)) }

// A writer refreshes a link just before the collector marks it: the
// collector, looking again once marked, sees the link young and keeps it.
// (Without the second look, the link of a new image would go.)
func TestCollectorSeesARefreshBeforeItsMark(t *testing.T) {
	ctx := context.Background()
	h, reg := newHooked(t)
	layer := []byte("layer of a deleted image, used again")
	old := pushImage(t, reg, "r", "old", layer)
	if err := reg.DeleteManifest(ctx, "r", old.String()); err != nil {
		t.Fatal(err)
	}
	settle(t, reg)
	link := blobLink("r", reference.FromBytes("sha256", layer))
	h.on("put", markOf(link), func() {
		// The client knows the registry has the layer: only a new
		// manifest is pushed, refreshing the old link.
		if _, err := tryPushImage(reg, "r", "new", layer); err != nil {
			t.Errorf("concurrent push: %v", err)
		}
	})
	if _, err := reg.CollectGarbage(ctx, GCOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(h.hooks) != 0 {
		t.Fatal("the collector never marked the link: the test tested nothing")
	}
	pullComplete(t, reg, "r", "new")
	verifyClean(t, reg)
}

// The collector has decided to remove a blob nothing links when an upload
// of the same bytes links and stores it: the upload, settling on the mark,
// waits for the removal and stores its bytes again. (Without the settle,
// the upload would answer 201 for a blob the collector then removed.)
func TestUploadOutlivesARemovalItRaced(t *testing.T) {
	ctx := context.Background()
	h, reg := newHooked(t)
	data := []byte("a blob whose only image was deleted")
	d := reference.FromBytes("sha256", data)
	old := pushImage(t, reg, "r", "old", data)
	if err := reg.DeleteManifest(ctx, "r", old.String()); err != nil {
		t.Fatal(err)
	}
	settle(t, reg)
	uploaded := make(chan error, 1)
	h.on("delete", is(blobPath(d)), func() {
		// The collector looked (no link, old) and is about to remove the
		// blob. The upload writes its link and its bytes now, then waits.
		waiting := make(chan struct{})
		h.on("stat", markOf(blobLink("r2", d)), func() { close(waiting) })
		go func() {
			uploaded <- reg.PutBlob(ctx, "r2", d, Chunk{Body: bytes.NewReader(data), Start: -1, Length: int64(len(data))})
		}()
		select {
		case <-waiting:
		case err := <-uploaded:
			t.Errorf("the upload finished (%v) while the collector held its mark", err)
			uploaded <- err
		}
	})
	report, err := reg.CollectGarbage(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-uploaded; err != nil {
		t.Fatalf("upload: %v", err)
	}
	if len(report.Blobs) == 0 {
		t.Fatal("the collector removed nothing: the race the test sets up did not happen")
	}
	pullBlob(t, reg, "r2", d, data)
	verifyClean(t, reg)
}

// The collector removes a blob link a manifest push relies on after the
// push refreshed it: the push, settling on the mark, finds the link gone
// and refuses (MANIFEST_BLOB_UNKNOWN) instead of acknowledging an image
// with a missing layer.
func TestManifestPushRefusedWhenItsLayerWasRemoved(t *testing.T) {
	ctx := context.Background()
	h, reg := newHooked(t)
	layer := []byte("layer removed under a push")
	ld := reference.FromBytes("sha256", layer)
	old := pushImage(t, reg, "r", "old", layer)
	if err := reg.DeleteManifest(ctx, "r", old.String()); err != nil {
		t.Fatal(err)
	}
	settle(t, reg)
	pushed := make(chan error, 1)
	h.on("delete", is(blobLink("r", ld)), func() {
		waiting := make(chan struct{})
		h.on("stat", markOf(blobLink("r", ld)), func() { close(waiting) })
		go func() {
			_, err := tryPushManifestOnly(reg, "r", "new", layer)
			pushed <- err
		}()
		select {
		case <-waiting:
		case err := <-pushed:
			t.Errorf("the push finished (%v) while the collector held its mark", err)
			pushed <- err
		}
	})
	if _, err := reg.CollectGarbage(ctx, GCOptions{}); err != nil {
		t.Fatal(err)
	}
	err := <-pushed
	if e, ok := ocierr.As(err); !ok || e.Code != ocierr.ManifestBlobUnknown {
		t.Fatalf("push whose layer was removed: %v, want MANIFEST_BLOB_UNKNOWN", err)
	}
	if _, err := reg.GetManifest(ctx, "r", "new"); err == nil {
		t.Fatal("the refused manifest is served")
	}
	verifyClean(t, reg)
}

// tryPushManifestOnly pushes a manifest over blobs the repository already
// holds (config and layers), as a client does after HEAD finds them.
func tryPushManifestOnly(reg *Registry, repo, tag string, layers ...[]byte) (reference.Digest, error) {
	var descs []any
	for _, b := range append([][]byte{[]byte(`{"tag":"` + tag + `"}`)}, layers...) {
		descs = append(descs, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": reference.FromBytes("sha256", b), "size": len(b)})
	}
	cfg := []byte(`{"tag":"` + tag + `"}`)
	if err := reg.PutBlob(context.Background(), repo, reference.FromBytes("sha256", cfg), Chunk{Body: bytes.NewReader(cfg), Start: -1, Length: int64(len(cfg))}); err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaTypeOCIManifest, "config": descs[0], "layers": descs[1:]})
	res, err := reg.PutManifest(context.Background(), repo, tag, MediaTypeOCIManifest, body, nil)
	if err != nil {
		return "", err
	}
	return res.Digest, nil
}

// Only one collection runs at a time; a second one asked for meanwhile
// gets ErrBusy, and one started afterwards runs.
func TestOneCollectionAtATime(t *testing.T) {
	ctx := context.Background()
	h, reg := newHooked(t)
	pushImage(t, reg, "r", "v1", []byte("layer"))
	second := make(chan error, 1)
	h.on("put", is(clockPath), func() {
		_, err := reg.CollectGarbage(ctx, GCOptions{Owner: "second"})
		second <- err
	})
	if _, err := reg.CollectGarbage(ctx, GCOptions{Owner: "first"}); err != nil {
		t.Fatal(err)
	}
	if err := <-second; !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "first") {
		t.Fatalf("a collection started during another: %v, want ErrBusy naming the holder", err)
	}
	if _, err := reg.CollectGarbage(ctx, GCOptions{Owner: "third"}); err != nil {
		t.Fatalf("a collection after the first ended: %v", err)
	}
}

// A collector that crashed leaves its lease and a mark. Writers stop
// honouring the mark once the lease has expired, and the next collector
// takes the lease over and clears the mark.
func TestCrashedCollectorsLeaseAndMarks(t *testing.T) {
	ctx := context.Background()
	_, reg := newHooked(t)
	data := []byte("blob marked by a collector that crashed")
	d := reference.FromBytes("sha256", data)
	crashed, _ := json.Marshal(leaseRecord{Owner: "crashed", Expires: time.Now().Add(time.Hour)})
	if err := reg.d.PutContent(ctx, leasePath, crashed); err != nil {
		t.Fatal(err)
	}
	if err := reg.d.PutContent(ctx, judgingMark(blobLink("r", d)), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CollectGarbage(ctx, GCOptions{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("collection beside a live lease: %v, want ErrBusy", err)
	}
	// While the lease is live, an upload relying on the marked link waits.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := reg.PutBlob(short, "r", d, Chunk{Body: bytes.NewReader(data), Start: -1, Length: int64(len(data))})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("upload beside a live mark: %v, want it to wait", err)
	}
	expired, _ := json.Marshal(leaseRecord{Owner: "crashed", Expires: time.Now().Add(-leaseGrace - time.Second)})
	if err := reg.d.PutContent(ctx, leasePath, expired); err != nil {
		t.Fatal(err)
	}
	if err := reg.PutBlob(ctx, "r", d, Chunk{Body: bytes.NewReader(data), Start: -1, Length: int64(len(data))}); err != nil {
		t.Fatalf("upload beside the mark of an expired lease: %v", err)
	}
	if _, err := reg.CollectGarbage(ctx, GCOptions{}); err != nil {
		t.Fatalf("taking over an expired lease: %v", err)
	}
	if ok, _ := reg.exists(ctx, judgingMark(blobLink("r", d))); ok {
		t.Fatal("the crashed collector's mark survived the next collection")
	}
	if ok, _ := reg.exists(ctx, leasePath); ok {
		t.Fatal("the lease was not released")
	}
}

// A lease lost to a takeover stops its holder from removing anything.
func TestLostLeaseStopsRemovals(t *testing.T) {
	ctx := context.Background()
	h, reg := newHooked(t)
	garbage := []byte("garbage")
	old := pushImage(t, reg, "r", "old", garbage)
	if err := reg.DeleteManifest(ctx, "r", old.String()); err != nil {
		t.Fatal(err)
	}
	settle(t, reg)
	link := blobLink("r", reference.FromBytes("sha256", garbage))
	var held *Lease
	h.on("put", func(p string) bool { return strings.HasPrefix(p, judgingDir+"/") }, func() {
		// Another process took the lease over (this one was paused past
		// its expiry): simulate by expiring our view of it.
		held.mu.Lock()
		held.expires = time.Now()
		held.mu.Unlock()
	})
	l, err := reg.AcquireLease(ctx, "paused", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	held = l
	now, _ := reg.storeNow(ctx)
	removed, err := reg.judge(ctx, l, now, link, nil)
	if !errors.Is(err, errLeaseLost) || removed {
		t.Fatalf("judge with a lost lease: removed %v, %v; want errLeaseLost", removed, err)
	}
	if ok, _ := reg.exists(ctx, link); !ok {
		t.Fatal("a collector whose lease was lost removed the link")
	}
	_ = l.Release(ctx)
}

func verifyClean(t *testing.T, reg *Registry) {
	t.Helper()
	v, err := reg.Verify(context.Background(), VerifyOptions{})
	if err != nil || len(v.Problems) > 0 {
		t.Fatalf("verify: %v %v", v.Problems, err)
	}
}
