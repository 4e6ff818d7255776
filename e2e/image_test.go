//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// pushedImage is an image pushed with `crane append`.
type pushedImage struct {
	Repo     string
	Digest   string // manifest digest
	Manifest manifest
	Raw      []byte // manifest bytes as served
	LayerTar []byte // the uncompressed layer
}

// craneAppend builds a one-layer OCI image from a tarball of files and
// pushes it to repo:tag with `crane append -f layer.tar`.
func craneAppend(s *session, repo, tag string, files ...tarFile) pushedImage {
	s.t.Helper()
	layer := makeLayerTar(s.t, files...)
	tarPath := s.writeFile(strings.ReplaceAll(repo, "/", "_")+"-"+tag+".tar", layer)
	out := s.crane("append", "--oci-empty-base", "-f", tarPath, "-t", ref(repo, ":"+tag))
	dgst := digestOf(s.t, out)
	raw := []byte(s.crane("manifest", ref(repo, "@"+dgst)))
	if got := sha256Digest(raw); got != dgst {
		s.t.Fatalf("crane append printed digest %s, but the manifest the registry serves hashes to %s", dgst, got)
	}
	return pushedImage{Repo: repo, Digest: dgst, Manifest: s.parseManifest(raw), Raw: raw, LayerTar: layer}
}

// TestCraneAppendManifestExport builds an image from a tarball, pushes it,
// reads its manifest, config and layer back, and exports its filesystem.
func TestCraneAppendManifestExport(t *testing.T) {
	s := newSession(t)
	repo := repoName("append")
	marker := []byte("octoserve e2e marker " + randomHex(16) + "\n")
	payload := randomBytes(300 << 10)
	img := craneAppend(s, repo, "v1",
		tarFile{Name: "etc/octoserve-e2e.txt", Data: marker},
		tarFile{Name: "opt/data/payload.bin", Data: payload},
	)

	// The manifest, as crane reads it back.
	m := img.Manifest
	if m.SchemaVersion != 2 || m.MediaType != mtOCIManifest {
		t.Errorf("manifest schemaVersion %d mediaType %q, want 2 %q", m.SchemaVersion, m.MediaType, mtOCIManifest)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("manifest has %d layers, want 1", len(m.Layers))
	}
	if m.Config.MediaType != mtOCIConfig {
		t.Errorf("config mediaType %q, want %q", m.Config.MediaType, mtOCIConfig)
	}
	if got := firstLine(s.crane("digest", ref(repo, ":v1"))); got != img.Digest {
		t.Errorf("crane digest by tag = %s, want %s", got, img.Digest)
	}

	// The server's own headers on the manifest.
	r := s.http("GET", "/v2/"+repo+"/manifests/v1", map[string]string{"Accept": mtOCIManifest}, nil)
	if r.Status != http.StatusOK || !bytes.Equal(r.Body, img.Raw) {
		t.Errorf("GET manifest by tag: status %d, body equal to crane's: %v", r.Status, bytes.Equal(r.Body, img.Raw))
	}
	if got := r.Header.Get("Docker-Content-Digest"); got != img.Digest {
		t.Errorf("Docker-Content-Digest %q, want %q", got, img.Digest)
	}
	if got := r.Header.Get("Content-Type"); got != mtOCIManifest {
		t.Errorf("manifest Content-Type %q, want %q", got, mtOCIManifest)
	}

	// The config names the layer's uncompressed digest.
	cfgRaw := []byte(s.crane("config", ref(repo, ":v1")))
	if got := sha256Digest(cfgRaw); got != m.Config.Digest {
		t.Errorf("config hashes to %s, manifest says %s", got, m.Config.Digest)
	}
	var cfg imageConfig
	if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
		t.Fatalf("config is not JSON: %v", err)
	}
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != sha256Digest(img.LayerTar) {
		t.Errorf("config diff_ids %v, want [%s]", cfg.RootFS.DiffIDs, sha256Digest(img.LayerTar))
	}

	// The layer blob: right digest and size, and it unpacks to our tarball.
	blob := []byte(s.crane("blob", ref(repo, "@"+m.Layers[0].Digest)))
	if got := sha256Digest(blob); got != m.Layers[0].Digest || int64(len(blob)) != m.Layers[0].Size {
		t.Fatalf("layer blob: %d bytes hashing to %s, manifest says %d bytes %s", len(blob), got, m.Layers[0].Size, m.Layers[0].Digest)
	}
	if !bytes.Equal(gunzipBytes(t, blob), img.LayerTar) {
		t.Errorf("layer blob does not decompress to the pushed tarball")
	}

	// Export the filesystem and find the files.
	s.crane("export", ref(repo, ":v1"), "fs.tar")
	files := tarFiles(t, s.readFile("fs.tar"))
	if got, ok := files["etc/octoserve-e2e.txt"]; !ok || !bytes.Equal(got, marker) {
		t.Errorf("exported filesystem: etc/octoserve-e2e.txt present=%v content=%q, want %q", ok, got, marker)
	}
	if got := files["opt/data/payload.bin"]; !bytes.Equal(got, payload) {
		t.Errorf("exported filesystem: opt/data/payload.bin is %d bytes, not the %d pushed", len(got), len(payload))
	}
}

