//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// cosign signs with a key pair and no transparency log (--tlog-upload=false
// to sign, --insecure-ignore-tlog to verify), and verifies with an empty
// trusted root of the session's (--trusted-root): without one, verify asks
// Sigstore's TUF repository for the public instance's roots. Nothing leaves
// the machine. It talks plain HTTP to the loopback registry with
// --allow-http-registry.

const (
	mtCosignSig           = "application/vnd.dev.cosign.artifact.sig.v1+json"
	mtCosignSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
)

func (s *session) cosign(args ...string) string {
	s.t.Helper()
	res := s.exec(nil, "cosign", append(args, "--allow-http-registry")...)
	if res.Err != nil {
		s.t.Fatalf("cosign %s: %v\n%s", shellQuote(args), res.Err, tail(res.Combined(), 40))
	}
	if strings.Contains(res.Stderr, "TUF") {
		s.t.Errorf("cosign %s tried to reach Sigstore's TUF repository:\n%s", shellQuote(args), tail(res.Stderr, 10))
	}
	return res.Stdout
}

// cosignKeys makes a password-protected key pair prefix.key / prefix.pub,
// and the empty trusted root verify needs (trusted-root.json).
func cosignKeys(s *session, prefix string) {
	s.t.Helper()
	s.env = append(s.env, "COSIGN_PASSWORD=e2e-"+randomHex(8))
	s.must("cosign", "generate-key-pair", "--output-key-prefix", prefix)
	s.writeFile("trusted-root.json", []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`))
}

// cosignVerified checks the JSON `cosign verify` printed names digest.
func cosignVerified(s *session, out, digest string) {
	s.t.Helper()
	var payloads []struct {
		Critical struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
		} `json:"critical"`
	}
	decodeJSON(s.t, firstLine(out), &payloads)
	if len(payloads) == 0 {
		s.t.Fatalf("cosign verify printed no signature payload")
	}
	for _, p := range payloads {
		if p.Critical.Image.Digest != digest {
			s.t.Errorf("cosign verify: signature for %s, want %s", p.Critical.Image.Digest, digest)
		}
	}
}

// cosignTag is the tag cosign's tag scheme stores suffix (sig, att) of
// digest under.
func cosignTag(digest, suffix string) string {
	return strings.Replace(digest, ":", "-", 1) + "." + suffix
}

// TestCosignSignVerifyAttestTree signs an image with a key pair (the .sig
// tag scheme), verifies it (and fails to with another key), attests a
// predicate and verifies the attestation, and shows both with cosign tree.
func TestCosignSignVerifyAttestTree(t *testing.T) {
	s := newSession(t)
	cosignKeys(s, "signer")
	repo := repoName("cosign")
	img := craneAppend(s, repo, "v1", tarFile{Name: "etc/signed.txt", Data: []byte("signed " + randomHex(8))})
	image := ref(repo, "@"+img.Digest)

	s.cosign("sign", "--key", "signer.key", "--tlog-upload=false", "--yes", image)
	sigTag := cosignTag(img.Digest, "sig")
	if !contains(s.tagsOf(repo), sigTag) {
		t.Fatalf("after cosign sign, %s has tags %v, want %s", repo, s.tagsOf(repo), sigTag)
	}
	sig, _ := s.servedManifest(repo, sigTag, firstLine(s.crane("digest", ref(repo, ":"+sigTag))))
	if len(sig.Layers) != 1 || sig.Layers[0].MediaType != mtCosignSimpleSigning || sig.Layers[0].Annotations["dev.cosignproject.cosign/signature"] == "" {
		t.Errorf("signature manifest layers %+v, want one %s layer with a signature annotation", sig.Layers, mtCosignSimpleSigning)
	}
	cosignVerified(s, s.cosign("verify", "--key", "signer.pub", "--insecure-ignore-tlog", "--trusted-root", "trusted-root.json", image), img.Digest)

	// Another key does not verify it: the check above is real.
	s.must("cosign", "generate-key-pair", "--output-key-prefix", "other")
	out := s.fail("cosign", "verify", "--key", "other.pub", "--insecure-ignore-tlog", "--trusted-root", "trusted-root.json", "--allow-http-registry", image)
	if !strings.Contains(out, "no matching signatures") {
		t.Errorf("verify with another key failed, but not for want of a matching signature:\n%s", tail(out, 10))
	}

	// An attestation, stored under the .att tag, and verified.
	marker := "octoserve-e2e-" + randomHex(8)
	s.writeFile("predicate.json", []byte(`{"builder":{"id":"`+marker+`"}}`))
	s.cosign("attest", "--key", "signer.key", "--tlog-upload=false", "--yes", "--type", "custom", "--predicate", "predicate.json", image)
	attTag := cosignTag(img.Digest, "att")
	if !contains(s.tagsOf(repo), attTag) {
		t.Fatalf("after cosign attest, %s has tags %v, want %s", repo, s.tagsOf(repo), attTag)
	}
	var envelope struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
	}
	decodeJSON(t, firstLine(s.cosign("verify-attestation", "--key", "signer.pub", "--insecure-ignore-tlog", "--trusted-root", "trusted-root.json", "--type", "custom", image)), &envelope)
	statement, err := base64.StdEncoding.DecodeString(envelope.Payload)
	if err != nil {
		t.Fatalf("attestation payload is not base64: %v", err)
	}
	var st struct {
		Subject []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		Predicate json.RawMessage `json:"predicate"`
	}
	decodeJSON(t, string(statement), &st)
	if envelope.PayloadType != "application/vnd.in-toto+json" || len(st.Subject) != 1 ||
		"sha256:"+st.Subject[0].Digest["sha256"] != img.Digest || !strings.Contains(string(st.Predicate), marker) {
		t.Errorf("verified attestation: type %q, statement %s; want an in-toto statement about %s holding %s", envelope.PayloadType, statement, img.Digest, marker)
	}
	s.fail("cosign", "verify-attestation", "--key", "other.pub", "--insecure-ignore-tlog", "--trusted-root", "trusted-root.json", "--type", "custom", "--allow-http-registry", image)

	tree := s.cosign("tree", image)
	for _, want := range []string{ref(repo, ":"+sigTag), ref(repo, ":"+attTag)} {
		if !strings.Contains(tree, want) {
			t.Errorf("cosign tree does not list %s:\n%s", want, tree)
		}
	}
}

// TestCosignReferrersOCI11 signs with --registry-referrers-mode=oci-1-1: the
// signature is a manifest whose subject is the image, listed by the
// referrers API, and no .sig tag is pushed; verify finds it there.
func TestCosignReferrersOCI11(t *testing.T) {
	s := newSession(t)
	cosignKeys(s, "signer")
	s.env = append(s.env, "COSIGN_EXPERIMENTAL=1") // cosign v2 requires it for oci-1-1
	repo := repoName("cosign-oci11")
	img := craneAppend(s, repo, "v1", tarFile{Name: "etc/signed.txt", Data: []byte("referrers " + randomHex(8))})
	image := ref(repo, "@"+img.Digest)

	s.cosign("sign", "--key", "signer.key", "--tlog-upload=false", "--yes", "--registry-referrers-mode=oci-1-1", image)
	if tags := s.tagsOf(repo); len(tags) != 1 || tags[0] != "v1" {
		t.Errorf("after an oci-1-1 signature, %s has tags %v, want only v1", repo, tags)
	}
	refs := s.referrers(repo, img.Digest)
	if len(refs) != 1 || refs[0].ArtifactType != mtCosignSig {
		t.Fatalf("referrers of %s: %+v, want one %s", img.Digest, refs, mtCosignSig)
	}
	sig, _ := s.servedManifest(repo, refs[0].Digest, refs[0].Digest)
	if sig.Subject == nil || sig.Subject.Digest != img.Digest {
		t.Errorf("signature manifest subject %+v, want %s", sig.Subject, img.Digest)
	}
	if len(sig.Layers) != 1 || sig.Layers[0].MediaType != mtCosignSimpleSigning {
		t.Errorf("signature manifest layers %+v, want one %s", sig.Layers, mtCosignSimpleSigning)
	}

	cosignVerified(s, s.cosign("verify", "--key", "signer.pub", "--insecure-ignore-tlog", "--trusted-root", "trusted-root.json", "--experimental-oci11", image), img.Digest)
	// Without --experimental-oci11 cosign looks for the .sig tag only.
	out := s.fail("cosign", "verify", "--key", "signer.pub", "--insecure-ignore-tlog", "--trusted-root", "trusted-root.json", "--allow-http-registry", image)
	if !strings.Contains(out, "no signatures found") {
		t.Errorf("verify through the tag scheme failed, but not for want of a signature:\n%s", tail(out, 10))
	}
	if tree := s.cosign("tree", "--experimental-oci11", image); !strings.Contains(tree, refs[0].Digest) {
		t.Errorf("cosign tree --experimental-oci11 does not list the referrer %s:\n%s", refs[0].Digest, tree)
	}
}

// TestCosignAuth signs images on an octoserve with basic auth on after
// `cosign login`: refused with a wrong password, accepted where the user may
// push, refused where it may only pull.
func TestCosignAuth(t *testing.T) {
	s := newSession(t)
	cosignKeys(s, "signer")
	ar := startAuthRegistry(s)
	ok, ro := ar.OK("cosign"), ar.RO("cosign")
	okDigest := s.pushImageHTTP(ar.Addr, ar.User, ar.Password, ok, "v1", tarFile{Name: "ok.txt", Data: []byte(randomHex(8))})
	roDigest := s.pushImageHTTP(ar.Addr, ar.Admin, ar.AdminPassword, ro, "v1", tarFile{Name: "ro.txt", Data: []byte(randomHex(8))})
	sign := []string{"sign", "--key", "signer.key", "--tlog-upload=false", "--yes", "--allow-http-registry"}

	// cosign login only stores the credentials; the registry judges them
	// at the next request.
	s.must("cosign", "login", ar.Addr, "-u", ar.User, "-p", ar.WrongPassword)
	out := s.fail("cosign", append(sign, ar.Ref(ok, "@"+okDigest))...)
	if !strings.Contains(out, "401") && !strings.Contains(strings.ToUpper(out), "UNAUTHORIZED") {
		t.Errorf("sign with a wrong password failed, but not as unauthorized:\n%s", tail(out, 10))
	}
	s.must("cosign", "login", ar.Addr, "-u", ar.User, "-p", ar.Password)

	s.must("cosign", append(sign, ar.Ref(ok, "@"+okDigest))...)
	out = s.fail("cosign", append(sign, ar.Ref(ro, "@"+roDigest))...)
	assertDenied(s, "cosign sign in a pull-only repository", out)
	ar.assertNoTag(s, ro, cosignTag(roDigest, "sig"))

	cosignVerified(s, s.cosign("verify", "--key", "signer.pub", "--insecure-ignore-tlog", "--trusted-root", "trusted-root.json", ar.Ref(ok, "@"+okDigest)), okDigest)
}
