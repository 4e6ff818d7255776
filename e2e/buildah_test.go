//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// buildah talks plain HTTP to the loopback registry with --tls-verify=false.

// buildahImageFromScratch builds a one-layer image from scratch holding
// path with data, with `buildah from scratch`, `copy` and `config`, and
// returns the working container.
func buildahImageFromScratch(s *session, path string, data []byte) string {
	s.t.Helper()
	s.writeFile("ctx/payload", data)
	ctr := firstLine(s.buildah("from", "scratch"))
	s.buildah("copy", ctr, "ctx/payload", path)
	s.buildah("config", "--created-by", "octoserve e2e", "--label", "org.octoserve.e2e=buildah", ctr)
	return ctr
}

// TestBuildahScratchPushPull builds an image from scratch holding one file,
// commits it in OCI and in Docker format, pushes both, removes everything
// locally, pulls both back and finds the file and the digests it pushed.
func TestBuildahScratchPushPull(t *testing.T) {
	s := newSession(t)
	s.useContainersStorage()
	repo := repoName("buildah")
	marker := []byte("built by buildah " + randomHex(16) + "\n")
	ctr := buildahImageFromScratch(s, "/etc/octoserve/hello.txt", marker)

	formats := []struct {
		format, tag, mediaType, configType string
	}{
		{"oci", "oci", mtOCIManifest, mtOCIConfig},
		{"docker", "docker", mtDockerManifest, mtDockerConfig},
	}
	pushed := map[string]string{} // tag -> digest
	for _, f := range formats {
		local := "localhost/e2e-buildah-" + f.format
		s.buildah("commit", "--format", f.format, ctr, local)
		s.buildah("push", "--tls-verify=false", "--digestfile", "digest-"+f.tag, local, "docker://"+ref(repo, ":"+f.tag))
		pushed[f.tag] = strings.TrimSpace(string(s.readFile("digest-" + f.tag)))
		m, ct := s.servedManifest(repo, f.tag, pushed[f.tag])
		if ct != f.mediaType || m.MediaType != f.mediaType || m.Config.MediaType != f.configType || len(m.Layers) != 1 {
			t.Errorf("%s commit served as Content-Type %q, mediaType %q, config %q, %d layers; want %q, %q, 1 layer",
				f.format, ct, m.MediaType, m.Config.MediaType, len(m.Layers), f.mediaType, f.configType)
		}
	}
	if pushed["oci"] == pushed["docker"] {
		t.Errorf("OCI and Docker commits pushed with the same digest %s", pushed["oci"])
	}

	// Nothing left locally: the pulls below must come from the registry.
	s.buildah("rm", "--all")
	s.buildah("rmi", "--all", "--force")
	if left := strings.TrimSpace(s.buildah("images", "--all", "--quiet")); left != "" {
		t.Fatalf("buildah images after rmi --all: %q", left)
	}

	for _, f := range formats {
		image := ref(repo, ":"+f.tag)
		s.buildah("pull", "--tls-verify=false", image)
		var info struct {
			FromImageDigest string
			Manifest        string
		}
		decodeJSON(t, s.buildah("inspect", "--type", "image", image), &info)
		if info.FromImageDigest != pushed[f.tag] || sha256Digest([]byte(info.Manifest)) != pushed[f.tag] {
			t.Errorf("%s pulled back: digest %s, manifest hashing to %s; pushed %s", image, info.FromImageDigest, sha256Digest([]byte(info.Manifest)), pushed[f.tag])
		}
		if got := s.mountedFile("buildah", image, "/etc/octoserve/hello.txt"); !bytes.Equal(got, marker) {
			t.Errorf("%s pulled back: /etc/octoserve/hello.txt = %q, want %q", image, got, marker)
		}
	}
	// And by digest.
	byDigest := ref(repo, "@"+pushed["oci"])
	s.buildah("rmi", "--all", "--force")
	s.buildah("pull", "--tls-verify=false", byDigest)
	if got := s.mountedFile("buildah", byDigest, "/etc/octoserve/hello.txt"); !bytes.Equal(got, marker) {
		t.Errorf("%s: /etc/octoserve/hello.txt = %q, want %q", byDigest, got, marker)
	}
}

