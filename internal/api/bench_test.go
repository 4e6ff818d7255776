package api_test

// Micro-benchmarks of the HTTP layer's hot paths through its exported API
// (api.New over a registry on a temporary directory), served to an
// httptest.ResponseRecorder so that the figures are the handler's own
// cost, without the network: routing, manifest GET by tag, tag list, blob
// GET and HEAD. `make bench-go` runs them with -benchmem.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

func benchAPI(b *testing.B) http.Handler {
	b.Helper()
	d, err := filesystem.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return api.New(registry.New(d, registry.Options{}))
}

// serve runs one request through h and fails unless it answers want.
func serve(b *testing.B, h http.Handler, method, target string, body []byte, contentType string, want int) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d, want %d: %s", method, target, rec.Code, want, rec.Body.String())
	}
	return rec
}

// benchImage pushes a one-layer image as repo:latest plus tags more tags
// and returns the layer's digest.
func benchImage(b *testing.B, h http.Handler, repo string, layer []byte, tags int) string {
	b.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	for _, blob := range [][]byte{cfg, layer} {
		serve(b, h, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(blob), blob, "", http.StatusCreated)
	}
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": registry.MediaTypeOCIManifest,
		"config": desc("application/vnd.oci.image.config.v1+json", digestOf(cfg), len(cfg)),
		"layers": []any{desc("application/vnd.oci.image.layer.v1.tar", digestOf(layer), len(layer))},
	})
	serve(b, h, "PUT", "/v2/"+repo+"/manifests/latest", m, registry.MediaTypeOCIManifest, http.StatusCreated)
	for i := range tags {
		serve(b, h, "PUT", fmt.Sprintf("/v2/%s/manifests/v%d", repo, i), m, registry.MediaTypeOCIManifest, http.StatusCreated)
	}
	return digestOf(layer)
}

func BenchmarkParseRoute(b *testing.B) {
	for _, tc := range []struct{ name, path string }{
		{"manifest", "/v2/library/alpine/manifests/latest"},
		{"blob", "/v2/a/b/c/blobs/sha256:" + fmt.Sprintf("%064x", 1)},
		{"upload", "/v2/team/app/blobs/uploads/0123456789abcdef"},
	} {
		path := tc.path
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := api.ParseRoute(path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkManifestGET is the request every pull starts with.
func BenchmarkManifestGET(b *testing.B) {
	h := benchAPI(b)
	benchImage(b, h, "bench/meta", []byte("layer"), 0)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/v2/bench/meta/manifests/latest", nil)
		req.Header.Set("Accept", registry.MediaTypeOCIManifest)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkTagList lists 100 tags.
func BenchmarkTagList(b *testing.B) {
	h := benchAPI(b)
	benchImage(b, h, "bench/meta", []byte("layer"), 99)
	b.ReportAllocs()
	for b.Loop() {
		serve(b, h, "GET", "/v2/bench/meta/tags/list", nil, "", http.StatusOK)
	}
}

// BenchmarkBlobGET serves a 1 MiB blob whole (the buffered copy of
// blobWriteSize writes) and its HEAD.
func BenchmarkBlobGET(b *testing.B) {
	h := benchAPI(b)
	layer := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	d := benchImage(b, h, "bench/blob", layer, 0)
	for _, method := range []string{"GET", "HEAD"} {
		b.Run(method, func(b *testing.B) {
			if method == "GET" {
				b.SetBytes(int64(len(layer)))
			}
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(method, "/v2/bench/blob/blobs/"+d, nil)
				rec := httptest.NewRecorder()
				rec.Body = nil // discard: measure the handler, not the recorder's buffer
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
