package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/proxy/upstreamtest"
)

// A multi-platform image pulled through the cache for one platform: the
// upstream sees requests for the index and that platform only, and none
// at all on the second pull; the other platform is never fetched.
func TestPullThroughOnePlatform(t *testing.T) {
	r := newRig(t, upstreamtest.Options{}, nil)
	amd := upstreamtest.NewImage(t, "linux/amd64", 3000, 70000)
	arm := upstreamtest.NewImage(t, "linux/arm64/v8", 5000)
	idx := upstreamtest.NewIndex(t, amd, arm)
	r.up.Index(t, "library/app", "1.0", idx)

	pull := func() {
		res := r.get("/v2/"+prefix+"/library/app/manifests/1.0", idx.Manifest)
		if res.header.Get("Docker-Content-Digest") != idx.Digest || res.header.Get("Content-Type") != upstreamtest.MediaTypeIndex {
			t.Fatalf("index served with digest %q type %q", res.header.Get("Docker-Content-Digest"), res.header.Get("Content-Type"))
		}
		r.pullImage(prefix+"/library/app", amd)
	}
	pull()
	if n := r.upstreamRequests("blob", "GET", amd.Blobs()); n != 3 {
		t.Errorf("first pull: %d blob GETs upstream for the amd64 image, want 3 (config, two layers)", n)
	}
	if n := r.upstreamRequests("blob", "", arm.Blobs()) + r.upstreamRequests("manifest", "", map[string][]byte{arm.Digest: nil}); n != 0 {
		t.Errorf("the arm64 image was asked for upstream %d times; only what the client asks for may be fetched", n)
	}
	if n := r.front.Count("manifest", "GET"); n != 2 {
		t.Errorf("first pull: %d manifest GETs upstream, want 2 (index by tag, image by digest)", n)
	}
	r.front.Reset()
	pull()
	if got := r.front.Requests(nil); len(got) != 0 {
		t.Errorf("second pull made %d upstream requests, want none: %+v", len(got), got)
	}
	s := r.px.Stats()
	wantBytes := int64(len(idx.Manifest) + len(amd.Manifest) + len(amd.Config) + len(amd.Layers[0]) + len(amd.Layers[1]))
	if s.ManifestMisses != 2 || s.ManifestHits != 2 || s.BlobMisses != 3 || s.BlobHits != 3 || s.UpstreamBytes != wantBytes {
		t.Errorf("stats %+v; want 2 manifest misses and hits, 3 blob misses and hits, %d upstream bytes", s, wantBytes)
	}
	// Local content is what was fetched, and only that.
	if _, err := r.reg.StatBlob(t.Context(), prefix+"/library/app", mustDigest(t, upstreamtest.Digest(arm.Layers[0]))); err == nil {
		t.Error("the arm64 layer is stored")
	}
}

