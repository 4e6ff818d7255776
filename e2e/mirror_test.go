//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/proxy/upstreamtest"
)

// The pull-through cache (issue 16) with real clients. Each scenario
// starts its own upstream — the reference registry (distribution v3.1.2,
// installed by scripts/install-tools.sh) behind upstreamtest's Docker
// Hub-like front (401 challenge, token endpoint, scoped tokens; it counts
// requests and can answer 429 or go down) — and its own octoserve caching
// it under the prefix docker.io, so the images are named as Docker Hub's
// are: docker.io/library/<name>. Nothing reaches beyond loopback.

// mirrorRevalidate is the cache's tag revalidation interval in these
// scenarios: short, so that a moved tag is seen soon; the tests poll for
// it rather than sleep.
const mirrorRevalidate = time.Second

// mirrorRig is an upstream and an octoserve caching it.
type mirrorRig struct {
	front    *upstreamtest.Front
	upstream *upstreamtest.Pusher // the reference registry itself, past the front
	addr     string               // the caching octoserve
	logPath  string
}

// startMirror starts the upstream and the cache. extra is appended to the
// cache's proxy section.
func startMirror(s *session, extra string) *mirrorRig {
	s.t.Helper()
	bin, err := exec.LookPath("registry")
	if err != nil {
		bin = filepath.Join("..", upstreamtest.ReferenceBin)
		if _, serr := os.Stat(bin); serr != nil {
			s.t.Fatalf("the reference registry is not installed: run scripts/install-tools.sh (%v)", err)
		}
	}
	refURL := upstreamtest.StartReference(s.t, bin)
	m := &mirrorRig{front: upstreamtest.Start(s.t, refURL, upstreamtest.Options{}), upstream: upstreamtest.NewPusher(refURL)}
	s.logf("# upstream: reference registry at %s behind a token front at %s", refURL, m.front.URL)
	config := fmt.Sprintf(`proxy:
  upstreams:
    - prefix: docker.io
      url: %s
      revalidate: %s
      timeout: 5s
%s`, m.front.URL, mirrorRevalidate, extra)
	m.addr, m.logPath = startOctoserve(s, "mirror", config, http.StatusOK)
	return m
}

// staleServed counts the cache's log lines for a cached copy served
// because the upstream failed.
func (m *mirrorRig) staleServed(t *testing.T) int {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("serving the cached copy"))
}

// upstreamBlobRequests counts the blob requests the upstream answered.
func (m *mirrorRig) upstreamBlobRequests() int { return m.front.Count("blob", "") }

// twoPlatforms pushes a linux/amd64 and linux/arm64/v8 index as
// library/<name>:<tag> to the upstream.
func (m *mirrorRig) twoPlatforms(t *testing.T, name, tag string) upstreamtest.Index {
	t.Helper()
	idx := upstreamtest.NewIndex(t,
		upstreamtest.NewImage(t, "linux/amd64", 200<<10, 30<<10),
		upstreamtest.NewImage(t, "linux/arm64/v8", 150<<10))
	m.upstream.Index(t, "library/"+name, tag, idx)
	return idx
}

// mirrorScenario is what every client goes through: pull one platform of
// a two-platform image through the cache; pull again with no blob
// request reaching the upstream; pull with the upstream answering 429,
// then down; and see a tag moved upstream once the interval passed.
// pull pulls image (a docker.io/... reference) and returns the manifest
// digest of the platform it got; digest resolves the tag's digest through
// the cache.
func mirrorScenario(s *session, m *mirrorRig, name string, pull func(image string) string, digest func(image string) string) {
	t := s.t
	t.Helper()
	v1 := m.twoPlatforms(t, name, "1")
	image := "docker.io/library/" + name + ":1"
	amd, arm := v1.Images[0], v1.Images[1]
	if got := pull(image); got != amd.Digest {
		t.Fatalf("pulled %s for linux/amd64, want %s", got, amd.Digest)
	}
	for d := range arm.Blobs() {
		if n := len(m.front.Requests(func(q upstreamtest.Request) bool { return q.Ref == d })); n != 0 {
			t.Errorf("the arm64 image's blob %s was asked for upstream %d times: only the platform pulled may be fetched", d, n)
		}
	}

	m.front.Reset()
	pull(image)
	if n := m.upstreamBlobRequests(); n != 0 {
		t.Errorf("the second pull made %d blob requests upstream, want 0", n)
	}

	for _, mode := range []struct {
		name   string
		mode   upstreamtest.Mode
		status int
	}{{"answering 429", upstreamtest.TooManyRequests, http.StatusTooManyRequests}, {"down", upstreamtest.Down, 0}} {
		m.front.SetMode(mode.mode)
		m.front.Reset()
		before := m.staleServed(t)
		// Pull until a pull has asked the upstream about the tag (once
		// the revalidation interval has passed) and got the failure:
		// every pull must succeed from the cache.
		deadline := time.Now().Add(time.Minute)
		for len(m.front.Requests(func(q upstreamtest.Request) bool { return q.Kind == "manifest" && q.Status == mode.status })) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("upstream %s: no pull asked the upstream about the tag within a minute", mode.name)
			}
			if got := pull(image); got != amd.Digest {
				t.Fatalf("upstream %s: pulled %s, want %s from the cache", mode.name, got, amd.Digest)
			}
		}
		if after := m.staleServed(t); after <= before {
			t.Errorf("upstream %s: the cache did not log serving its stale copy", mode.name)
		}
		m.front.SetMode(upstreamtest.Up)
	}

	v2 := m.twoPlatforms(t, name, "1") // the tag moves upstream
	deadline := time.Now().Add(time.Minute)
	for digest(image) != v2.Digest {
		if time.Now().After(deadline) {
			t.Fatalf("the tag moved upstream to %s; the cache still serves the old one after a minute (interval %s)", v2.Digest, mirrorRevalidate)
		}
		time.Sleep(50 * time.Millisecond) // polling the cache; the interval passes by itself
	}
	if got := pull(image); got != v2.Images[0].Digest {
		t.Fatalf("after the tag moved: pulled %s, want %s", got, v2.Images[0].Digest)
	}
}

