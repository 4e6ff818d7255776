//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// containerd's ctr talks plain HTTP to the loopback registry with
// --plain-http, to a containerd the test starts (startContainerd).

func (s *session) ctr(args ...string) string {
	s.t.Helper()
	return s.must("ctr", args...)
}

// localImage is an OCI image or index made by the test, to import into
// containerd with `ctr images import`.
type localImage struct {
	Manifest  []byte
	MediaType string
	Digest    string
	Blobs     map[string][]byte // digest -> bytes: config and layer
	Children  []localImage      // of an index
}

// all is the image's manifest and blobs, and its children's: everything an
// archive or a registry must hold for it (digest -> bytes).
func (img localImage) all() map[string][]byte {
	out := map[string][]byte{img.Digest: img.Manifest}
	for d, b := range img.Blobs {
		out[d] = b
	}
	for _, c := range img.Children {
		for d, b := range c.all() {
			out[d] = b
		}
	}
	return out
}

// makeImage builds a one-layer OCI image for plat whose layer holds
// etc/platform.
func makeImage(t *testing.T, plat platform) localImage {
	t.Helper()
	layerTar := makeLayerTar(t, tarFile{Name: "etc/platform", Data: []byte(plat.OS + "/" + plat.Architecture + " " + randomHex(8) + "\n")})
	layer := gzipBytes(t, layerTar)
	config, err := json.Marshal(map[string]any{
		"architecture": plat.Architecture, "os": plat.OS, "variant": plat.Variant,
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{sha256Digest(layerTar)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	man := imageManifest(t, config, layer)
	return localImage{
		Manifest: man, MediaType: mtOCIManifest, Digest: sha256Digest(man),
		Blobs: map[string][]byte{sha256Digest(config): config, sha256Digest(layer): layer},
	}
}

// makeIndex joins images, one per platform, in an OCI index.
func makeIndex(t *testing.T, plats []platform, images []localImage) localImage {
	t.Helper()
	var descs []descriptor
	for i, img := range images {
		p := plats[i]
		descs = append(descs, descriptor{MediaType: img.MediaType, Digest: img.Digest, Size: int64(len(img.Manifest)), Platform: &p})
	}
	man, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex, "manifests": descs})
	if err != nil {
		t.Fatal(err)
	}
	return localImage{Manifest: man, MediaType: mtOCIIndex, Digest: sha256Digest(man), Children: images}
}

// importImages writes images as an OCI archive, each named by its key
// (io.containerd.image.name), and imports it with `ctr images import`.
func importImages(s *session, images map[string]localImage) {
	s.t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			s.t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			s.t.Fatal(err)
		}
	}
	written := map[string]bool{}
	var entries []descriptor
	for name, img := range images {
		for d, b := range img.all() {
			if !written[d] {
				written[d] = true
				add("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), b)
			}
		}
		entries = append(entries, descriptor{MediaType: img.MediaType, Digest: img.Digest, Size: int64(len(img.Manifest)),
			Annotations: map[string]string{"io.containerd.image.name": name}})
	}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex, "manifests": entries})
	if err != nil {
		s.t.Fatal(err)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", index)
	if err := tw.Close(); err != nil {
		s.t.Fatal(err)
	}
	s.writeFile("import.tar", buf.Bytes())
	s.ctr("images", "import", "--all-platforms", "import.tar")
}

// ctrImageDigest is the digest containerd records for image.
func ctrImageDigest(s *session, image string) string {
	s.t.Helper()
	for _, l := range lines(s.ctr("images", "ls")) {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == image {
			return f[2]
		}
	}
	s.t.Fatalf("ctr images ls does not list %s", image)
	return ""
}

// ctrContent lists the digests in containerd's content store.
func ctrContent(s *session) map[string]bool {
	s.t.Helper()
	out := map[string]bool{}
	for _, d := range lines(s.ctr("content", "ls", "--quiet")) {
		out[d] = true
	}
	return out
}

// checkServed checks that the registry serves img's manifest, its blobs
// and its children's in repo, byte for byte.
func checkServed(s *session, repo string, img localImage) {
	s.t.Helper()
	s.servedManifest(repo, img.Digest, img.Digest)
	for d, b := range img.Blobs {
		r := s.http("GET", "/v2/"+repo+"/blobs/"+d, nil, nil)
		if r.Status != http.StatusOK || !bytes.Equal(r.Body, b) {
			s.t.Errorf("GET blob %s in %s: status %d, %d bytes, want 200 with the %d bytes pushed", d, repo, r.Status, len(r.Body), len(b))
		}
	}
	for _, c := range img.Children {
		checkServed(s, repo, c)
	}
}