// TestBuildahCacheToFrom builds with --layers --cache-to the registry, wipes
// the local storage, and builds again with --cache-from: the second build
// must pull its layers from the registry's cache and produce the same image.
func TestBuildahCacheToFrom(t *testing.T) {
	s := newSession(t)
	s.useContainersStorage()
	cache := repoName("buildah-cache")
	s.writeFile("ctx/data.txt", []byte("cached layer "+randomHex(16)+"\n"))
	s.writeFile("ctx/Containerfile", []byte("FROM scratch\nCOPY data.txt /data.txt\nLABEL org.octoserve.e2e=cache\n"))

	build := func(cacheFlag, iidFile string) string {
		res := s.exec(nil, "buildah", "build", "--layers", "--tls-verify=false", cacheFlag, ref(cache, ""),
			"--iidfile", iidFile, "-t", "localhost/e2e-cache", "ctx")
		if res.Err != nil {
			t.Fatalf("buildah build %s: %v\n%s", cacheFlag, res.Err, tail(res.Combined(), 30))
		}
		return res.Combined()
	}
	first := build("--cache-to", "iid1")
	if n := strings.Count(first, "Pushing cache"); n != 2 {
		t.Errorf("first build pushed %d cache images, want 2 (COPY and LABEL):\n%s", n, tail(first, 20))
	}
	var tags struct {
		Tags []string `json:"tags"`
	}
	r := s.http("GET", "/v2/"+cache+"/tags/list", nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("tags of the cache repository: status %d", r.Status)
	}
	if err := json.Unmarshal(r.Body, &tags); err != nil || len(tags.Tags) != 2 {
		t.Fatalf("cache repository tags %s (%v), want 2 cache keys", r.Body, err)
	}

	s.buildah("rmi", "--all", "--force")
	if left := strings.TrimSpace(s.buildah("images", "--all", "--quiet")); left != "" {
		t.Fatalf("buildah images after rmi --all: %q", left)
	}
	second := build("--cache-from", "iid2")
	if n := strings.Count(second, "Cache pulled from remote"); n != 2 {
		t.Errorf("second build pulled %d cache images from the registry, want 2:\n%s", n, tail(second, 20))
	}
	if strings.Contains(second, "Pushing cache") {
		t.Errorf("second build pushed cache without --cache-to")
	}
	// The image ID is the config's digest, which holds the creation time:
	// only a build that reused the cached layers gets the same one.
	if id1, id2 := strings.TrimSpace(string(s.readFile("iid1"))), strings.TrimSpace(string(s.readFile("iid2"))); id1 != id2 {
		t.Errorf("second build produced image %s, the first %s: the cache was not used", id2, id1)
	}
}

// TestBuildahAuth logs in to an octoserve with basic auth on, pushes to a
// repository it may push to, is refused one it may only pull from, and
// pulls its image back.
func TestBuildahAuth(t *testing.T) {
	s := newSession(t)
	s.useContainersStorage()
	ar := startAuthRegistry(s)
	marker := []byte("buildah with auth " + randomHex(8) + "\n")
	ctr := buildahImageFromScratch(s, "/auth.txt", marker)
	s.buildah("commit", ctr, "localhost/e2e-auth")

	out := s.fail("buildah", "login", "--tls-verify=false", "-u", ar.User, "-p", ar.WrongPassword, ar.Addr)
	if !strings.Contains(strings.ToLower(out), "unauthorized") && !strings.Contains(strings.ToLower(out), "invalid username/password") {
		t.Errorf("login with a wrong password failed, but not as unauthorized:\n%s", tail(out, 10))
	}
	s.mustIn(strings.NewReader(ar.Password), "buildah", "login", "--tls-verify=false", "-u", ar.User, "--password-stdin", ar.Addr)

	ok, ro := ar.OK("buildah"), ar.RO("buildah")
	s.buildah("push", "--tls-verify=false", "--digestfile", "digest", "localhost/e2e-auth", "docker://"+ar.Ref(ok, ":v1"))
	out = s.fail("buildah", "push", "--tls-verify=false", "localhost/e2e-auth", "docker://"+ar.Ref(ro, ":v1"))
	assertDenied(s, "buildah push to a pull-only repository", out)
	ar.assertNoTag(s, ro, "v1")

	s.buildah("rmi", "--all", "--force")
	s.buildah("pull", "--tls-verify=false", ar.Ref(ok, ":v1"))
	if got := s.mountedFile("buildah", ar.Ref(ok, ":v1"), "/auth.txt"); !bytes.Equal(got, marker) {
		t.Errorf("pulled back /auth.txt = %q, want %q", got, marker)
	}
	s.buildah("logout", ar.Addr)
}
