package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

var nextLinkRE = regexp.MustCompile(`^<(/v2/[^>]+)>; rel="next"$`)

// TestReferrersBoundedPerRequest is the attack of issue 10: many
// referrers with large annotations (as much as a manifest may hold) made
// one GET of the referrers list read, decode and re-encode all of them at
// once (40 referrers of 4 MiB: about 1 GB for one request). The list is
// now served in pages bounded by bytes, read one entry at a time: one
// request allocates a few page sizes, not the whole list; the pages,
// followed through their Link headers, give every referrer with every
// annotation, and the artifactType filter pages the same way.
func TestReferrersBoundedPerRequest(t *testing.T) {
	root := t.TempDir()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	h := api.New(registry.New(d, registry.Options{}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, root: root}

	const referrers, annotationBytes = 32, 400 << 10 // 12.8 MiB of annotations in all
	subject := e.image("app", nil, []byte("base"))
	sd := digestOf(subject)
	e.putManifest("app", "latest", subject)
	want := map[string]string{} // digest -> its big annotation
	types := map[string]string{}
	for i := 0; i < referrers; i++ {
		big := fmt.Sprintf("%02d <&> ", i) + strings.Repeat("a", annotationBytes)
		at := []string{"application/vnd.example.sig", "application/vnd.example.sbom"}[i%2]
		m := e.image("app", map[string]any{
			"artifactType": at,
			"subject":      desc(registry.MediaTypeOCIManifest, sd, len(subject)),
			"annotations":  map[string]string{"big": big, "i": fmt.Sprint(i)},
		})
		e.putManifest("app", digestOf(m), m)
		want[digestOf(m)], types[digestOf(m)] = big, at
	}

	// One request, in-process, with nothing else running: its allocations
	// are the request's memory.
	path := "/v2/app/referrers/" + sd
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	runtime.ReadMemStats(&after)
	const limit = 8 << 20
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > limit {
		t.Errorf("one referrers request allocated %d MiB (the whole list is %d MiB); want at most %d MiB",
			alloc>>20, referrers*annotationBytes>>20, limit>>20)
	}
	t.Logf("allocated %d KiB, page %d bytes", (after.TotalAlloc-before.TotalAlloc)>>10, rec.Body.Len())
	if rec.Code != 200 || rec.Body.Len() > 2*registry.DefaultReferrersPageBytes {
		t.Fatalf("first page: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	if rec.Header().Get("Link") == "" {
		t.Fatal("a list larger than a page has no Link to the next page")
	}

	for _, filter := range []string{"", "application/vnd.example.sig"} {
		next := path
		if filter != "" {
			next += "?artifactType=" + filter
		}
		seen := map[string]bool{}
		pages := 0
		for next != "" {
			resp, body := e.do("GET", next, nil, nil)
			e.expect(resp, body, http.StatusOK, "")
			pages++
			if ct := resp.Header.Get("Content-Type"); ct != registry.MediaTypeOCIIndex {
				t.Fatalf("Content-Type %q", ct)
			}
			if resp.Header.Get("Docker-Content-Digest") != "" {
				t.Fatal("referrers response carries Docker-Content-Digest")
			}
			if filter != "" && resp.Header.Get("OCI-Filters-Applied") != "artifactType" {
				t.Fatalf("filtered page without OCI-Filters-Applied")
			}
			if len(body) > 2*registry.DefaultReferrersPageBytes {
				t.Fatalf("page of %d bytes", len(body))
			}
			var idx index
			if err := json.Unmarshal(body, &idx); err != nil {
				t.Fatal(err)
			}
			if idx.SchemaVersion != 2 || idx.MediaType != registry.MediaTypeOCIIndex || len(idx.Manifests) == 0 {
				t.Fatalf("page %d: schemaVersion %d mediaType %q, %d descriptors", pages, idx.SchemaVersion, idx.MediaType, len(idx.Manifests))
			}
			for _, m := range idx.Manifests {
				if seen[m.Digest] {
					t.Fatalf("referrer %s on two pages", m.Digest)
				}
				seen[m.Digest] = true
				if m.Annotations["big"] != want[m.Digest] || m.ArtifactType != types[m.Digest] {
					t.Fatalf("referrer %s: artifactType %q, annotation of %d bytes; want %q and %d bytes",
						m.Digest, m.ArtifactType, len(m.Annotations["big"]), types[m.Digest], len(want[m.Digest]))
				}
				if filter != "" && m.ArtifactType != filter {
					t.Fatalf("filter %q returned %q", filter, m.ArtifactType)
				}
			}
			next = ""
			if link := resp.Header.Get("Link"); link != "" {
				m := nextLinkRE.FindStringSubmatch(link)
				if m == nil {
					t.Fatalf("Link %q", link)
				}
				next = m[1]
			}
		}
		wantN := referrers
		if filter != "" {
			wantN = referrers / 2
		}
		if len(seen) != wantN || pages < 2 {
			t.Fatalf("filter %q: %d referrers on %d pages, want %d on several", filter, len(seen), pages, wantN)
		}
	}
}
