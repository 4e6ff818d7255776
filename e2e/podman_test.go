//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// podman talks plain HTTP to the loopback registry with --tls-verify=false.

// podmanBuild builds context dir ctx (a Containerfile FROM scratch copying
// files, one layer each) as image for platform ("" for the default).
func podmanBuild(s *session, ctx, image, platform string, files ...tarFile) {
	s.t.Helper()
	containerfile := "FROM scratch\n"
	for i, f := range files {
		name := filepath.Join(ctx, "f"+string(rune('0'+i)))
		s.writeFile(name, f.Data)
		containerfile += "COPY " + filepath.Base(name) + " /" + f.Name + "\n"
	}
	s.writeFile(filepath.Join(ctx, "Containerfile"), []byte(containerfile))
	args := []string{"build", "--format", "oci", "-t", image}
	if platform != "" {
		args = append(args, "--platform", platform)
	}
	s.podman(append(args, ctx)...)
}

// podmanImageDigest is the manifest digest podman records for a pulled image.
func podmanImageDigest(s *session, image string) string {
	s.t.Helper()
	return firstLine(s.podman("image", "inspect", "--format", "{{.Digest}}", image))
}

// TestPodmanMultiLayerPushPull builds a three-layer image, pushes it, and
// pulls it back by tag and by digest into an emptied storage.
func TestPodmanMultiLayerPushPull(t *testing.T) {
	s := newSession(t)
	s.useContainersStorage()
	repo := repoName("podman")
	files := []tarFile{
		{Name: "etc/one.txt", Data: []byte("layer one " + randomHex(8) + "\n")},
		{Name: "usr/share/two.bin", Data: randomBytes(16 << 10)},
		{Name: "opt/three.txt", Data: []byte("layer three " + randomHex(8) + "\n")},
	}
	podmanBuild(s, "ctx", "localhost/e2e-multi", "", files...)
	s.podman("push", "--tls-verify=false", "--digestfile", "digest", "localhost/e2e-multi", ref(repo, ":v1"))
	dgst := strings.TrimSpace(string(s.readFile("digest")))
	m, ct := s.servedManifest(repo, "v1", dgst)
	if ct != mtOCIManifest || len(m.Layers) != len(files) {
		t.Fatalf("pushed manifest: Content-Type %q with %d layers, want %q with %d", ct, len(m.Layers), mtOCIManifest, len(files))
	}
	for _, l := range m.Layers {
		if b := s.http("GET", "/v2/"+repo+"/blobs/"+l.Digest, nil, nil).Body; sha256Digest(b) != l.Digest || int64(len(b)) != l.Size {
			t.Errorf("layer %s served as %d bytes hashing to %s", l.Digest, len(b), sha256Digest(b))
		}
	}

	for _, image := range []string{ref(repo, ":v1"), ref(repo, "@"+dgst)} {
		s.podman("rmi", "--all", "--force")
		if left := strings.TrimSpace(s.podman("images", "--all", "--quiet")); left != "" {
			t.Fatalf("podman images after rmi --all: %q", left)
		}
		s.podman("pull", "--tls-verify=false", image)
		if got := podmanImageDigest(s, image); got != dgst {
			t.Errorf("%s pulled back with digest %s, pushed %s", image, got, dgst)
		}
		for _, f := range files {
			if got := s.mountedFile("podman", image, f.Name); !bytes.Equal(got, f.Data) {
				t.Errorf("%s pulled back: /%s differs from the file built in (%d bytes, want %d)", image, f.Name, len(got), len(f.Data))
			}
		}
	}
}

// TestPodmanManifestList builds a linux/amd64 and a linux/arm64 image, joins
// them with `podman manifest create/add`, pushes the list with its images
// (`manifest push --all`), and pulls the arm64 image alone from it.
func TestPodmanManifestList(t *testing.T) {
	s := newSession(t)
	s.useContainersStorage()
	repo := repoName("podman-list")
	platforms := []string{"linux/amd64", "linux/arm64"}
	marker := map[string][]byte{}
	s.podman("manifest", "create", "localhost/e2e-list")
	for _, p := range platforms {
		arch := strings.TrimPrefix(p, "linux/")
		marker[arch] = []byte(p + " " + randomHex(8) + "\n")
		image := "localhost/e2e-" + arch
		podmanBuild(s, "ctx-"+arch, image, p, tarFile{Name: "platform.txt", Data: marker[arch]})
		if got := firstLine(s.podman("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", image)); got != p {
			t.Fatalf("podman build --platform %s made an image for %s", p, got)
		}
		s.podman("manifest", "add", "localhost/e2e-list", "containers-storage:"+image)
	}
	s.podman("manifest", "push", "--all", "--tls-verify=false", "--digestfile", "digest", "localhost/e2e-list", "docker://"+ref(repo, ":v1"))
	dgst := strings.TrimSpace(string(s.readFile("digest")))

	idx, ct := s.servedManifest(repo, "v1", dgst)
	if ct != mtOCIIndex && ct != mtDockerManifestList {
		t.Fatalf("pushed list served as %q, want an OCI index or a Docker manifest list", ct)
	}
	var got []string
	arm64 := ""
	for _, d := range idx.Manifests {
		if d.Platform == nil {
			t.Fatalf("list entry %s has no platform", d.Digest)
		}
		got = append(got, d.Platform.OS+"/"+d.Platform.Architecture)
		// --all pushed every image of the list.
		child, _ := s.servedManifest(repo, d.Digest, d.Digest)
		var cfg imageConfig
		decodeJSON(t, string(s.http("GET", "/v2/"+repo+"/blobs/"+child.Config.Digest, nil, nil).Body), &cfg)
		if cfg.OS != d.Platform.OS || cfg.Architecture != d.Platform.Architecture {
			t.Errorf("list entry for %s/%s has a config for %s/%s", d.Platform.OS, d.Platform.Architecture, cfg.OS, cfg.Architecture)
		}
		if d.Platform.Architecture == "arm64" {
			arm64 = d.Digest
		}
	}
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(platforms, " ") {
		t.Fatalf("pushed list has platforms %v, want %v", got, platforms)
	}

	s.podman("rmi", "--all", "--force")
	image := ref(repo, ":v1")
	s.podman("pull", "--tls-verify=false", "--platform", "linux/arm64", image)
	if got := firstLine(s.podman("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", image)); got != "linux/arm64" {
		t.Errorf("podman pull --platform linux/arm64 got an image for %s", got)
	}
	if got := s.mountedFile("podman", image, "platform.txt"); !bytes.Equal(got, marker["arm64"]) {
		t.Errorf("pulled linux/arm64 image holds platform.txt %q, want %q", got, marker["arm64"])
	}
	// podman records the digest it pulled by (the list's) and, among the
	// image's repository digests, the instance it chose.
	var inspect []struct {
		Digest      string
		RepoDigests []string
	}
	decodeJSON(t, s.podman("image", "inspect", image), &inspect)
	if len(inspect) != 1 || inspect[0].Digest != dgst || !contains(inspect[0].RepoDigests, ref(repo, "@"+arm64)) {
		t.Errorf("pulled image: %+v; want digest %s (the list) and a repository digest naming the arm64 manifest %s", inspect, dgst, arm64)
	}
}

