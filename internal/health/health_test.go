package health_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/health"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// serve returns a server with the health endpoints over reg's probe,
// probing on every request.
func serve(t *testing.T, reg *registry.Registry) *httptest.Server {
	srv := httptest.NewServer(health.Handler(health.NewChecker(reg.ProbeStorage, health.DefaultTimeout, 0, nil), nil))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// expect checks a probe's answer, which never says more than ok or not
// ready.
func expect(t *testing.T, srv *httptest.Server, path string, status int) {
	t.Helper()
	want := map[int]string{http.StatusOK: "ok\n", http.StatusServiceUnavailable: "not ready\n"}[status]
	if got, body := get(t, srv, path); got != status || body != want {
		t.Fatalf("GET %s: %d %q, want %d %q", path, got, body, status, want)
	}
}

// fullDisk refuses every write with ENOSPC while full is set, as a full
// file system does.
type fullDisk struct {
	*filesystem.Driver
	full atomic.Bool
}

func (f *fullDisk) PutContent(ctx context.Context, p string, b []byte) error {
	if f.full.Load() {
		return fmt.Errorf("%w: %v", storage.ErrNoSpace, syscall.ENOSPC)
	}
	return f.Driver.PutContent(ctx, p, b)
}

func TestReadyzFollowsInjectedFullDisk(t *testing.T) {
	fs, err := filesystem.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	disk := &fullDisk{Driver: fs}
	srv := serve(t, registry.New(disk, registry.Options{}))
	expect(t, srv, "/readyz", http.StatusOK)
	disk.full.Store(true)
	expect(t, srv, "/readyz", http.StatusServiceUnavailable)
	expect(t, srv, "/healthz", http.StatusOK) // the process still serves
	disk.full.Store(false)
	expect(t, srv, "/readyz", http.StatusOK)
}

// The same on a real, small tmpfs filled to the last byte.
func TestReadyzFollowsFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; TestReadyzFollowsInjectedFullDisk covers the behaviour")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); TestReadyzFollowsInjectedFullDisk covers the behaviour", err, out)
	}
	defer exec.Command("umount", dir).Run()
	fs, err := filesystem.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, registry.New(fs, registry.Options{}))
	expect(t, srv, "/readyz", http.StatusOK)

	filler := filepath.Join(dir, "filler")
	if err := fill(filler); err != nil {
		t.Fatal(err)
	}
	expect(t, srv, "/readyz", http.StatusServiceUnavailable)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	expect(t, srv, "/readyz", http.StatusOK)
}

// fill writes to path until the file system has no byte left.
func fill(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
}

// A probe hung in the store fails readiness within the timeout, and later
// requests neither wait for it nor start another.
func TestHungProbe(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	c := health.NewChecker(func(ctx context.Context) error {
		if calls.Add(1) == 1 {
			<-release // a store that does not answer, nor honour ctx
		}
		return nil
	}, 20*time.Millisecond, 0, nil)
	for i := 0; i < 3; i++ {
		if err := c.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "timed out") {
			t.Fatalf("call %d with the probe hung: %v, want a timeout", i, err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d probes started while one hung, want 1", n)
	}
	close(release)
	// The hung probe finishes late and counts as a failure; the next
	// request probes again.
	for deadline := time.Now().Add(time.Minute); c.Ready(context.Background()) != nil; {
		if time.Now().After(deadline) {
			t.Fatal("still not ready a minute after the store answered")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Within MaxAge a result is reused: a flood of probes is one storage write.
func TestResultReused(t *testing.T) {
	var calls atomic.Int32
	c := health.NewChecker(func(context.Context) error { calls.Add(1); return nil }, time.Second, time.Hour, nil)
	for i := 0; i < 10; i++ {
		if err := c.Ready(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d probes for 10 requests within MaxAge, want 1", n)
	}
}

// Only GET and HEAD of the two exact paths are answered here; everything
// else, "/healthz/" and "/v2/../readyz" included, goes to the next handler
// untouched.
func TestHandlerDispatch(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})
	h := health.Handler(health.NewChecker(func(context.Context) error { return nil }, time.Second, 0, nil), next)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/healthz", 200},
		{"HEAD", "/readyz", 200},
		{"POST", "/readyz", 405},
		{"GET", "/healthz/", 418},
		{"GET", "/v2/", 418},
		{"GET", "/v2/../readyz", 418},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(tc.method, "/", nil)
		r.URL.Path = tc.path
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, w.Code, tc.want)
		}
	}
}
