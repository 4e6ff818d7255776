package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// Upload sessions idle longer than the limit are removed by a collection:
// their status endpoint answers 404 BLOB_UPLOAD_UNKNOWN and they take no
// more data, while a live session reports the range it accepted and
// finishes normally (issue 6, "Uploads").
func TestIdleUploadExpires(t *testing.T) {
	root := t.TempDir()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(d, registry.Options{})
	srv := httptest.NewServer(api.New(reg))
	defer srv.Close()
	e := &env{t: t, srv: srv, root: root}

	open := func(chunk string) string {
		resp, body := e.do("POST", "/v2/r/blobs/uploads/", nil, nil)
		e.expect(resp, body, http.StatusAccepted, "")
		resp, body = e.do("PATCH", resp.Header.Get("Location"), []byte(chunk), hdr{"Content-Type": "application/octet-stream"})
		e.expect(resp, body, http.StatusAccepted, "")
		return resp.Header.Get("Location")
	}
	idle := open("abandoned half of a blob")
	live := open("0123456789")

	// The idle session last saw data 25 hours ago.
	old := time.Now().Add(-25 * time.Hour)
	dir := filepath.Join(root, "uploads", "r", path.Base(idle))
	files := 0
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files++
			err = os.Chtimes(p, old, old)
		}
		return err
	})
	if err != nil || files == 0 {
		t.Fatalf("upload %s not stored as expected under %s: %v", idle, dir, err)
	}

	report, err := reg.CollectGarbage(context.Background(), registry.GCOptions{MinAge: time.Hour, UploadMaxIdle: 24 * time.Hour})
	if err != nil || report.Uploads != 1 {
		t.Fatalf("collection removed %d uploads (%v), want 1", report.Uploads, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the idle upload's data is still on disk: %v", err)
	}

	resp, body := e.do("GET", idle, nil, nil)
	e.expect(resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	resp, body = e.do("PATCH", idle, []byte("more"), hdr{"Content-Type": "application/octet-stream"})
	e.expect(resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	resp, body = e.do("PUT", idle+"?digest="+digestOf([]byte("abandoned half of a blob")), nil, nil)
	e.expect(resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")

	resp, body = e.do("GET", live, nil, nil)
	e.expect(resp, body, http.StatusNoContent, "")
	if got := resp.Header.Get("Range"); got != "0-9" {
		t.Fatalf("live upload status Range %q, want 0-9", got)
	}
	resp, body = e.do("PUT", live+"?digest="+digestOf([]byte("0123456789")), nil, nil)
	e.expect(resp, body, http.StatusCreated, "")
}
