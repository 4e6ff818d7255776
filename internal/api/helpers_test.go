package api_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// env is a registry served by httptest on a fresh data directory.
type env struct {
	t    *testing.T
	srv  *httptest.Server
	root string
}

func newEnv(t *testing.T, opts registry.Options, apiOpts ...api.Option) *env {
	t.Helper()
	root := t.TempDir()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(registry.New(d, opts), apiOpts...))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, root: root}
}

type hdr map[string]string

// do sends a request and returns the response with its body read.
func (e *env) do(method, path string, body []byte, h hdr) (*http.Response, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

// expect checks status and, for errors, the OCI error code in the body.
func (e *env) expect(resp *http.Response, body []byte, status int, code string) {
	e.t.Helper()
	if resp.StatusCode != status {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	if code == "" {
		return
	}
	var eb struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if err := json.Unmarshal(body, &eb); err != nil || len(eb.Errors) == 0 || eb.Errors[0].Code != code {
		e.t.Fatalf("%s %s: body %s, want error code %s", resp.Request.Method, resp.Request.URL.Path, body, code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("error Content-Type %q", ct)
	}
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// pushBlob uploads b monolithically to repo and returns its digest.
func (e *env) pushBlob(repo string, b []byte) string {
	e.t.Helper()
	d := digestOf(b)
	resp, body := e.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, b, nil)
	e.expect(resp, body, http.StatusCreated, "")
	return d
}

// image builds an OCI image manifest over config and layers (pushed first).
func (e *env) image(repo string, extra map[string]any, layers ...[]byte) []byte {
	e.t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     registry.MediaTypeOCIManifest,
		"config":        desc("application/vnd.oci.image.config.v1+json", e.pushBlob(repo, cfg), len(cfg)),
	}
	ls := []any{}
	for _, l := range layers {
		ls = append(ls, desc("application/vnd.oci.image.layer.v1.tar", e.pushBlob(repo, l), len(l)))
	}
	m["layers"] = ls
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

func desc(mediaType, digest string, size int) map[string]any {
	return map[string]any{"mediaType": mediaType, "digest": digest, "size": size}
}

func (e *env) putManifest(repo, ref string, body []byte) *http.Response {
	e.t.Helper()
	resp, b := e.do("PUT", "/v2/"+repo+"/manifests/"+ref, body, hdr{"Content-Type": registry.MediaTypeOCIManifest})
	e.expect(resp, b, http.StatusCreated, "")
	return resp
}

// snapshot lists every file (empty directories aside) under the data directory with its size, so a
// test can show that a refused request changed nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	var lines []string
	err := filepath.Walk(e.root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(e.root, p)
		if !info.IsDir() {
			lines = append(lines, fmt.Sprintf("%s %d", rel, info.Size()))
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func sha512Hex(b []byte) string {
	s := sha512.Sum512(b)
	return hex.EncodeToString(s[:])
}
