//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// What the registry serves, read over raw HTTP behind a client's view, and
// what a test puts in place with raw HTTP for a client to read.

const mtDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"

// servedManifest GETs repo's manifest for reference, checks that it is the
// one with digest want (header and body), and returns it with its
// Content-Type.
func (s *session) servedManifest(repo, reference, want string) (manifest, string) {
	s.t.Helper()
	r := s.http("GET", "/v2/"+repo+"/manifests/"+reference, map[string]string{
		"Accept": strings.Join([]string{mtOCIManifest, mtOCIIndex, mtDockerManifest, mtDockerManifestList}, ", ")}, nil)
	if r.Status != http.StatusOK {
		s.t.Fatalf("GET manifest %s:%s: status %d", repo, reference, r.Status)
	}
	if got := r.Header.Get("Docker-Content-Digest"); got != want || sha256Digest(r.Body) != want {
		s.t.Errorf("manifest %s:%s: Docker-Content-Digest %s, body hashes to %s; the client said %s", repo, reference, got, sha256Digest(r.Body), want)
	}
	return s.parseManifest(r.Body), r.Header.Get("Content-Type")
}

// tagsOf lists repo's tags through the API.
func (s *session) tagsOf(repo string) []string {
	s.t.Helper()
	r := s.http("GET", "/v2/"+repo+"/tags/list", nil, nil)
	var tl struct {
		Tags []string `json:"tags"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &tl) != nil {
		s.t.Fatalf("GET tags of %s: status %d: %s", repo, r.Status, tail(string(r.Body), 5))
	}
	return tl.Tags
}

// imageManifest is an OCI image manifest for config and one gzip layer.
// (The manifest type of main_test.go would add "manifests": null, which
// containerd refuses in an image manifest.)
func imageManifest(t *testing.T, config, layer []byte) []byte {
	t.Helper()
	man, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mtOCIManifest,
		"config":        descriptor{MediaType: mtOCIConfig, Digest: sha256Digest(config), Size: int64(len(config))},
		"layers":        []descriptor{{MediaType: mtOCILayerGzip, Digest: sha256Digest(layer), Size: int64(len(layer))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return man
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// pushImageHTTP pushes a one-layer image holding files to repo:tag with
// plain HTTP requests (monolithic blob uploads) as user, and returns the
// manifest's digest. Tests use it to put in place what a client then reads.
func (s *session) pushImageHTTP(addr, user, password, repo, tag string, files ...tarFile) string {
	s.t.Helper()
	auth := map[string]string{}
	if user != "" {
		auth["Authorization"] = basicAuth(user, password)
	}
	layerTar := makeLayerTar(s.t, files...)
	layer := gzipBytes(s.t, layerTar)
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{sha256Digest(layerTar)}},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	base := "http://" + addr + "/v2/" + repo
	for _, blob := range [][]byte{layer, config} {
		r := s.http("POST", base+"/blobs/uploads/?digest="+sha256Digest(blob),
			withHeader(auth, "Content-Type", "application/octet-stream"), blob)
		if r.Status != http.StatusCreated {
			s.t.Fatalf("monolithic upload to %s: status %d: %s", repo, r.Status, tail(string(r.Body), 5))
		}
	}
	man := imageManifest(s.t, config, layer)
	r := s.http("PUT", base+"/manifests/"+tag, withHeader(auth, "Content-Type", mtOCIManifest), man)
	if r.Status != http.StatusCreated {
		s.t.Fatalf("PUT manifest %s:%s: status %d: %s", repo, tag, r.Status, tail(string(r.Body), 5))
	}
	return sha256Digest(man)
}

func withHeader(h map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for hk, hv := range h {
		out[hk] = hv
	}
	return out
}
