package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/octoserve/octoserve/internal/metrics"
	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
	"github.com/octoserve/octoserve/internal/storage/memory"
	"github.com/octoserve/octoserve/internal/storage/storagetest"
)

// The decorated driver honours every sentence of the storage contract.
func TestInstrumentedDriverContract(t *testing.T) {
	m := metrics.New("test")
	storagetest.Run(t, func(*testing.T) storage.Driver { return m.InstrumentDriver(memory.New(), "memory") })
}

// failing fails its writes with err, and redirects.
type failing struct {
	storage.Driver
	err error
}

func (f *failing) PutContent(context.Context, string, []byte) error { return f.err }

func (f *failing) RedirectURL(context.Context, string) (string, error) {
	return "https://bucket.example/presigned", nil
}

func TestStorageErrorClasses(t *testing.T) {
	ctx := context.Background()
	m := metrics.New("test")
	f := &failing{Driver: memory.New()}
	d := m.InstrumentDriver(f, "s3")
	for _, err := range []error{
		fmt.Errorf("put x: %w: %v", storage.ErrNoSpace, syscall.ENOSPC),
		fmt.Errorf("put x: %w", storage.ErrExists),
		fmt.Errorf("put x: %w", context.Canceled),
		errors.New("connection reset by peer"),
		errors.New("503 slow down"),
	} {
		f.err = err
		if got := d.PutContent(ctx, "x", nil); got != err {
			t.Fatalf("error %v came back as %v", err, got)
		}
	}
	if _, err := d.Stat(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	// An error of the caller's function stops a walk without counting as
	// the store's.
	if err := d.PutIf(ctx, "a/b", []byte("x"), storage.Absent); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("enough")
	if err := d.Walk(ctx, "a", func(storage.Entry) error { return stop }); !errors.Is(err, stop) {
		t.Fatal(err)
	}
	r, ok := d.(storage.Redirector)
	if !ok {
		t.Fatal("the decorator hides the backend's Redirector")
	}
	if u, err := r.RedirectURL(ctx, "x"); err != nil || u == "" {
		t.Fatal(u, err)
	}
	if _, ok := m.InstrumentDriver(memory.New(), "memory").(storage.Redirector); ok {
		t.Fatal("the decorator claims a Redirector the backend does not have")
	}

	fams := families(t, scrape(t, m))
	type L = map[string]string
	for _, c := range []struct {
		labels L
		want   float64
	}{
		{L{"backend": "s3", "action": "put_content", "class": "no_space"}, 1},
		{L{"backend": "s3", "action": "put_content", "class": "conflict"}, 1},
		{L{"backend": "s3", "action": "put_content", "class": "canceled"}, 1},
		{L{"backend": "s3", "action": "put_content", "class": "other"}, 2},
		{L{"backend": "s3", "action": "stat", "class": "not_found"}, 1},
		{L{"backend": "s3", "action": "walk"}, 0},
		{L{"backend": "s3", "action": "put_if"}, 0},
	} {
		if got := sum(t, fams, "octoserve_storage_errors_total", c.labels); got != c.want {
			t.Errorf("errors %v = %v, want %v", c.labels, got, c.want)
		}
	}
	for action, want := range map[string]float64{"put_content": 5, "stat": 1, "walk": 1, "put_if": 1, "redirect_url": 1} {
		if got := sum(t, fams, "octoserve_storage_operation_duration_seconds", L{"backend": "s3", "action": action}, "count"); got != want {
			t.Errorf("%s calls measured: %v, want %v", action, got, want)
		}
	}
}

// Through the decorator a filesystem blob still opens as an *os.File, so
// that the HTTP layer can let the kernel copy it.
func TestInstrumentedReaderIsStillAFile(t *testing.T) {
	ctx := context.Background()
	fs, err := filesystem.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := metrics.New("test").InstrumentDriver(fs, "filesystem")
	if err := d.PutContent(ctx, "blobs/x", []byte("bytes")); err != nil {
		t.Fatal(err)
	}
	rc, _, err := d.Reader(ctx, "blobs/x")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, ok := rc.(*os.File); !ok {
		t.Fatalf("Reader returned %T, not *os.File", rc)
	}
}