// A tag is served from the cache within the revalidation interval, asked
// about with one HEAD after it, and followed when it moved upstream.
func TestTagRevalidation(t *testing.T) {
	r := newRig(t, upstreamtest.Options{}, nil)
	a := upstreamtest.NewImage(t, "linux/amd64", 100)
	b := upstreamtest.NewImage(t, "linux/amd64", 200)
	r.up.Image(t, "app", "latest", a)
	path := "/v2/" + prefix + "/app/manifests/latest"
	r.get(path, a.Manifest)

	r.up.Image(t, "app", "latest", b) // the tag moves upstream
	r.front.Reset()
	r.clock.Advance(time.Hour - time.Second)
	r.get(path, a.Manifest)
	if n := len(r.front.Requests(nil)); n != 0 {
		t.Fatalf("within the interval: %d upstream requests, want none", n)
	}
	r.clock.Advance(2 * time.Second)
	r.get(path, b.Manifest)
	if heads, gets := r.front.Count("manifest", "HEAD"), r.front.Count("manifest", "GET"); heads != 1 || gets != 1 {
		t.Errorf("after the interval: %d HEADs and %d GETs of manifests upstream, want 1 and 1", heads, gets)
	}
	r.front.Reset()
	r.get(path, b.Manifest)
	r.clock.Advance(time.Hour)
	r.get(path, b.Manifest) // unchanged: one HEAD, no GET
	if heads, gets := r.front.Count("manifest", "HEAD"), r.front.Count("manifest", "GET"); heads != 1 || gets != 0 {
		t.Errorf("unchanged tag revalidated with %d HEADs and %d GETs, want 1 and 0", heads, gets)
	}
	// Moved back to a manifest the cache holds: the tag moves, nothing is fetched.
	r.up.Manifest(t, "app", "latest", a.MediaType, a.Manifest)
	r.front.Reset()
	r.clock.Advance(time.Hour)
	r.get(path, a.Manifest)
	if gets := r.front.Count("manifest", "GET"); gets != 0 {
		t.Errorf("tag moved to a cached manifest: %d manifest GETs upstream, want 0", gets)
	}
	// Deleted upstream: believed.
	r.up.Delete(t, "app", "latest")
	r.clock.Advance(time.Hour)
	r.expectError(r.do("GET", path, nil, nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	if _, err := r.reg.GetManifest(t.Context(), prefix+"/app", "latest"); err == nil {
		t.Error("a tag the upstream deleted is still in the cache")
	}
}

// When the upstream answers 429, hangs up or hangs, a cached tag is
// served anyway (and counted), while what is not cached gets an error.
func TestStaleBeatsBroken(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     upstreamtest.Mode
		status   int
		code     string
		errsWith int // UpstreamErrors key
	}{
		{"429", upstreamtest.TooManyRequests, http.StatusTooManyRequests, "TOOMANYREQUESTS", 429},
		{"down", upstreamtest.Down, http.StatusBadGateway, "UNKNOWN", 0},
		{"timeout", upstreamtest.Hang, http.StatusBadGateway, "UNKNOWN", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, upstreamtest.Options{}, func(c *config.Proxy) { c.Upstreams[0].Timeout = 300 * time.Millisecond })
			img := upstreamtest.NewImage(t, "linux/amd64", 1000)
			r.up.Image(t, "app", "v1", img)
			r.up.Image(t, "app", "v2", upstreamtest.NewImage(t, "linux/amd64", 10))
			path := "/v2/" + prefix + "/app/manifests/v1"
			r.get(path, img.Manifest)
			r.pullImage(prefix+"/app", img)

			r.front.SetMode(tc.mode)
			r.clock.Advance(2 * time.Hour)
			r.get(path, img.Manifest)
			r.pullImage(prefix+"/app", img)
			s := r.px.Stats()
			if s.Stale != 1 || s.UpstreamErrors[tc.errsWith] == 0 {
				t.Errorf("stats %+v: want one stale copy served and an upstream error counted under %d", s, tc.errsWith)
			}
			// Asked again only after another interval.
			before := len(r.front.Requests(nil))
			r.get(path, img.Manifest)
			if after := len(r.front.Requests(nil)); after != before {
				t.Errorf("a failed revalidation was retried within the interval (%d upstream requests)", after-before)
			}
			r.expectError(r.do("GET", "/v2/"+prefix+"/app/manifests/v2", nil, nil), tc.status, tc.code)

			r.front.SetMode(upstreamtest.Up)
			r.clock.Advance(2 * time.Hour)
			r.front.Reset()
			r.get(path, img.Manifest)
			if r.front.Count("manifest", "HEAD") != 1 {
				t.Error("the tag was not revalidated once the upstream was back")
			}
		})
	}
}

// containerd's ?ns= and Docker's bare Docker Hub names map onto the
// cached repositories; other names stay local.
func TestRepositoryMapping(t *testing.T) {
	r := newRig(t, upstreamtest.Options{}, func(c *config.Proxy) {
		c.Upstreams[0].Namespaces = []string{"up.test", "127.0.0.1:5999"}
		c.Upstreams = append(c.Upstreams, config.Upstream{Prefix: "docker.io", URL: r0URL(c)})
		c.DefaultUpstream = "docker.io"
	})
	for _, tc := range []struct{ name, ns, want string }{
		{"library/alpine", "up.test", "up.test/library/alpine"},
		{"a/b", "127.0.0.1:5999", "up.test/a/b"},
		{"alpine", "docker.io", "docker.io/library/alpine"},
		{"library/alpine", "docker.io", "docker.io/library/alpine"},
		{"library/alpine", "", "docker.io/library/alpine"},
		{"alpine", "", "docker.io/library/alpine"},
		{"up.test/x", "", "up.test/x"},
		{"docker.io/library/alpine", "", "docker.io/library/alpine"},
		{"a/b", "quay.io", "a/b"}, // a namespace no upstream claims
	} {
		if got := r.px.Repository(tc.name, tc.ns); got != tc.want {
			t.Errorf("Repository(%q, ns %q) = %q, want %q", tc.name, tc.ns, got, tc.want)
		}
	}
	img := upstreamtest.NewImage(t, "linux/amd64", 100)
	r.up.Image(t, "library/alpine", "3", img)
	r.get("/v2/library/alpine/manifests/3?ns=up.test", img.Manifest)
	r.get("/v2/library/alpine/blobs/"+upstreamtest.Digest(img.Config)+"?ns=up.test", img.Config)
	r.get("/v2/"+prefix+"/library/alpine/manifests/"+img.Digest, img.Manifest)
}

// r0URL is the first upstream's URL (a second prefix on the same
// upstream, for mapping tests).
func r0URL(c *config.Proxy) string { return c.Upstreams[0].URL }

