//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/backend"
)

var (
	gcSummary = regexp.MustCompile(`removed (\d+) blobs \((\d+) bytes freed\)`)
	gcCutoff  = regexp.MustCompile(`(?m)^cutoff (\S+): `)
)

// cutoffWait bounds how long gc may take to treat what a test stored as
// old: the store's timestamp slack (milliseconds on a local disk) plus
// dry runs on a busy machine.
const cutoffWait = 2 * time.Minute

// storeArg names the serving registry's store to `octoserve gc`:
// OCTOSERVE_STORE_ARG (--config=FILE for a bucket, --root=DIR), else
// --root=$OCTOSERVE_ROOT; "" when neither is set.
func storeArg() string {
	if a := os.Getenv("OCTOSERVE_STORE_ARG"); a != "" {
		return a
	}
	if root := os.Getenv("OCTOSERVE_ROOT"); root != "" {
		return "--root=" + root
	}
	return ""
}

// gc runs `octoserve gc --min-age 0` on the serving registry's store (a
// separate process beside the live server) once everything stored so far
// is older than its cutoff, and returns the bytes freed.
func (s *session) gc() int64 {
	s.t.Helper()
	bin, store := os.Getenv("OCTOSERVE_BIN"), storeArg()
	if bin == "" || store == "" {
		s.t.Skip("OCTOSERVE_BIN and OCTOSERVE_STORE_ARG (or OCTOSERVE_ROOT) name the server's binary and store; `make test-e2e` sets them")
	}
	newest := s.waitUntilOld(bin, store)
	out := s.must(bin, "gc", store, "--min-age", "0")
	m := gcSummary.FindStringSubmatch(out)
	if m == nil {
		s.t.Fatalf("gc printed no summary:\n%s", out)
	}
	if cutoff := s.gcCutoff(out); !cutoff.After(newest) {
		s.t.Fatalf("gc's cutoff %s is not past the newest file (%s), though a dry run's just before was: it kept what the test stored",
			cutoff.Format(time.RFC3339Nano), newest.Format(time.RFC3339Nano))
	}
	n, _ := strconv.ParseInt(m[2], 10, 64)
	return n
}

// gcCutoff is the cutoff gc printed.
func (s *session) gcCutoff(out string) time.Time {
	s.t.Helper()
	m := gcCutoff.FindStringSubmatch(out)
	if m == nil {
		s.t.Fatalf("gc printed no cutoff:\n%s", out)
	}
	cutoff, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		s.t.Fatalf("gc printed a cutoff that is not RFC 3339: %v", err)
	}
	return cutoff
}

// waitUntilOld returns once a collection would count everything in the
// store so far as older than its cutoff. Even with --min-age 0, gc
// keeps what was written within its store's timestamp slack of its start
// (a file's time may lag the clock), and how long that is depends on the
// backend; so rather than sleep a guess, it runs `gc --dry-run`, which
// prints the cutoff it used, until that cutoff is past the newest
// modification time in the store (taken once, before the first dry run:
// what gc itself writes later does not count). It returns that newest
// modification time.
func (s *session) waitUntilOld(bin, store string) time.Time {
	s.t.Helper()
	newest := newestModTime(s.t, store)
	deadline := time.Now().Add(cutoffWait)
	for {
		cutoff := s.gcCutoff(s.must(bin, "gc", store, "--min-age", "0", "--dry-run"))
		if cutoff.After(newest) {
			return newest
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %v, gc's cutoff %s is still not past the newest object in %s (%s)", cutoffWait,
				cutoff.Format(time.RFC3339Nano), store, newest.Format(time.RFC3339Nano))
		}
		// The cutoff follows the clock: wait about the gap, then look again.
		time.Sleep(min(newest.Sub(cutoff), time.Second) + time.Millisecond)
	}
}

// newestModTime is the latest modification time of anything in the store
// storeArg names (--root=DIR or --config=FILE), opened as octoserve opens
// it.
func newestModTime(t *testing.T, storeArg string) time.Time {
	t.Helper()
	var where config.Storage
	if file, ok := strings.CutPrefix(storeArg, "--config="); ok {
		cfg, err := config.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		where = cfg.Storage
	} else {
		where.Root = strings.TrimPrefix(storeArg, "--root=")
	}
	ctx := context.Background()
	d, _, err := backend.Open(ctx, where)
	if err != nil {
		t.Fatal(err)
	}
	var newest time.Time
	err = d.Walk(ctx, "", func(e storage.Entry) error {
		if e.ModTime.After(newest) {
			newest = e.ModTime
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading modification times in %s: %v", storeArg, err)
	}
	return newest
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