// TestCtrPullImageAndIndex pulls an image, then a two-platform index with
// --all-platforms and, into an emptied content store, with one --platform.
func TestCtrPullImageAndIndex(t *testing.T) {
	s := newSession(t)
	startContainerd(s)
	repo := repoName("ctr-pull")
	marker := []byte("pulled by ctr " + randomHex(8) + "\n")
	img := craneAppend(s, repo, "v1", tarFile{Name: "etc/ctr.txt", Data: marker})

	s.ctr("images", "pull", "--plain-http", ref(repo, ":v1"))
	if got := ctrImageDigest(s, ref(repo, ":v1")); got != img.Digest {
		t.Errorf("ctr pulled %s, the registry holds %s", got, img.Digest)
	}
	if got := s.ctr("content", "get", img.Digest); got != string(img.Raw) {
		t.Errorf("manifest in containerd's store differs from the one served")
	}
	layer := []byte(s.ctr("content", "get", img.Manifest.Layers[0].Digest))
	if got := tarFiles(t, gunzipBytes(t, layer))["etc/ctr.txt"]; !bytes.Equal(got, marker) {
		t.Errorf("pulled layer holds etc/ctr.txt %q, want %q", got, marker)
	}

	mp := buildMultiPlatform(s, repoName("ctr-index"))
	multi := ref(mp.Repo, ":multi")
	s.ctr("images", "pull", "--plain-http", "--all-platforms", multi)
	if got := ctrImageDigest(s, multi); got != mp.Digest {
		t.Errorf("ctr pulled index %s, the registry holds %s", got, mp.Digest)
	}
	content := ctrContent(s)
	for d, m := range mp.Children {
		for _, want := range []string{d, m.Config.Digest, m.Layers[0].Digest} {
			if !content[want] {
				t.Errorf("--all-platforms: %s (of child %s) is not in containerd's content store", want, d)
			}
		}
	}

	// One platform, into an empty store: only that platform's content.
	s.ctr("images", "rm", "--sync", multi, ref(repo, ":v1"))
	if left := ctrContent(s); len(left) != 0 {
		t.Fatalf("content left after ctr images rm --sync: %v", left)
	}
	s.ctr("images", "pull", "--plain-http", "--platform", "linux/arm64", multi)
	content = ctrContent(s)
	for _, d := range s.parseManifest(mp.Raw).Manifests {
		layer := mp.Children[d.Digest].Layers[0].Digest
		wantIn := d.Platform.Architecture == "arm64"
		if content[d.Digest] != wantIn || content[layer] != wantIn {
			t.Errorf("--platform linux/arm64: %s/%s image in the store: manifest %v, layer %v; want %v",
				d.Platform.OS, d.Platform.Architecture, content[d.Digest], content[layer], wantIn)
		}
	}
	if !content[mp.Digest] {
		t.Errorf("--platform linux/arm64: the index %s is not in the store", mp.Digest)
	}
}

// TestCtrPushImageAndIndex imports an image and a two-platform index made
// by the test into containerd and pushes both with `ctr images push`.
func TestCtrPushImageAndIndex(t *testing.T) {
	s := newSession(t)
	startContainerd(s)
	plats := []platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}}
	single := makeImage(t, plats[0])
	index := makeIndex(t, plats, []localImage{makeImage(t, plats[0]), makeImage(t, plats[1])})
	importImages(s, map[string]localImage{"example.test/single:v1": single, "example.test/multi:v1": index})

	repo := repoName("ctr-push")
	s.ctr("images", "push", "--plain-http", ref(repo, ":single"), "example.test/single:v1")
	checkServed(s, repo, single)
	s.servedManifest(repo, "single", single.Digest)

	s.ctr("images", "push", "--plain-http", ref(repo, ":multi"), "example.test/multi:v1")
	checkServed(s, repo, index)
	s.servedManifest(repo, "multi", index.Digest)
}