// TestPodmanSearchListTags finds the repositories it pushed with `podman
// search` (the catalog) and their tags with `podman search --list-tags`.
func TestPodmanSearchListTags(t *testing.T) {
	s := newSession(t)
	s.useContainersStorage()
	term := "podsearch-" + runID
	repos := []string{"e2e/" + term + "-a", "e2e/" + term + "-b"}
	podmanBuild(s, "ctx", "localhost/e2e-search", "", tarFile{Name: "s.txt", Data: []byte(randomHex(8))})
	tags := []string{"1.0", "1.1", "latest"}
	for _, tag := range tags {
		s.podman("push", "--tls-verify=false", "localhost/e2e-search", ref(repos[0], ":"+tag))
	}
	s.podman("push", "--tls-verify=false", "localhost/e2e-search", ref(repos[1], ":v1"))

	var found []struct{ Name string }
	decodeJSON(t, s.podman("search", "--tls-verify=false", "--format", "json", registryAddr+"/"+term), &found)
	var names []string
	for _, f := range found {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	want := []string{registryAddr + "/" + repos[0], registryAddr + "/" + repos[1]}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("podman search %s found %v, want %v", term, names, want)
	}

	out := s.podman("search", "--tls-verify=false", "--list-tags", "--format", "json", ref(repos[0], ""))
	var listed []struct {
		Name string
		Tags []string
	}
	decodeJSON(t, out, &listed)
	if len(listed) != 1 || listed[0].Name != ref(repos[0], "") {
		t.Fatalf("podman search --list-tags: %s", out)
	}
	sort.Strings(listed[0].Tags)
	if strings.Join(listed[0].Tags, " ") != strings.Join(tags, " ") {
		t.Errorf("podman search --list-tags listed %v, want %v", listed[0].Tags, tags)
	}
}

// TestPodmanAuth logs in to an octoserve with basic auth on, pushes to a
// repository it may push to, is refused one it may only pull from, and
// pulls its image back.
func TestPodmanAuth(t *testing.T) {
	s := newSession(t)
	s.useContainersStorage()
	ar := startAuthRegistry(s)
	marker := []byte("podman with auth " + randomHex(8) + "\n")
	podmanBuild(s, "ctx", "localhost/e2e-auth", "", tarFile{Name: "auth.txt", Data: marker})

	out := s.fail("podman", "login", "--tls-verify=false", "-u", ar.User, "-p", ar.WrongPassword, ar.Addr)
	if !strings.Contains(strings.ToLower(out), "invalid username/password") && !strings.Contains(strings.ToLower(out), "unauthorized") {
		t.Errorf("login with a wrong password failed, but not as unauthorized:\n%s", tail(out, 10))
	}
	s.mustIn(strings.NewReader(ar.Password), "podman", "login", "--tls-verify=false", "-u", ar.User, "--password-stdin", ar.Addr)
	var authFile struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	decodeJSON(t, string(s.readFile(".home/auth.json")), &authFile)
	if _, ok := authFile.Auths[ar.Addr]; !ok {
		t.Errorf("podman login did not store credentials for %s in the session's auth file", ar.Addr)
	}

	ok, ro := ar.OK("podman"), ar.RO("podman")
	s.podman("push", "--tls-verify=false", "localhost/e2e-auth", ar.Ref(ok, ":v1"))
	out = s.fail("podman", "push", "--tls-verify=false", "localhost/e2e-auth", ar.Ref(ro, ":v1"))
	assertDenied(s, "podman push to a pull-only repository", out)
	ar.assertNoTag(s, ro, "v1")

	s.podman("rmi", "--all", "--force")
	s.podman("pull", "--tls-verify=false", ar.Ref(ok, ":v1"))
	if got := s.mountedFile("podman", ar.Ref(ok, ":v1"), "auth.txt"); !bytes.Equal(got, marker) {
		t.Errorf("pulled back auth.txt = %q, want %q", got, marker)
	}
	s.podman("logout", ar.Addr)
}
