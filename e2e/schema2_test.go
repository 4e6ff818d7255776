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

// ociLayoutImage is a one-layer OCI image written as an OCI image layout.
type ociLayoutImage struct {
	Dir      string
	LayerTar []byte
	LayerGz  []byte
	Config   []byte
}

// writeOCILayout writes an OCI image layout holding one linux/amd64 image
// tagged tag, whose single layer holds files.
func writeOCILayout(s *session, dir, tag string, files ...tarFile) ociLayoutImage {
	s.t.Helper()
	img := ociLayoutImage{Dir: filepath.Join(s.dir, dir)}
	img.LayerTar = makeLayerTar(s.t, files...)
	img.LayerGz = gzipBytes(s.t, img.LayerTar)
	var err error
	img.Config, err = json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Env": []string{"PATH=/usr/bin:/bin"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{sha256Digest(img.LayerTar)}},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	man, err := json.Marshal(manifest{
		SchemaVersion: 2,
		MediaType:     mtOCIManifest,
		Config:        descriptor{MediaType: mtOCIConfig, Digest: sha256Digest(img.Config), Size: int64(len(img.Config))},
		Layers:        []descriptor{{MediaType: mtOCILayerGzip, Digest: sha256Digest(img.LayerGz), Size: int64(len(img.LayerGz))}},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, b := range [][]byte{img.LayerGz, img.Config, man} {
		s.writeFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(sha256Digest(b), "sha256:")), b)
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mtOCIIndex,
		"manifests": []descriptor{{MediaType: mtOCIManifest, Digest: sha256Digest(man), Size: int64(len(man)),
			Annotations: map[string]string{"org.opencontainers.image.ref.name": tag}}},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	s.writeFile(filepath.Join(dir, "index.json"), index)
	s.writeFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`))
	return img
}

// TestSkopeoDockerSchema2 converts an OCI image to Docker schema 2 with
// `skopeo copy --format v2s2`, pushes it, and inspects it: the registry must
// keep and serve it as application/vnd.docker.distribution.manifest.v2+json.
func TestSkopeoDockerSchema2(t *testing.T) {
	s := newSession(t)
	repo := repoName("schema2")
	marker := []byte("docker schema2 " + randomHex(16) + "\n")
	src := writeOCILayout(s, "oci-src", "v1", tarFile{Name: "etc/octoserve-v2s2.txt", Data: marker},
		tarFile{Name: "usr/lib/blob.bin", Data: randomBytes(512 << 10)})
	target := "docker://" + ref(repo, ":v1")

	s.skopeo("copy", "--format", "v2s2", "--dest-tls-verify=false", "oci:"+src.Dir+":v1", target)

	// The manifest as skopeo reads it back.
	raw := []byte(s.skopeo("inspect", "--raw", "--tls-verify=false", target))
	m := s.parseManifest(raw)
	dgst := sha256Digest(raw)
	if m.SchemaVersion != 2 || m.MediaType != mtDockerManifest {
		t.Fatalf("pushed manifest: schemaVersion %d mediaType %q, want 2 %q", m.SchemaVersion, m.MediaType, mtDockerManifest)
	}
	if m.Config.MediaType != mtDockerConfig {
		t.Errorf("config mediaType %q, want %q", m.Config.MediaType, mtDockerConfig)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != mtDockerLayer || m.Layers[0].Digest != sha256Digest(src.LayerGz) {
		t.Errorf("layers %+v, want one %s layer %s", m.Layers, mtDockerLayer, sha256Digest(src.LayerGz))
	}

	// The server's Content-Type and digest headers.
	for _, accept := range []string{mtDockerManifest, mtDockerManifest + ", " + mtOCIManifest} {
		for _, method := range []string{"GET", "HEAD"} {
			r := s.http(method, "/v2/"+repo+"/manifests/v1", map[string]string{"Accept": accept}, nil)
			if r.Status != http.StatusOK {
				t.Errorf("%s manifest (Accept: %s): status %d", method, accept, r.Status)
				continue
			}
			if ct := r.Header.Get("Content-Type"); ct != mtDockerManifest {
				t.Errorf("%s manifest (Accept: %s): Content-Type %q, want %q", method, accept, ct, mtDockerManifest)
			}
			if got := r.Header.Get("Docker-Content-Digest"); got != dgst {
				t.Errorf("%s manifest: Docker-Content-Digest %q, want %q", method, got, dgst)
			}
			if method == "GET" && !bytes.Equal(r.Body, raw) {
				t.Errorf("GET manifest body differs from what skopeo read")
			}
		}
	}

	// skopeo inspect: digest, platform, layers.
	var info struct {
		Digest       string
		Architecture string
		Os           string
		Layers       []string
		Env          []string
	}
	decodeJSON(t, s.skopeo("inspect", "--tls-verify=false", target), &info)
	if info.Digest != dgst || info.Architecture != "amd64" || info.Os != "linux" || len(info.Layers) != 1 || info.Layers[0] != m.Layers[0].Digest {
		t.Errorf("skopeo inspect = %+v, want digest %s linux/amd64 with layer %s", info, dgst, m.Layers[0].Digest)
	}
	cfgRaw := []byte(s.skopeo("inspect", "--config", "--raw", "--tls-verify=false", target))
	if got := sha256Digest(cfgRaw); got != m.Config.Digest {
		t.Errorf("config read back hashes to %s, manifest says %s", got, m.Config.Digest)
	}
	var cfg imageConfig
	decodeJSON(t, string(cfgRaw), &cfg)
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != sha256Digest(src.LayerTar) {
		t.Errorf("config diff_ids %v, want [%s]", cfg.RootFS.DiffIDs, sha256Digest(src.LayerTar))
	}

	// Pull it back to a directory: same manifest, same layer bytes.
	s.skopeo("copy", "--src-tls-verify=false", target, "dir:"+filepath.Join(s.dir, "pulled"))
	if got := s.readFile("pulled/manifest.json"); !bytes.Equal(got, raw) {
		t.Errorf("skopeo copy to dir: manifest differs from the one served")
	}
	if got := s.readFile(filepath.Join("pulled", strings.TrimPrefix(m.Layers[0].Digest, "sha256:"))); !bytes.Equal(got, src.LayerGz) {
		t.Errorf("skopeo copy to dir: layer differs from the pushed one")
	}

	// Another client reads the Docker image too, down to the file.
	if got := firstLine(s.crane("digest", ref(repo, ":v1"))); got != dgst {
		t.Errorf("crane digest = %s, want %s", got, dgst)
	}
	s.crane("export", ref(repo, ":v1"), "fs.tar")
	if got := tarFiles(t, s.readFile("fs.tar"))["etc/octoserve-v2s2.txt"]; !bytes.Equal(got, marker) {
		t.Errorf("crane export of the schema2 image: etc/octoserve-v2s2.txt = %q, want %q", got, marker)
	}
}