// TestCtrPushCrossRepoMount pulls an image from one repository and pushes
// it to another of the same registry: containerd asks to mount each blob
// from the repository it came from, and the registry must mount them (201)
// so nothing is uploaded. ctr's --http-dump shows every request it made.
func TestCtrPushCrossRepoMount(t *testing.T) {
	s := newSession(t)
	startContainerd(s)
	src, dst := repoName("ctr-mount-src"), repoName("ctr-mount-dst")
	img := craneAppend(s, src, "v1", tarFile{Name: "data/blob.bin", Data: randomBytes(256 << 10)})
	blobs := []string{img.Manifest.Config.Digest, img.Manifest.Layers[0].Digest}
	for _, d := range blobs {
		if r := s.http("HEAD", "/v2/"+dst+"/blobs/"+d, nil, nil); r.Status != http.StatusNotFound {
			t.Fatalf("HEAD %s in %s before the push: status %d, want 404", d, dst, r.Status)
		}
	}
	s.ctr("images", "pull", "--plain-http", ref(src, ":v1"))
	res := s.exec(nil, "ctr", "images", "push", "--plain-http", "--http-dump", ref(dst, ":v1"), ref(src, ":v1"))
	if res.Err != nil {
		t.Fatalf("ctr images push: %v\n%s", res.Err, tail(res.Combined(), 40))
	}
	dump := res.Combined()
	for _, d := range blobs {
		mountReq := "POST /v2/" + dst + "/blobs/uploads/?mount=" + d + "&from=" + src + " "
		if !strings.Contains(dump, mountReq) {
			t.Errorf("ctr did not ask to mount %s from %s", d, src)
		}
		// Location of a 201 mount is the blob itself; of a 202, an upload session.
		if !strings.Contains(dump, "Location: /v2/"+dst+"/blobs/"+d) {
			t.Errorf("the registry did not answer the mount of %s with 201 and the blob's location", d)
		}
	}
	if uploads := regexp.MustCompile(`(PATCH|PUT) /v2/`+regexp.QuoteMeta(dst)+`/blobs/uploads/`).FindAllString(dump, -1); len(uploads) != 0 {
		t.Errorf("ctr uploaded blobs instead of mounting them: %v", uploads)
	}
	s.servedManifest(dst, "v1", img.Digest)
	for _, d := range blobs {
		if r := s.http("GET", "/v2/"+dst+"/blobs/"+d, nil, nil); r.Status != http.StatusOK || sha256Digest(r.Body) != d {
			t.Errorf("GET %s in %s after the push: status %d, body hashing to %s", d, dst, r.Status, sha256Digest(r.Body))
		}
	}
}

// TestCtrAuth pushes with credentials (ctr has no login: --user) to an
// octoserve with basic auth on: accepted where the user may push, refused
// where it may only pull, and without credentials; then pulls back.
func TestCtrAuth(t *testing.T) {
	s := newSession(t)
	startContainerd(s)
	ar := startAuthRegistry(s)
	img := makeImage(t, platform{OS: "linux", Architecture: "amd64"})
	importImages(s, map[string]localImage{"example.test/auth:v1": img})
	creds := ar.User + ":" + ar.Password
	ok, ro := ar.OK("ctr"), ar.RO("ctr")

	out := s.fail("ctr", "images", "push", "--plain-http", ar.Ref(ok, ":v1"), "example.test/auth:v1")
	if !strings.Contains(out, "401") {
		t.Errorf("push without credentials failed, but not with 401:\n%s", tail(out, 10))
	}
	out = s.fail("ctr", "images", "push", "--plain-http", "--user", ar.User+":"+ar.WrongPassword, ar.Ref(ok, ":v1"), "example.test/auth:v1")
	if !strings.Contains(out, "401") {
		t.Errorf("push with a wrong password failed, but not with 401:\n%s", tail(out, 10))
	}
	ar.assertNoTag(s, ok, "v1")
	s.ctr("images", "push", "--plain-http", "--user", creds, ar.Ref(ok, ":v1"), "example.test/auth:v1")
	out = s.fail("ctr", "images", "push", "--plain-http", "--user", creds, ar.Ref(ro, ":v1"), "example.test/auth:v1")
	assertDenied(s, "ctr push to a pull-only repository", out)
	ar.assertNoTag(s, ro, "v1")

	s.ctr("images", "rm", "--sync", "example.test/auth:v1")
	s.ctr("images", "pull", "--plain-http", "--user", creds, ar.Ref(ok, ":v1"))
	if got := ctrImageDigest(s, ar.Ref(ok, ":v1")); got != img.Digest {
		t.Errorf("pulled back %s, pushed %s", got, img.Digest)
	}
}
