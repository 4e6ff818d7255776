//go:build e2e

package e2e

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// multiPlatform is a two-platform OCI index with referrers attached to the
// index and to one of its images.
type multiPlatform struct {
	Repo      string
	Digest    string              // index digest
	Raw       []byte              // index bytes
	Children  map[string]manifest // platform manifest digest -> manifest
	SBOM      string              // referrer of the index
	SBOMBytes []byte
	Sig       string // referrer of the linux/amd64 image
	SigChild  string // the manifest Sig refers to
}

const (
	mtSBOM = "application/spdx+json"
	mtSig  = "application/vnd.octoserve.e2e.signature"
)

// buildMultiPlatform pushes a linux/amd64 and a linux/arm64/v8 image with
// crane, joins them in an index with `regctl index create`, and attaches an
// SBOM to the index and a signature to the amd64 image with
// `regctl artifact put --subject`.
func buildMultiPlatform(s *session, repo string) multiPlatform {
	s.t.Helper()
	mp := multiPlatform{Repo: repo, Children: map[string]manifest{}}
	plats := []struct{ tag, platform string }{{"amd64", "linux/amd64"}, {"arm64", "linux/arm64/v8"}}
	var children []string
	for _, p := range plats {
		craneAppend(s, repo, p.tag, tarFile{Name: "etc/platform", Data: []byte(p.platform + " " + randomHex(8) + "\n")},
			tarFile{Name: "bin/app", Data: randomBytes(64 << 10)})
		dgst := digestOf(s.t, s.crane("mutate", "--set-platform", p.platform, ref(repo, ":"+p.tag)))
		children = append(children, dgst)
		mp.Children[dgst] = s.parseManifest([]byte(s.crane("manifest", ref(repo, "@"+dgst))))
		var cfg imageConfig
		decodeJSON(s.t, s.crane("config", ref(repo, "@"+dgst)), &cfg)
		if cfg.OS+"/"+cfg.Architecture != strings.Join(strings.Split(p.platform, "/")[:2], "/") {
			s.t.Fatalf("crane mutate --set-platform %s gave config platform %s/%s", p.platform, cfg.OS, cfg.Architecture)
		}
	}
	s.regctl("index", "create", ref(repo, ":multi"), "--ref", ref(repo, ":amd64"), "--ref", ref(repo, ":arm64"))
	mp.Raw = []byte(s.regctl("manifest", "get", ref(repo, ":multi"), "--format", "raw-body"))
	mp.Digest = sha256Digest(mp.Raw)
	if got := firstLine(s.regctl("image", "digest", ref(repo, ":multi"))); got != mp.Digest {
		s.t.Fatalf("regctl image digest = %s, but the index served hashes to %s", got, mp.Digest)
	}
	idx := s.parseManifest(mp.Raw)
	if idx.MediaType != mtOCIIndex || len(idx.Manifests) != 2 {
		s.t.Fatalf("index: mediaType %q with %d manifests, want %q with 2", idx.MediaType, len(idx.Manifests), mtOCIIndex)
	}
	for i, d := range idx.Manifests {
		if d.Digest != children[i] || d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != plats[i].tag {
			s.t.Fatalf("index entry %d: %+v (platform %+v), want %s for %s", i, d, d.Platform, children[i], plats[i].platform)
		}
	}

	mp.SBOMBytes = []byte(`{"spdxVersion":"SPDX-2.3","name":"` + repo + `","documentNamespace":"urn:uuid:` + randomHex(16) + `"}`)
	s.writeFile("sbom.spdx.json", mp.SBOMBytes)
	mp.SBOM = digestOf(s.t, s.regctl("artifact", "put", "--artifact-type", mtSBOM, "--subject", ref(repo, ":multi"),
		"--file", "sbom.spdx.json", "--file-media-type", mtSBOM, "--file-title", "--format", "{{ .Manifest.GetDescriptor.Digest }}"))
	s.writeFile("sig.json", []byte(`{"sig":"`+randomHex(32)+`"}`))
	mp.SigChild = children[0]
	mp.Sig = digestOf(s.t, s.regctl("artifact", "put", "--artifact-type", mtSig, "--subject", ref(repo, "@"+mp.SigChild),
		"--file", "sig.json", "--file-media-type", "application/json", "--file-title", "--format", "{{ .Manifest.GetDescriptor.Digest }}"))

	// The referrers API of the source, and no fallback tags: regctl pushes
	// "sha256-<digest>" tags only when the server does not acknowledge the
	// subject (OCI-Subject header) of a pushed manifest.
	checkReferrers(s, repo, mp.Digest, map[string]string{mp.SBOM: mtSBOM})
	checkReferrers(s, repo, mp.SigChild, map[string]string{mp.Sig: mtSig})
	for _, tag := range lines(s.crane("ls", registryAddr+"/"+repo)) {
		if strings.HasPrefix(tag, "sha256-") {
			s.t.Errorf("regctl pushed the referrers fallback tag %s: the server did not acknowledge the subject", tag)
		}
	}
	return mp
}