// TestMirrorCrane pulls through the cache with crane, by prefixed name
// and, with the cache as the default upstream of Docker's
// registry-mirrors, by bare Docker Hub name.
func TestMirrorCrane(t *testing.T) {
	s := newSession(t)
	m := startMirror(s, "  defaultUpstream: docker.io\n")
	n := 0
	pull := func(image string) string {
		n++
		dir := fmt.Sprintf("crane-pull-%d", n)
		s.crane("pull", "--platform", "linux/amd64", "--format", "oci", m.addr+"/"+image, dir)
		return pulledLayoutImage(s, dir)
	}
	digest := func(image string) string { return firstLine(s.crane("digest", m.addr+"/"+image)) }
	mirrorScenario(s, m, "crane", pull, digest)

	// Docker's registry-mirrors: "library/<name>", and "<name>" alone.
	idx := m.twoPlatforms(t, "bare", "v1")
	for _, name := range []string{"library/bare:v1", "bare:v1"} {
		dir := "bare-" + strings.NewReplacer("/", "-", ":", "-").Replace(name)
		s.crane("pull", "--platform", "linux/arm64", "--format", "oci", m.addr+"/"+name, dir)
		if got := pulledLayoutImage(s, dir); got != idx.Images[1].Digest {
			t.Errorf("crane pull %s: %s, want the arm64 image %s", name, got, idx.Images[1].Digest)
		}
	}
	// Read-only: a push to the cache is refused.
	out := s.fail("crane", "copy", "--insecure", m.addr+"/bare:v1", m.addr+"/docker.io/library/bare:pushed")
	if !strings.Contains(out, "DENIED") || !strings.Contains(out, "read-only pull-through cache") {
		t.Errorf("push to a cached repository not refused as read-only:\n%s", tail(out, 10))
	}
}

// pulledLayoutImage returns the digest of the one image manifest in the OCI
// layout dir (crane and skopeo write the platform's manifest there).
func pulledLayoutImage(s *session, dir string) string {
	s.t.Helper()
	var idx manifest
	decodeJSON(s.t, string(s.readFile(filepath.Join(dir, "index.json"))), &idx)
	if len(idx.Manifests) != 1 {
		s.t.Fatalf("%s/index.json lists %d manifests, want 1", dir, len(idx.Manifests))
	}
	d := idx.Manifests[0].Digest
	m := s.parseManifest(s.readFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))))
	for _, l := range append([]descriptor{m.Config}, m.Layers...) {
		b := s.readFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(l.Digest, "sha256:")))
		if sha256Digest(b) != l.Digest {
			s.t.Fatalf("%s: blob %s does not hash to its digest", dir, l.Digest)
		}
	}
	return d
}

// TestMirrorSkopeo copies through the cache with skopeo.
func TestMirrorSkopeo(t *testing.T) {
	s := newSession(t)
	m := startMirror(s, "")
	n := 0
	pull := func(image string) string {
		n++
		dir := fmt.Sprintf("skopeo-copy-%d", n)
		s.skopeo("copy", "--src-tls-verify=false", "--override-os", "linux", "--override-arch", "amd64",
			"docker://"+m.addr+"/"+image, "oci:"+dir)
		return pulledLayoutImage(s, dir)
	}
	digest := func(image string) string {
		return sha256Digest([]byte(s.skopeo("inspect", "--tls-verify=false", "--raw", "docker://"+m.addr+"/"+image)))
	}
	mirrorScenario(s, m, "skopeo", pull, digest)
}

