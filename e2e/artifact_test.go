//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// orasDescriptor is what `oras push/attach --format json` prints.
type orasDescriptor struct {
	Reference    string `json:"reference"`
	MediaType    string `json:"mediaType"`
	Digest       string `json:"digest"`
	Size         int64  `json:"size"`
	ArtifactType string `json:"artifactType"`
}

func parseOrasDescriptor(t *testing.T, out string) orasDescriptor {
	t.Helper()
	var d orasDescriptor
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("oras output is not JSON: %v\n%s", err, tail(out, 20))
	}
	if !strings.HasPrefix(d.Digest, "sha256:") {
		t.Fatalf("oras output has no digest: %s", tail(out, 20))
	}
	return d
}

// orasDiscover is the part of `oras discover --format json` the tests read.
type orasDiscover struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	Referrers []struct {
		Reference    string `json:"reference"`
		MediaType    string `json:"mediaType"`
		Digest       string `json:"digest"`
		ArtifactType string `json:"artifactType"`
	} `json:"referrers"`
}

// The OCI distribution spec v1.1 options that make oras use the referrers
// API only, never the fallback "sha256-<digest>" tag schema: a server whose
// referrers API is broken then fails these commands instead of being
// silently worked around.
var referrersAPIOnly = []string{"--distribution-spec", "v1.1-referrers-api"}

// refAPI is the oras command line sub args... with referrersAPIOnly.
func refAPI(sub string, args ...string) []string {
	return append(append([]string{sub}, referrersAPIOnly...), args...)
}

