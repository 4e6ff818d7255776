//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
)

var gcSummary = regexp.MustCompile(`removed (\d+) blobs \((\d+) bytes freed\)`)

// gc runs `octoserve gc` on the serving registry's data directory (a
// separate process beside the live server) and returns the bytes freed.
func (s *session) gc() int64 {
	s.t.Helper()
	bin, root := os.Getenv("OCTOSERVE_BIN"), os.Getenv("OCTOSERVE_ROOT")
	if bin == "" || root == "" {
		s.t.Skip("OCTOSERVE_BIN and OCTOSERVE_ROOT name the server's binary and data directory; `make test-e2e` sets them")
	}
	out := s.must(bin, "gc", "--root", root, "--min-age", "0")
	m := gcSummary.FindStringSubmatch(out)
	if m == nil {
		s.t.Fatalf("gc printed no summary:\n%s", out)
	}
	n, _ := strconv.ParseInt(m[2], 10, 64)
	return n
}

// TestGCWhileServing pushes images sharing a base layer with crane, deletes
// half, and runs `octoserve gc` while the server keeps serving: it frees
// exactly what only the deleted images used, and every remaining image
// still pulls completely with crane.
func TestGCWhileServing(t *testing.T) {
	s := newSession(t)
	repo := repoName("gc")
	base := craneAppend(s, repo, "base", tarFile{Name: "base/shared.bin", Data: randomBytes(200 << 10)})
	s.gc() // start from no garbage: earlier scenarios deleted things too

	var wantFreed int64
	digests := map[string]string{}
	for i := 0; i < 6; i++ {
		tag := fmt.Sprintf("v%d", i)
		layer := s.writeFile(tag+".tar", makeLayerTar(t, tarFile{Name: "app/" + tag, Data: randomBytes(20<<10 + i)}))
		dgst := digestOf(t, s.crane("append", "-b", ref(repo, ":base"), "-f", layer, "-t", ref(repo, ":"+tag)))
		digests[tag] = dgst
		if i%2 == 1 {
			raw := []byte(s.crane("manifest", ref(repo, "@"+dgst)))
			m := s.parseManifest(raw)
			wantFreed += int64(len(raw)) + m.Config.Size + m.Layers[len(m.Layers)-1].Size
		}
	}
	for i := 1; i < 6; i += 2 {
		s.crane("delete", ref(repo, "@"+digests[fmt.Sprintf("v%d", i)]))
	}
	if freed := s.gc(); freed != wantFreed {
		t.Fatalf("gc freed %d bytes, want %d (config, top layer and manifest of the 3 deleted images)", freed, wantFreed)
	}
	for _, tag := range []string{"base", "v0", "v2", "v4"} {
		s.crane("pull", "--format", "oci", ref(repo, ":"+tag), s.dir+"/pulled-"+tag)
		if got := firstLine(s.crane("digest", ref(repo, ":"+tag))); tag == "base" && got != base.Digest {
			t.Errorf("base digest %s after gc, want %s", got, base.Digest)
		}
	}
	for i := 1; i < 6; i += 2 {
		s.fail("crane", "manifest", ref(repo, "@"+digests[fmt.Sprintf("v%d", i)]), "--insecure")
	}
	if again := s.gc(); again != 0 {
		t.Errorf("a second gc freed %d more bytes", again)
	}
}
