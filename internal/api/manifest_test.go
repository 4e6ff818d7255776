package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/octoserve/octoserve/internal/registry"
)

func TestManifestPushPull(t *testing.T) {
	e := newEnv(t, registry.Options{})
	m := e.image("app", nil, []byte("layer one"))
	d := digestOf(m)
	resp := e.putManifest("app", "v1", m)
	if resp.Header.Get("Docker-Content-Digest") != d || resp.Header.Get("Location") != "/v2/app/manifests/"+d {
		t.Fatalf("PUT headers %v", resp.Header)
	}
	for _, ref := range []string{"v1", d} {
		for _, method := range []string{"GET", "HEAD"} {
			resp, body := e.do(method, "/v2/app/manifests/"+ref, nil, nil)
			e.expect(resp, body, http.StatusOK, "")
			if ct := resp.Header.Get("Content-Type"); ct != registry.MediaTypeOCIManifest {
				t.Errorf("%s %s: Content-Type %q", method, ref, ct)
			}
			if resp.Header.Get("Docker-Content-Digest") != d || resp.Header.Get("Content-Length") != itoa(len(m)) {
				t.Errorf("%s %s: headers %v", method, ref, resp.Header)
			}
			if method == "GET" && string(body) != string(m) {
				t.Errorf("GET %s: body differs from what was pushed", ref)
			}
		}
	}
	resp, body := e.do("GET", "/v2/app/manifests/v1", nil, hdr{"If-None-Match": `"` + d + `"`})
	e.expect(resp, body, http.StatusNotModified, "")
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestManifestErrorsChangeNothing(t *testing.T) {
	e := newEnv(t, registry.Options{MaxManifestBytes: 1 << 20})
	good := e.image("app", nil, []byte("layer"))
	missing := e.image("scratch", nil, []byte("only in scratch"))
	before := e.snapshot()
	mismatched := strings.Replace(string(good), registry.MediaTypeOCIManifest, registry.MediaTypeDockerManifest, 1)
	cases := []struct {
		name, ref, contentType, body string
		status                       int
		code                         string
	}{
		{"not json", "v1", registry.MediaTypeOCIManifest, "{not json", 400, "MANIFEST_INVALID"},
		{"trailing data", "v1", registry.MediaTypeOCIManifest, string(good) + "{}", 400, "MANIFEST_INVALID"},
		{"media type disagrees", "v1", registry.MediaTypeOCIManifest, mismatched, 400, "MANIFEST_INVALID"},
		{"unsupported type", "v1", "application/vnd.docker.distribution.manifest.v1+prettyjws", `{"schemaVersion":1}`, 400, "MANIFEST_INVALID"},
		{"schema version", "v1", registry.MediaTypeOCIManifest, `{"schemaVersion":1,"config":{"mediaType":"a","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1}}`, 400, "MANIFEST_INVALID"},
		{"no config", "v1", registry.MediaTypeOCIManifest, `{"schemaVersion":2,"layers":[]}`, 400, "MANIFEST_INVALID"},
		{"bad descriptor digest", "v1", registry.MediaTypeOCIManifest, `{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:zz","size":1}}`, 400, "MANIFEST_INVALID"},
		{"blob missing", "v1", registry.MediaTypeOCIManifest, string(missing), 400, "MANIFEST_BLOB_UNKNOWN"},
		{"child missing", "v1", registry.MediaTypeOCIIndex, `{"schemaVersion":2,"manifests":[{"mediaType":"` + registry.MediaTypeOCIManifest + `","digest":"` + digestOf([]byte("x")) + `","size":1}]}`, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"digest mismatch", digestOf([]byte("other")), registry.MediaTypeOCIManifest, string(good), 400, "DIGEST_INVALID"},
		{"invalid tag", "-bad", registry.MediaTypeOCIManifest, string(good), 400, "TAG_INVALID"},
		{"too large", "v1", registry.MediaTypeOCIManifest, `{"pad":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "SIZE_INVALID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			resp, body := e.do("PUT", "/v2/app/manifests/"+tc.ref, []byte(tc.body), hdr{"Content-Type": tc.contentType})
			e.expect(resp, body, tc.status, tc.code)
			if after := e.snapshot(); after != before {
				t.Fatalf("storage changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

func TestManifestGetErrors(t *testing.T) {
	e := newEnv(t, registry.Options{})
	e.putManifest("app", "v1", e.image("app", nil))
	for _, ref := range []string{"v2", ".INVALID_MANIFEST_NAME", digestOf([]byte("x")), "sha256:baddigeststring"} {
		resp, body := e.do("GET", "/v2/app/manifests/"+ref, nil, nil)
		e.expect(resp, body, http.StatusNotFound, "MANIFEST_UNKNOWN")
	}
}

func TestNondistributableAndSparse(t *testing.T) {
	e := newEnv(t, registry.Options{})
	foreign := desc("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", digestOf([]byte("elsewhere")), 9)
	m := e.image("app", map[string]any{"layers": []any{foreign}})
	e.putManifest("app", "nd", m)

	idx := []byte(`{"schemaVersion":2,"mediaType":"` + registry.MediaTypeOCIIndex + `","manifests":[{"mediaType":"` + registry.MediaTypeOCIManifest + `","digest":"` + digestOf([]byte("absent")) + `","size":6}]}`)
	resp, body := e.do("PUT", "/v2/app/manifests/idx", idx, hdr{"Content-Type": registry.MediaTypeOCIIndex})
	e.expect(resp, body, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")

	sparse := newEnv(t, registry.Options{Sparse: true})
	resp, body = sparse.do("PUT", "/v2/app/manifests/idx", idx, hdr{"Content-Type": registry.MediaTypeOCIIndex})
	sparse.expect(resp, body, http.StatusCreated, "")
}

func TestManifestDeleteAndTags(t *testing.T) {
	e := newEnv(t, registry.Options{})
	m1 := e.image("app", nil, []byte("one"))
	m2 := e.image("app", nil, []byte("two"))
	e.putManifest("app", "a", m1)
	e.putManifest("app", "b", m1)
	e.putManifest("app", "c", m2)

	// ?tag= on a push by digest sets tags and echoes them in OCI-Tag.
	resp, body := e.do("PUT", "/v2/app/manifests/"+digestOf(m2)+"?tag=d&tag=e", m2, hdr{"Content-Type": registry.MediaTypeOCIManifest})
	e.expect(resp, body, http.StatusCreated, "")
	if got := resp.Header.Values("OCI-Tag"); strings.Join(got, ",") != "d,e" {
		t.Fatalf("OCI-Tag %v", got)
	}
	assertTags(t, e, "/v2/app/tags/list", "a", "b", "c", "d", "e")

	// Deleting a tag leaves the manifest.
	resp, body = e.do("DELETE", "/v2/app/manifests/c", nil, nil)
	e.expect(resp, body, http.StatusAccepted, "")
	resp, body = e.do("GET", "/v2/app/manifests/"+digestOf(m2), nil, nil)
	e.expect(resp, body, http.StatusOK, "")
	// Deleting by digest removes the manifest and the tags on it.
	resp, body = e.do("DELETE", "/v2/app/manifests/"+digestOf(m1), nil, nil)
	e.expect(resp, body, http.StatusAccepted, "")
	for _, ref := range []string{"a", "b", digestOf(m1)} {
		resp, body = e.do("HEAD", "/v2/app/manifests/"+ref, nil, nil)
		e.expect(resp, body, http.StatusNotFound, "")
	}
	assertTags(t, e, "/v2/app/tags/list", "d", "e")
	resp, body = e.do("DELETE", "/v2/app/manifests/"+digestOf(m1), nil, nil)
	e.expect(resp, body, http.StatusNotFound, "MANIFEST_UNKNOWN")
	resp, body = e.do("DELETE", "/v2/app/manifests/nope", nil, nil)
	e.expect(resp, body, http.StatusNotFound, "MANIFEST_UNKNOWN")
}

func assertTags(t *testing.T, e *env, path string, want ...string) *http.Response {
	t.Helper()
	resp, body := e.do("GET", path, nil, nil)
	e.expect(resp, body, http.StatusOK, "")
	var got struct{ Tags []string }
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Tags, ",") != strings.Join(want, ",") {
		t.Fatalf("%s: tags %v, want %v", path, got.Tags, want)
	}
	return resp
}

func TestTagsPagination(t *testing.T) {
	e := newEnv(t, registry.Options{})
	m := e.image("app", nil)
	for _, tag := range []string{"b", "a", "C", "c", "1"} {
		e.putManifest("app", tag, m)
	}
	assertTags(t, e, "/v2/app/tags/list", "1", "C", "a", "b", "c")
	resp := assertTags(t, e, "/v2/app/tags/list?n=2", "1", "C")
	if link := resp.Header.Get("Link"); link != `</v2/app/tags/list?last=C&n=2>; rel="next"` {
		t.Fatalf("Link %q", link)
	}
	resp = assertTags(t, e, "/v2/app/tags/list?n=2&last=C", "a", "b")
	resp = assertTags(t, e, "/v2/app/tags/list?n=2&last=b", "c")
	if resp.Header.Get("Link") != "" {
		t.Fatal("Link on the last page")
	}
	assertTags(t, e, "/v2/app/tags/list?last=a", "b", "c")
	assertTags(t, e, "/v2/app/tags/list?n=0")

	resp, body := e.do("GET", "/v2/app/tags/list?n=-1", nil, nil)
	e.expect(resp, body, http.StatusBadRequest, "")
	resp, body = e.do("GET", "/v2/nothing/here/tags/list", nil, nil)
	e.expect(resp, body, http.StatusNotFound, "NAME_UNKNOWN")
}

func TestReferrers(t *testing.T) {
	e := newEnv(t, registry.Options{})
	subject := e.image("app", nil, []byte("base"))
	sd := digestOf(subject)
	sig := e.image("app", map[string]any{
		"artifactType": "application/vnd.example.sig",
		"subject":      desc(registry.MediaTypeOCIManifest, sd, len(subject)),
		"annotations":  map[string]string{"k": "v"},
	})
	sbom := e.image("app", map[string]any{"subject": desc(registry.MediaTypeOCIManifest, sd, len(subject))})

	// An empty index for a subject nothing refers to, even in no repository.
	assertReferrers(t, e, "/v2/none/referrers/"+sd, "")
	// A referrer pushed before its subject.
	resp := e.putManifest("app", digestOf(sig), sig)
	if resp.Header.Get("OCI-Subject") != sd {
		t.Fatalf("OCI-Subject %q", resp.Header.Get("OCI-Subject"))
	}
	e.putManifest("app", "latest", subject)
	e.putManifest("app", digestOf(sbom), sbom)

	idx := assertReferrers(t, e, "/v2/app/referrers/"+sd, "", digestOf(sig), digestOf(sbom))
	for _, m := range idx.Manifests {
		want := map[string]string{digestOf(sig): "application/vnd.example.sig", digestOf(sbom): "application/vnd.oci.image.config.v1+json"}[m.Digest]
		if m.ArtifactType != want {
			t.Errorf("referrer %s artifactType %q, want %q", m.Digest, m.ArtifactType, want)
		}
		if m.Digest == digestOf(sig) && m.Annotations["k"] != "v" {
			t.Errorf("annotations not copied: %v", m.Annotations)
		}
	}
	assertReferrers(t, e, "/v2/app/referrers/"+sd+"?artifactType=application/vnd.example.sig", "artifactType", digestOf(sig))

	resp, body := e.do("DELETE", "/v2/app/manifests/"+digestOf(sig), nil, nil)
	e.expect(resp, body, http.StatusAccepted, "")
	assertReferrers(t, e, "/v2/app/referrers/"+sd, "", digestOf(sbom))
}

type index struct {
	SchemaVersion int
	MediaType     string
	Manifests     []registry.Descriptor
}

func assertReferrers(t *testing.T, e *env, path, filters string, want ...string) index {
	t.Helper()
	resp, body := e.do("GET", path, nil, nil)
	e.expect(resp, body, http.StatusOK, "")
	if ct := resp.Header.Get("Content-Type"); ct != registry.MediaTypeOCIIndex {
		t.Fatalf("referrers Content-Type %q", ct)
	}
	if resp.Header.Get("OCI-Filters-Applied") != filters {
		t.Fatalf("OCI-Filters-Applied %q, want %q", resp.Header.Get("OCI-Filters-Applied"), filters)
	}
	if resp.Header.Get("Docker-Content-Digest") != "" {
		t.Fatal("referrers response carries Docker-Content-Digest")
	}
	var idx index
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatal(err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != registry.MediaTypeOCIIndex || idx.Manifests == nil {
		t.Fatalf("referrers body %s", body)
	}
	got := map[string]bool{}
	for _, m := range idx.Manifests {
		got[m.Digest] = true
	}
	if len(got) != len(want) {
		t.Fatalf("%s: referrers %s, want %v", path, body, want)
	}
	for _, w := range want {
		if !got[w] {
			t.Fatalf("%s: missing referrer %s in %s", path, w, body)
		}
	}
	return idx
}

func TestCatalog(t *testing.T) {
	e := newEnv(t, registry.Options{})
	for _, repo := range []string{"b/x", "a", "b/x/y", "c"} {
		e.pushBlob(repo, []byte(repo))
	}
	resp, body := e.do("GET", "/v2/_catalog", nil, nil)
	e.expect(resp, body, http.StatusOK, "")
	if string(body) != `{"repositories":["a","b/x","b/x/y","c"]}` {
		t.Fatalf("catalog %s", body)
	}
	resp, body = e.do("GET", "/v2/_catalog?n=2&last=a", nil, nil)
	e.expect(resp, body, http.StatusOK, "")
	if string(body) != `{"repositories":["b/x","b/x/y"]}` || !strings.Contains(resp.Header.Get("Link"), "last=b%2Fx%2Fy") {
		t.Fatalf("catalog page %s Link %q", body, resp.Header.Get("Link"))
	}
}