// TestCraneCopyCrossRepoMount copies an image to another repository of the
// same registry: crane must mount every blob (POST ...?mount=&from=, 201)
// instead of uploading it, and the copy must have identical digests.
func TestCraneCopyCrossRepoMount(t *testing.T) {
	s := newSession(t)
	src, dst := repoName("mount-src"), repoName("mount-dst")
	img := craneAppend(s, src, "v1", tarFile{Name: "data/blob.bin", Data: randomBytes(2 << 20)})
	blobs := []string{img.Manifest.Config.Digest}
	for _, l := range img.Manifest.Layers {
		blobs = append(blobs, l.Digest)
	}

	// A repository sees only the blobs pushed or mounted into it, so the
	// destination must not see them before the copy: the copy has to mount.
	for _, d := range blobs {
		if r := s.http("HEAD", "/v2/"+dst+"/blobs/"+d, nil, nil); r.Status != http.StatusNotFound {
			t.Fatalf("HEAD %s in %s before the copy: status %d, want 404", d, dst, r.Status)
		}
	}

	res := s.exec(nil, "crane", "copy", "--insecure", ref(src, ":v1"), ref(dst, ":v1"))
	if res.Err != nil {
		t.Fatalf("crane copy: %v\n%s", res.Err, tail(res.Combined(), 40))
	}
	// crane logs "mounted blob: <digest>" when the registry answers a mount
	// with 201, and "pushed blob: <digest>" when it had to upload.
	for _, d := range blobs {
		if !strings.Contains(res.Stderr, "mounted blob: "+d) {
			t.Errorf("crane copy did not mount %s from %s (a failed mount makes crane upload instead)", d, src)
		}
	}
	if strings.Contains(res.Stderr, "pushed blob:") {
		t.Errorf("crane copy uploaded blobs instead of mounting them:\n%s", tail(res.Stderr, 20))
	}

	if got := firstLine(s.crane("digest", ref(dst, ":v1"))); got != img.Digest {
		t.Errorf("digest in %s is %s, want %s (same as %s)", dst, got, img.Digest, src)
	}
	if raw := []byte(s.crane("manifest", ref(dst, ":v1"))); !bytes.Equal(raw, img.Raw) {
		t.Errorf("manifest in %s differs from the one in %s", dst, src)
	}
	for _, d := range blobs {
		b := []byte(s.crane("blob", ref(dst, "@"+d)))
		if got := sha256Digest(b); got != d {
			t.Errorf("blob %s read from %s hashes to %s", d, dst, got)
		}
	}
	s.crane("export", ref(dst, ":v1"), "fs.tar")
	if got := tarFiles(t, s.readFile("fs.tar"))["data/blob.bin"]; !bytes.Equal(got, tarFiles(t, img.LayerTar)["data/blob.bin"]) {
		t.Errorf("filesystem exported from %s differs from the one pushed to %s", dst, src)
	}

	// The protocol underneath, on a third repository: a mount answers 201
	// Created with the blob's location and digest, and the blob is then
	// readable there.
	third := repoName("mount-raw")
	layer := img.Manifest.Layers[0]
	r := s.http("POST", "/v2/"+third+"/blobs/uploads/?mount="+layer.Digest+"&from="+src, nil, nil)
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /v2/%s/blobs/uploads/?mount=%s&from=%s: status %d, want 201", third, layer.Digest, src, r.Status)
	}
	if got := r.Header.Get("Docker-Content-Digest"); got != layer.Digest {
		t.Errorf("mount answered Docker-Content-Digest %q, want %q", got, layer.Digest)
	}
	if loc := r.Header.Get("Location"); !strings.Contains(loc, "/v2/"+third+"/blobs/"+layer.Digest) {
		t.Errorf("mount answered Location %q, want the blob's URL in %s", loc, third)
	}
	if h := s.http("HEAD", "/v2/"+third+"/blobs/"+layer.Digest, nil, nil); h.Status != http.StatusOK || h.Header.Get("Content-Length") != jsonNumber(layer.Size) {
		t.Errorf("HEAD mounted blob: status %d Content-Length %q, want 200 %d", h.Status, h.Header.Get("Content-Length"), layer.Size)
	}
	// Mounting from a repository that does not hold the blob must not
	// succeed: the registry falls back to an upload session (202) or refuses.
	r = s.http("POST", "/v2/"+third+"-other/blobs/uploads/?mount="+layer.Digest+"&from="+repoName("no-such-repo"), nil, nil)
	if r.Status == http.StatusCreated {
		t.Errorf("mount from a repository without the blob answered 201 Created")
	}
	if r.Status == http.StatusAccepted {
		if loc := r.Header.Get("Location"); loc != "" {
			s.http("DELETE", loc, nil, nil) // cancel the upload session
		}
	}
}