// TestMirrorContainerdHostsToml pulls docker.io images with containerd
// configured as its hosts.toml documentation says for a mirror: requests
// go to octoserve with ?ns=docker.io. The hosts.toml server is an address
// nothing listens on, so every pull that works came through the cache.
func TestMirrorContainerdHostsToml(t *testing.T) {
	s := newSession(t)
	startContainerd(s)
	m := startMirror(s, "")
	hostsDir := filepath.Join(s.dir, "certs.d")
	s.writeFile("certs.d/docker.io/hosts.toml", []byte(fmt.Sprintf(`# docker.io through the octoserve cache; no fallback to the internet.
server = "http://127.0.0.1:1"

[host."http://%s"]
  capabilities = ["pull", "resolve"]
`, m.addr)))
	pull := func(image string) string {
		_ = s.exec(nil, "ctr", "images", "rm", "--sync", image) // an empty content store: the pull fetches everything
		if left := ctrContent(s); len(left) != 0 {
			t.Fatalf("content left after ctr images rm --sync: %v", left)
		}
		s.ctr("images", "pull", "--hosts-dir", hostsDir, "--platform", "linux/amd64", image)
		var got string
		content := ctrContent(s)
		idx := s.parseManifest([]byte(s.ctr("content", "get", ctrImageDigest(s, image))))
		for _, d := range idx.Manifests {
			if d.Platform.Architecture == "amd64" {
				got = d.Digest
			}
			if d.Platform.Architecture == "arm64" && content[d.Digest] {
				t.Errorf("ctr --platform linux/amd64 fetched the arm64 manifest too")
			}
		}
		if !content[got] {
			t.Fatalf("the amd64 manifest %s is not in containerd's content store", got)
		}
		return got
	}
	digest := func(image string) string {
		res := s.exec(nil, "ctr", "images", "pull", "--hosts-dir", hostsDir, "--platform", "linux/amd64", image)
		if res.Err != nil {
			t.Fatalf("ctr images pull: %v\n%s", res.Err, tail(res.Combined(), 20))
		}
		return ctrImageDigest(s, image)
	}
	mirrorScenario(s, m, "ctr", pull, digest)
	if n := m.front.Count("manifest", ""); n == 0 {
		t.Error("the upstream saw no manifest request: containerd did not pull through the cache")
	}
	// containerd asked for the name without its registry (the cache has no
	// default upstream here: only ?ns=docker.io maps it).
	b, _ := os.ReadFile(m.logPath)
	if !regexp.MustCompile(`path=/v2/library/ctr/manifests/`).Match(b) {
		t.Error("the cache's log shows no request for library/ctr: containerd did not use the mirror as hosts.toml says")
	}
}

// TestMirrorBigBlobStreams pulls a 256 MiB blob through the cache for the
// first time while the upstream holds back its last MiB until the client
// has received its first bytes: the transfer can only finish if the cache
// streams the blob as it arrives instead of downloading it first.
func TestMirrorBigBlobStreams(t *testing.T) {
	s := newSession(t)
	m := startMirror(s, "")
	data := upstreamtest.RandomBytes(256 << 20)
	d := m.upstream.Blob(t, "library/big", data)
	gate := m.front.Gate(d, 1<<20) // also holds back a transfer the cache resumes
	defer gate.Open()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	var resp *http.Response
	first := make(chan error, 1)
	head := make([]byte, 64<<10)
	go func() {
		var err error
		resp, err = client.Get("http://" + m.addr + "/v2/docker.io/library/big/blobs/" + d)
		if err == nil && (resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data))) {
			err = fmt.Errorf("GET: %s, Content-Length %d", resp.Status, resp.ContentLength)
		}
		if err == nil {
			_, err = io.ReadFull(resp.Body, head)
		}
		first <- err
	}()
	select {
	case err := <-first:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("no bytes reached the client while the upstream held back the blob's last MiB: the cache waits for the whole blob")
	}
	defer resp.Body.Close()
	gate.Open()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(head, data[:len(head)]) || !bytes.Equal(rest, data[len(head):]) {
		t.Fatalf("the blob arrived with %d bytes (%v), not as stored upstream", len(head)+len(rest), err)
	}
	if n := m.front.Count("blob", "GET"); n != 1 {
		t.Errorf("%d upstream GETs, want 1", n)
	}
}