// checkReferrers asserts the referrers API of subject in repo lists exactly
// want (digest -> artifactType).
func checkReferrers(s *session, repo, subject string, want map[string]string) {
	s.t.Helper()
	got := map[string]string{}
	for _, d := range s.referrers(repo, subject) {
		got[d.Digest] = d.ArtifactType
	}
	if len(got) != len(want) {
		s.t.Errorf("referrers of %s in %s: %v, want %v", subject, repo, got, want)
		return
	}
	for d, at := range want {
		if got[d] != at {
			s.t.Errorf("referrers of %s in %s: %v, want %v", subject, repo, got, want)
			return
		}
	}
}

// checkIndexCopy asserts dst holds the whole index of mp, byte-identical:
// the index by tag, each platform manifest and its blobs.
func checkIndexCopy(s *session, mp multiPlatform, dst, tag string) {
	s.t.Helper()
	r := s.http("GET", "/v2/"+dst+"/manifests/"+tag, map[string]string{"Accept": mtOCIIndex}, nil)
	if r.Status != http.StatusOK {
		s.t.Fatalf("GET the copied index %s:%s: status %d", dst, tag, r.Status)
	}
	if !bytes.Equal(r.Body, mp.Raw) || r.Header.Get("Docker-Content-Digest") != mp.Digest {
		s.t.Errorf("copied index in %s hashes to %s (Docker-Content-Digest %q), want %s", dst, sha256Digest(r.Body), r.Header.Get("Docker-Content-Digest"), mp.Digest)
	}
	if ct := r.Header.Get("Content-Type"); ct != mtOCIIndex {
		s.t.Errorf("copied index Content-Type %q, want %q", ct, mtOCIIndex)
	}
	for dgst, m := range mp.Children {
		raw := []byte(s.crane("manifest", ref(dst, "@"+dgst)))
		if got := sha256Digest(raw); got != dgst {
			s.t.Errorf("platform manifest %s in %s hashes to %s", dgst, dst, got)
		}
		for _, b := range append([]descriptor{m.Config}, m.Layers...) {
			if got := sha256Digest([]byte(s.crane("blob", ref(dst, "@"+b.Digest)))); got != b.Digest {
				s.t.Errorf("blob %s in %s hashes to %s", b.Digest, dst, got)
			}
		}
	}
}

