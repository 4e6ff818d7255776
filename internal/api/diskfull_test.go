package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// fullDisk fails every write past a budget of bytes with ENOSPC, as a full
// file system does, by wrapping the real filesystem driver.
type fullDisk struct {
	*filesystem.Driver
	budget int64
}

func (f *fullDisk) spend(n int) error {
	if f.budget < int64(n) {
		return fmt.Errorf("%w: %v", storage.ErrNoSpace, syscall.ENOSPC)
	}
	f.budget -= int64(n)
	return nil
}

func (f *fullDisk) PutContent(ctx context.Context, p string, b []byte) error {
	if err := f.spend(len(b)); err != nil {
		return err
	}
	return f.Driver.PutContent(ctx, p, b)
}

func (f *fullDisk) Writer(ctx context.Context, p string, mode storage.WriteMode) (storage.Writer, error) {
	w, err := f.Driver.Writer(ctx, p, mode)
	if err != nil {
		return nil, err
	}
	return &fullWriter{Writer: w, disk: f}, nil
}

type fullWriter struct {
	storage.Writer
	disk *fullDisk
}

func (w *fullWriter) Write(b []byte) (int, error) {
	if err := w.disk.spend(len(b)); err != nil {
		return 0, err
	}
	return w.Writer.Write(b)
}

func TestDiskFullInjected(t *testing.T) {
	root := t.TempDir()
	fs, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	disk := &fullDisk{Driver: fs, budget: 1 << 30}
	reg := registry.New(disk, registry.Options{})
	srv := httptest.NewServer(api.New(reg))
	defer srv.Close()
	e := &env{t: t, srv: srv, root: root}

	m := e.image("app", nil, []byte("stored before the disk filled"))
	e.putManifest("app", "v1", m)
	before := e.snapshot()

	disk.budget = 100 // a few small files, not a 1 MiB layer
	big := bytes.Repeat([]byte("x"), 1<<20)
	resp, body := e.do("POST", "/v2/app/blobs/uploads/?digest="+digestOf(big), big, nil)
	e.expect(resp, body, http.StatusInsufficientStorage, "UNKNOWN")
	if !strings.Contains(string(body), "insufficient storage") {
		t.Fatalf("error body does not say what happened: %s", body)
	}
	disk.budget = 0
	resp, body = e.do("PUT", "/v2/app/manifests/v2", e.imageNoPush(), hdr{"Content-Type": registry.MediaTypeOCIManifest})
	e.expect(resp, body, http.StatusInsufficientStorage, "UNKNOWN")

	if after := e.snapshot(); after != before {
		t.Fatalf("a failed write left data behind:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	resp, body = e.do("GET", "/v2/app/manifests/v1", nil, nil)
	e.expect(resp, body, http.StatusOK, "")
	if v, err := reg.Verify(context.Background(), registry.VerifyOptions{}); err != nil || len(v.Problems) > 0 {
		t.Fatalf("verify: %v %v", err, v.Problems)
	}
}

// imageNoPush returns a manifest over the already pushed config of image.
func (e *env) imageNoPush() []byte {
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`,
		registry.MediaTypeOCIManifest, digestOf(cfg), len(cfg)))
}

// The same on a real, small tmpfs where this test may mount one (root).
func TestDiskFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; TestDiskFullInjected covers the behaviour")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); TestDiskFullInjected covers the behaviour", err, out)
	}
	defer exec.Command("umount", dir).Run()
	fs, err := filesystem.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(fs, registry.Options{})
	srv := httptest.NewServer(api.New(reg))
	defer srv.Close()
	e := &env{t: t, srv: srv, root: dir}
	m := e.image("app", nil, []byte("stored before the disk filled"))
	e.putManifest("app", "v1", m)
	before := e.snapshot()

	big := bytes.Repeat([]byte("y"), 3<<20)
	resp, body := e.do("POST", "/v2/app/blobs/uploads/?digest="+digestOf(big), big, nil)
	e.expect(resp, body, http.StatusInsufficientStorage, "UNKNOWN")
	if after := e.snapshot(); after != before {
		t.Fatalf("a failed write left data behind:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if v, err := reg.Verify(context.Background(), registry.VerifyOptions{}); err != nil || len(v.Problems) > 0 {
		t.Fatalf("verify: %v %v", err, v.Problems)
	}
}