// TestOrasArtifactReferrers pushes an artifact with files, attaches a
// signature and an SBOM as referrers, discovers them through the referrers
// API, and pulls every file back byte-identical.
func TestOrasArtifactReferrers(t *testing.T) {
	s := newSession(t)
	repo := repoName("artifact")
	target := ref(repo, ":v1")

	readme := []byte("octoserve artifact " + randomHex(16) + "\n")
	data := randomBytes(3<<20 + 17)
	s.writeFile("readme.txt", readme)
	s.writeFile("data.bin", data)
	sig := []byte(`{"signature":"` + randomHex(32) + `"}`)
	sbom := []byte(`{"spdxVersion":"SPDX-2.3","name":"octoserve-e2e-` + randomHex(8) + `","packages":[]}`)
	s.writeFile("signature.json", sig)
	s.writeFile("sbom.spdx.json", sbom)

	const (
		artifactType = "application/vnd.octoserve.e2e.artifact"
		sigType      = "application/vnd.octoserve.e2e.signature"
		sbomType     = "application/spdx+json"
	)

	// oras push runs in the session directory, so the files keep bare names.
	pushed := parseOrasDescriptor(t, s.oras("push", "--format", "json", "--artifact-type", artifactType,
		target, "readme.txt:text/plain", "data.bin:application/octet-stream"))
	m := s.parseManifest([]byte(s.oras("manifest", "fetch", target)))
	if got := sha256Digest([]byte(s.oras("manifest", "fetch", ref(repo, "@"+pushed.Digest)))); got != pushed.Digest {
		t.Fatalf("artifact manifest hashes to %s, oras push printed %s", got, pushed.Digest)
	}
	if m.ArtifactType != artifactType || len(m.Layers) != 2 {
		t.Errorf("artifact manifest: artifactType %q with %d layers, want %q with 2", m.ArtifactType, len(m.Layers), artifactType)
	}

	// Attach a signature and an SBOM to it.
	sigDesc := parseOrasDescriptor(t, s.oras(refAPI("attach", "--format", "json",
		"--artifact-type", sigType, target, "signature.json:application/json")...))
	sbomDesc := parseOrasDescriptor(t, s.oras(refAPI("attach", "--format", "json",
		"--artifact-type", sbomType, ref(repo, "@"+pushed.Digest), "sbom.spdx.json:"+sbomType)...))

	// oras discover goes through the referrers API.
	var disc orasDiscover
	out := s.oras(refAPI("discover", "--format", "json", target)...)
	if err := json.Unmarshal([]byte(out), &disc); err != nil {
		t.Fatalf("oras discover output is not JSON: %v\n%s", err, tail(out, 20))
	}
	found := map[string]string{}
	for _, r := range disc.Referrers {
		found[r.Digest] = r.ArtifactType
	}
	if disc.Digest != "" && disc.Digest != pushed.Digest {
		t.Errorf("oras discover resolved %s to %s, want %s", target, disc.Digest, pushed.Digest)
	}
	if found[sigDesc.Digest] != sigType || found[sbomDesc.Digest] != sbomType || len(found) != 2 {
		t.Errorf("oras discover found %v, want {%s: %s, %s: %s}", found, sigDesc.Digest, sigType, sbomDesc.Digest, sbomType)
	}
	// Filtered by artifact type.
	out = s.oras(refAPI("discover", "--format", "json", "--artifact-type", sbomType, target)...)
	disc = orasDiscover{}
	if err := json.Unmarshal([]byte(out), &disc); err != nil {
		t.Fatalf("oras discover output is not JSON: %v", err)
	}
	if len(disc.Referrers) != 1 || disc.Referrers[0].Digest != sbomDesc.Digest {
		t.Errorf("oras discover --artifact-type %s found %+v, want only %s", sbomType, disc.Referrers, sbomDesc.Digest)
	}

	// The referrers API itself: both descriptors, with their artifactType,
	// and no fallback tag, so the clients really used the API.
	refs := s.referrers(repo, pushed.Digest)
	api := map[string]descriptor{}
	for _, d := range refs {
		api[d.Digest] = d
	}
	for _, want := range []orasDescriptor{sigDesc, sbomDesc} {
		got, ok := api[want.Digest]
		switch {
		case !ok:
			t.Errorf("referrers API does not list %s (%s)", want.Digest, want.ArtifactType)
		case got.ArtifactType != want.ArtifactType || got.MediaType != mtOCIManifest || got.Size != want.Size:
			t.Errorf("referrers API lists %+v, want artifactType %q mediaType %q size %d", got, want.ArtifactType, mtOCIManifest, want.Size)
		}
	}
	if len(refs) != 2 {
		t.Errorf("referrers API lists %d descriptors, want 2", len(refs))
	}
	fallback := "sha256-" + strings.TrimPrefix(pushed.Digest, "sha256:")
	if tags := lines(s.crane("ls", registryAddr+"/"+repo)); contains(tags, fallback) {
		t.Errorf("a referrers fallback tag %s exists: a client did not trust the referrers API", fallback)
	}
	// regctl agrees, through its own client.
	if out := s.regctl("artifact", "list", target, "--format", "{{range .Descriptors}}{{println .Digest}}{{end}}"); !equalSets(lines(out), []string{sigDesc.Digest, sbomDesc.Digest}) {
		t.Errorf("regctl artifact list = %v, want %s and %s", lines(out), sigDesc.Digest, sbomDesc.Digest)
	}

	// Pull everything back byte-identical.
	s.oras("pull", "-o", "pulled", target)
	if got := s.readFile("pulled/readme.txt"); !bytes.Equal(got, readme) {
		t.Errorf("pulled readme.txt differs from the pushed one")
	}
	if got := s.readFile("pulled/data.bin"); !bytes.Equal(got, data) {
		t.Errorf("pulled data.bin (%d bytes) differs from the pushed one (%d bytes)", len(got), len(data))
	}
	s.oras("pull", "-o", "pulled-sig", ref(repo, "@"+sigDesc.Digest))
	if got := s.readFile("pulled-sig/signature.json"); !bytes.Equal(got, sig) {
		t.Errorf("pulled signature differs from the attached one")
	}
	s.oras("pull", "-o", "pulled-sbom", ref(repo, "@"+sbomDesc.Digest))
	if got := s.readFile("pulled-sbom/sbom.spdx.json"); !bytes.Equal(got, sbom) {
		t.Errorf("pulled SBOM differs from the attached one")
	}
	// A referrer's manifest points back at its subject.
	sm := s.parseManifest([]byte(s.oras("manifest", "fetch", ref(repo, "@"+sigDesc.Digest))))
	if sm.Subject == nil || sm.Subject.Digest != pushed.Digest {
		t.Errorf("signature manifest subject = %+v, want %s", sm.Subject, pushed.Digest)
	}
}