// TestMultiPlatformIndexCopyReferrersRegctl builds a multi-platform index
// with referrers and copies it with `regctl image copy --referrers`: the
// copy has the same digests and the referrers come along, on the index and
// on its platform manifests.
func TestMultiPlatformIndexCopyReferrersRegctl(t *testing.T) {
	s := newSession(t)
	mp := buildMultiPlatform(s, repoName("multi-regctl"))
	dst := repoName("multi-regctl-copy")

	s.regctl("image", "copy", "--referrers", ref(mp.Repo, ":multi"), ref(dst, ":multi"))
	checkIndexCopy(s, mp, dst, "multi")
	checkReferrers(s, dst, mp.Digest, map[string]string{mp.SBOM: mtSBOM})
	checkReferrers(s, dst, mp.SigChild, map[string]string{mp.Sig: mtSig})

	// regctl reads the copied SBOM back byte-identical.
	if got := []byte(s.regctl("artifact", "get", ref(dst, "@"+mp.SBOM))); !bytes.Equal(got, mp.SBOMBytes) {
		t.Errorf("SBOM read from the copy differs from the one attached")
	}
	if out := s.regctl("artifact", "list", ref(dst, ":multi"), "--format", "{{range .Descriptors}}{{println .Digest}}{{end}}"); !equalSets(lines(out), []string{mp.SBOM}) {
		t.Errorf("regctl artifact list on the copy = %v, want [%s]", lines(out), mp.SBOM)
	}
	for _, tag := range lines(s.crane("ls", registryAddr+"/"+dst)) {
		if strings.HasPrefix(tag, "sha256-") {
			t.Errorf("the copy has the referrers fallback tag %s", tag)
		}
	}
}

// TestMultiPlatformIndexCopyReferrersOras copies the same kind of index with
// `oras cp -r` (recursive: with the index's referrers).
func TestMultiPlatformIndexCopyReferrersOras(t *testing.T) {
	s := newSession(t)
	mp := buildMultiPlatform(s, repoName("multi-oras"))
	dst := repoName("multi-oras-copy")

	s.must("oras", "cp", "-r", "--from-plain-http", "--to-plain-http",
		"--from-distribution-spec", "v1.1-referrers-api", "--to-distribution-spec", "v1.1-referrers-api",
		ref(mp.Repo, ":multi"), ref(dst, ":multi"))
	checkIndexCopy(s, mp, dst, "multi")
	checkReferrers(s, dst, mp.Digest, map[string]string{mp.SBOM: mtSBOM})

	out := s.oras(refAPI("discover", "--format", "json", ref(dst, ":multi"))...)
	var disc orasDiscover
	decodeJSON(t, out, &disc)
	if len(disc.Referrers) != 1 || disc.Referrers[0].Digest != mp.SBOM || disc.Referrers[0].ArtifactType != mtSBOM {
		t.Errorf("oras discover on the copy found %+v, want only %s (%s)", disc.Referrers, mp.SBOM, mtSBOM)
	}
	s.oras("pull", "-o", "sbom-out", ref(dst, "@"+mp.SBOM))
	if got := s.readFile("sbom-out/sbom.spdx.json"); !bytes.Equal(got, mp.SBOMBytes) {
		t.Errorf("SBOM pulled from the copy differs from the one attached")
	}
}

// TestMultiPlatformIndexSkopeoCopyAll copies a multi-platform index with
// `skopeo copy --all --preserve-digests` and checks every digest survives.
func TestMultiPlatformIndexSkopeoCopyAll(t *testing.T) {
	s := newSession(t)
	mp := buildMultiPlatform(s, repoName("multi-skopeo"))
	dst := repoName("multi-skopeo-copy")

	s.skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
		"docker://"+ref(mp.Repo, ":multi"), "docker://"+ref(dst, ":multi"))
	checkIndexCopy(s, mp, dst, "multi")

	raw := []byte(s.skopeo("inspect", "--raw", "--tls-verify=false", "docker://"+ref(dst, ":multi")))
	if !bytes.Equal(raw, mp.Raw) {
		t.Errorf("skopeo inspect --raw of the copy differs from the source index")
	}
	// A plain skopeo inspect reports the index digest and reads the config
	// of the platform asked for through the copied index.
	var info struct {
		Digest       string
		Architecture string
		Os           string
	}
	decodeJSON(t, s.skopeo("inspect", "--tls-verify=false", "--override-os", "linux", "--override-arch", "arm64",
		"--override-variant", "v8", "docker://"+ref(dst, ":multi")), &info)
	if info.Digest != mp.Digest || info.Architecture != "arm64" || info.Os != "linux" {
		t.Errorf("skopeo inspect linux/arm64/v8 of the copy: %+v, want digest %s linux/arm64", info, mp.Digest)
	}
}