// TestTagListCatalogDelete tags an image, lists tags and the catalog, deletes
// the manifest by digest and checks it is gone.
func TestTagListCatalogDelete(t *testing.T) {
	s := newSession(t)
	repo := repoName("tags")
	img := craneAppend(s, repo, "v1", tarFile{Name: "hello.txt", Data: []byte("hello " + randomHex(8))})
	other := craneAppend(s, repo, "keep", tarFile{Name: "other.txt", Data: []byte("other " + randomHex(8))})

	s.crane("tag", ref(repo, ":v1"), "v2")
	s.crane("tag", ref(repo, "@"+img.Digest), "latest")
	for _, tag := range []string{"v2", "latest"} {
		if got := firstLine(s.crane("digest", ref(repo, ":"+tag))); got != img.Digest {
			t.Errorf("tag %s resolves to %s, want %s", tag, got, img.Digest)
		}
	}

	tags := lines(s.crane("ls", registryAddr+"/"+repo))
	for _, want := range []string{"v1", "v2", "latest", "keep"} {
		if !contains(tags, want) {
			t.Errorf("crane ls %s = %v, missing %s", repo, tags, want)
		}
	}
	if len(tags) != 4 {
		t.Errorf("crane ls %s = %v, want exactly 4 tags", repo, tags)
	}
	// regctl reads the same list through its own client.
	if rtags := lines(s.regctl("tag", "ls", ref(repo, ""))); !equalSets(rtags, tags) {
		t.Errorf("regctl tag ls = %v, crane ls = %v", rtags, tags)
	}

	catalog := lines(s.crane("catalog", registryAddr))
	if !contains(catalog, repo) {
		t.Errorf("crane catalog does not list %s (%d repositories listed)", repo, len(catalog))
	}
	if rcat := lines(s.regctl("repo", "ls", registryAddr)); !contains(rcat, repo) {
		t.Errorf("regctl repo ls does not list %s", repo)
	}

	// Delete by digest.
	s.crane("delete", ref(repo, "@"+img.Digest))
	out := s.fail("crane", "manifest", "--insecure", ref(repo, "@"+img.Digest))
	if !strings.Contains(out, "MANIFEST_UNKNOWN") && !strings.Contains(out, "404") {
		t.Errorf("crane manifest of the deleted digest failed, but not with MANIFEST_UNKNOWN/404:\n%s", tail(out, 10))
	}
	if r := s.http("GET", "/v2/"+repo+"/manifests/"+img.Digest, map[string]string{"Accept": mtOCIManifest}, nil); r.Status != http.StatusNotFound {
		t.Errorf("GET deleted manifest by digest: status %d, want 404", r.Status)
	}
	for _, tag := range []string{"v1", "v2", "latest"} {
		if r := s.http("HEAD", "/v2/"+repo+"/manifests/"+tag, map[string]string{"Accept": mtOCIManifest}, nil); r.Status != http.StatusNotFound {
			t.Errorf("tag %s of the deleted manifest still resolves: HEAD status %d, want 404", tag, r.Status)
		}
	}
	tags = lines(s.crane("ls", registryAddr+"/"+repo))
	if !equalSets(tags, []string{"keep"}) {
		t.Errorf("after the delete crane ls %s = %v, want [keep]", repo, tags)
	}
	// The other image is untouched.
	if got := firstLine(s.crane("digest", ref(repo, ":keep"))); got != other.Digest {
		t.Errorf("tag keep resolves to %s after the delete, want %s", got, other.Digest)
	}
	s.crane("export", ref(repo, ":keep"), filepath.Join("keep.tar"))
	if _, ok := tarFiles(t, s.readFile("keep.tar"))["other.txt"]; !ok {
		t.Errorf("the image that was not deleted lost its files")
	}
}

func equalSets(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