// Cached repositories refuse pushes and deletes unless the config allows
// them; local repositories take them as always.
func TestCachedRepositoriesReadOnly(t *testing.T) {
	r := newRig(t, upstreamtest.Options{}, nil)
	img := upstreamtest.NewImage(t, "linux/amd64", 100)
	r.up.Image(t, "app", "v1", img)
	r.get("/v2/"+prefix+"/app/manifests/v1", img.Manifest)
	repo := "/v2/" + prefix + "/app"
	for _, tc := range []struct{ method, path string }{
		{"POST", repo + "/blobs/uploads/"},
		{"PUT", repo + "/manifests/v2"},
		{"DELETE", repo + "/manifests/v1"},
		{"DELETE", repo + "/manifests/" + img.Digest},
		{"DELETE", repo + "/blobs/" + upstreamtest.Digest(img.Config)},
		{"PATCH", repo + "/blobs/uploads/00000000-0000-4000-8000-000000000000"},
		{"POST", "/v2/app/blobs/uploads/?ns=up.test"},
	} {
		res := r.do(tc.method, tc.path, []byte("{}"), map[string]string{"Content-Type": img.MediaType})
		r.expectError(res, http.StatusForbidden, "DENIED")
		if !strings.Contains(string(res.body), "read-only pull-through cache") {
			t.Errorf("%s %s: refusal does not say why: %s", tc.method, tc.path, res.body)
		}
	}
	r.get("/v2/"+prefix+"/app/manifests/v1", img.Manifest) // nothing changed

	// A local repository takes a push; a blob mounts from the cache into it.
	r.get(repo+"/blobs/"+upstreamtest.Digest(img.Config), img.Config)
	waitFor(t, "the config to be stored", func() bool {
		_, err := r.reg.StatBlob(t.Context(), prefix+"/app", mustDigest(t, upstreamtest.Digest(img.Config)))
		return err == nil
	})
	local := r.do("POST", "/v2/mine/app/blobs/uploads/?mount="+upstreamtest.Digest(img.Config)+"&from="+prefix+"/app", nil, nil)
	if local.status != http.StatusCreated {
		t.Fatalf("mount from the cache into a local repository: %d %s", local.status, local.body)
	}
	if n := len(r.front.Requests(func(q upstreamtest.Request) bool { return q.Repo == "mine/app" })); n != 0 {
		t.Errorf("a local repository caused %d upstream requests", n)
	}

	w := newRig(t, upstreamtest.Options{}, func(c *config.Proxy) { c.Upstreams[0].Push = true })
	if res := w.do("POST", repo+"/blobs/uploads/", nil, nil); res.status != http.StatusAccepted {
		t.Errorf("push: true, upload to a cached repository: %d %s", res.status, res.body)
	}
}

// An upstream that wants credentials gets them at its token service; a
// token is reused for its scope instead of asked for per request.
func TestBearerTokenFlow(t *testing.T) {
	users := map[string]string{"robot": "s3cret"}
	r := newRig(t, upstreamtest.Options{Users: users, PrivatePrefix: "private/"}, func(c *config.Proxy) {
		c.Upstreams[0].Username, c.Upstreams[0].Password = "robot", "s3cret"
	})
	img := upstreamtest.NewImage(t, "linux/amd64", 100, 200)
	r.up.Image(t, "private/app", "v1", img)
	r.up.Image(t, "public/app", "v1", img)
	r.get("/v2/"+prefix+"/private/app/manifests/v1", img.Manifest)
	r.pullImage(prefix+"/private/app", img)
	if n := r.front.Count("token", ""); n != 1 {
		t.Errorf("%d token requests for one repository, want 1", n)
	}
	if n := len(r.front.Requests(func(q upstreamtest.Request) bool { return q.Status == http.StatusUnauthorized })); n != 1 {
		t.Errorf("%d upstream 401s, want 1 (the first challenge; later scopes get a token first)", n)
	}
	r.get("/v2/"+prefix+"/public/app/manifests/v1", img.Manifest)
	if n := len(r.front.Requests(func(q upstreamtest.Request) bool { return q.Status == http.StatusUnauthorized })); n != 1 {
		t.Errorf("a second repository drew a 401 (%d in all): its token should be fetched before asking", n)
	}

	anon := newRig(t, upstreamtest.Options{Users: users, PrivatePrefix: "private/"}, nil)
	anon.up.Image(t, "private/app", "v1", img)
	res := anon.do("GET", "/v2/"+prefix+"/private/app/manifests/v1", nil, nil)
	anon.expectError(res, http.StatusNotFound, "MANIFEST_UNKNOWN")
	if !strings.Contains(string(res.body), "refused access") {
		t.Errorf("refusal without credentials does not say the upstream refused: %s", res.body)
	}
}
