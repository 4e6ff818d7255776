//go:build replicas

package replicas

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/storage"
)

var gcSummary = regexp.MustCompile(`removed (\d+) blobs \((\d+) bytes freed\)`)

// gcReport is what one `octoserve gc` run printed.
type gcReport struct {
	blobs, bytes int64
	out          string
}

// runGC runs `octoserve gc --config STORE --min-age 0`: a collector in a
// process of its own, sharing nothing with the replicas but the bucket.
func runGC(ctx context.Context, extra ...string) (gcReport, error) {
	args := append([]string{"gc", "--config", cl.storeConfig, "--min-age", "0"}, extra...)
	out, err := exec.CommandContext(ctx, cl.bin, args...).CombinedOutput()
	if err != nil {
		return gcReport{out: string(out)}, fmt.Errorf("octoserve gc: %w\n%s", err, out)
	}
	m := gcSummary.FindStringSubmatch(string(out))
	if m == nil {
		return gcReport{out: string(out)}, fmt.Errorf("octoserve gc printed no summary:\n%s", out)
	}
	blobs, _ := strconv.ParseInt(m[1], 10, 64)
	bytes, _ := strconv.ParseInt(m[2], 10, 64)
	return gcReport{blobs: blobs, bytes: bytes, out: string(out)}, nil
}

// verifyStore runs `octoserve verify --config STORE` and requires a
// consistent store.
func verifyStore(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, cl.bin, "verify", "--config", cl.storeConfig).CombinedOutput()
	if err != nil {
		t.Fatalf("octoserve verify: %v\n%s", err, out)
	}
	t.Logf("octoserve verify: %s", strings.TrimSpace(lastLine(string(out))))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// gcRuns counts finished collections, for pushers that wait for one.
type gcRuns struct {
	mu            sync.Mutex
	started, done int
	changed       chan struct{} // closed and replaced when done changes or the collector stops
	stopped       bool
}

func newGCRuns() *gcRuns { return &gcRuns{changed: make(chan struct{})} }

func (g *gcRuns) start() {
	g.mu.Lock()
	g.started++
	g.mu.Unlock()
}

func (g *gcRuns) finish(stopped bool) {
	g.mu.Lock()
	if !stopped {
		g.done++
	}
	g.stopped = g.stopped || stopped
	close(g.changed)
	g.changed = make(chan struct{})
	g.mu.Unlock()
}

// startedSoFar is how many collections have started.
func (g *gcRuns) startedSoFar() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.started
}

// waitDone returns once n collections finished.
func (g *gcRuns) waitDone(n int, within time.Duration) error {
	deadline := time.After(within)
	for {
		g.mu.Lock()
		done, stopped, ch := g.done, g.stopped, g.changed
		g.mu.Unlock()
		if done >= n {
			return nil
		}
		if stopped {
			return errors.New("the collector stopped")
		}
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("%d collections finished in %v, waiting for %d", done, within, n)
		}
	}
}

// TestGCBesideReplicaPushes runs `octoserve gc --min-age 0` back to back,
// as separate processes, while clients push images through the replicas
// — each request to the next replica, skipping blobs a HEAD finds, as
// real clients do — and delete some. Halfway, each client waits until a
// collection that started after its first delete has finished, so
// collections remove garbage while pushes go on however fast or slow the
// machine is. A push may be refused (MANIFEST_BLOB_UNKNOWN: a blob a HEAD
// found was collected before the manifest came) and is then pushed again,
// as a client does; but every image that got its 201 and was not deleted
// must pull whole from every replica afterwards, collections must in the
// end free the bytes only deleted images used, and verify must find the
// bucket consistent.
func TestGCBesideReplicaPushes(t *testing.T) {
	bases := cl.bases()
	n := len(bases)
	rng := rand.New(rand.NewPCG(12, 4))
	pool := make([][]byte, 6)
	for i := range pool {
		pool[i] = randomBytes(rng, 8<<10+rng.IntN(32<<10))
	}
	repos := []string{repoName("gc-a"), repoName("gc-b")}

	type pushed struct {
		repo, tag string
		img       image
	}
	var (
		mu        sync.Mutex
		kept      []pushed
		deleted   []pushed
		refused   int
		runs      = newGCRuns()
		stop      = make(chan struct{})
		collected = make(chan error, 1)
		freed     int64
		removed   int64
		reports   []string // each collection's output, for failure messages
	)
	go func() {
		for {
			select {
			case <-stop:
				runs.finish(true)
				collected <- nil
				return
			default:
			}
			runs.start()
			began := time.Now()
			rep, err := runGC(context.Background())
			reports = append(reports, fmt.Sprintf("collection %s to %s:\n%s", began.Format("15:04:05.000"), time.Now().Format("15:04:05.000"), rep.out))
			if err != nil {
				runs.finish(true)
				collected <- err
				return
			}
			freed += rep.bytes
			removed += rep.blobs
			runs.finish(false)
		}
	}()

	const perPusher = 8
	errs := atOnce(n, func(w int) error {
		c := newClient()
		rng := rand.New(rand.NewPCG(12, uint64(100+w)))
		rot := &rotation{bases: bases, next: w}
		firstDelete := -1
		for i := range perPusher {
			if i == perPusher/2 {
				if err := runs.waitDone(firstDelete+1, 2*time.Minute); err != nil {
					return fmt.Errorf("pusher %d, halfway: %w", w, err)
				}
			}
			repo := repos[(w+i)%len(repos)]
			tag := fmt.Sprintf("w%d-%d", w, i)
			img := newImage(rng, repo+":"+tag, pool[rng.IntN(len(pool))], pool[rng.IntN(len(pool))])
			tries, err := pushRetryingRefusals(c, rot, repo, tag, img)
			mu.Lock()
			refused += tries - 1
			mu.Unlock()
			if err != nil {
				return fmt.Errorf("pusher %d: %w", w, err)
			}
			p := pushed{repo, tag, img}
			if i%3 == 0 { // garbage for the collections
				if _, err := c.expect(http.StatusAccepted, http.MethodDelete, rot.pick()+"/v2/"+repo+"/manifests/"+img.digest, nil, nil); err != nil {
					return fmt.Errorf("pusher %d: %w", w, err)
				}
				if firstDelete < 0 {
					firstDelete = runs.startedSoFar()
				}
				mu.Lock()
				deleted = append(deleted, p)
				mu.Unlock()
				continue
			}
			mu.Lock()
			kept = append(kept, p)
			mu.Unlock()
		}
		return nil
	})
	close(stop)
	if err := <-collected; err != nil {
		t.Fatalf("a collection beside the pushes failed: %v", err)
	}
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d images kept and %d deleted through %d replicas; %d pushes refused and pushed again; %d collections beside them removed %d blobs (%d bytes)",
		len(kept), len(deleted), n, refused, runs.done, removed, freed)

	c := newClient()
	store := openStore(t)
	for _, p := range kept {
		for _, r := range cl.replicas {
			if err := c.pull(r.base(), p.repo, p.tag, p.img); err != nil {
				t.Errorf("%s:%s (201, not deleted) on %s: %v", p.repo, p.tag, r.name, err)
			}
		}
		if t.Failed() {
			for _, b := range p.img.blobs {
				t.Logf("blob %s: %s", digestOf(b), describeBlob(store, p.repo, digestOf(b)))
			}
			t.Fatalf("the collections' reports:\n%s", strings.Join(reports, "\n"))
		}
	}

	// Collections free what only deleted images used: their config and
	// own layer, once they are older than a collection's cutoff (the
	// store's clock has whole seconds).
	var garbage []string
	for _, p := range deleted {
		garbage = append(garbage, digestOf(p.img.blobs[0]), digestOf(p.img.blobs[1]), p.img.digest)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		left := present(t, store, garbage)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("2 minutes of collections after the pushes left %d blobs only deleted images used, e.g. %s", len(left), left[0])
		}
		rep, err := runGC(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		freed += rep.bytes
	}
	for _, p := range kept {
		if err := c.pull(cl.lbBase(), p.repo, p.tag, p.img); err != nil {
			t.Errorf("%s:%s after the last collection: %v", p.repo, p.tag, err)
		}
	}
	verifyStore(t)
}

// pushRetryingRefusals pushes img as a client does: blobs a HEAD finds are
// not sent again, and a push refused because a blob went missing
// (MANIFEST_BLOB_UNKNOWN, a collection removed it meanwhile) is pushed
// again, for up to two minutes. It returns how many tries it took.
func pushRetryingRefusals(c *client, rot *rotation, repo, tag string, img image) (int, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for tries := 1; ; tries++ {
		err := pushImageSkippingKnown(c, rot, repo, tag, img)
		var se *statusError
		if err == nil || !errors.As(err, &se) || se.got.status != http.StatusBadRequest ||
			!strings.Contains(string(se.got.body), "MANIFEST_BLOB_UNKNOWN") {
			return tries, err
		}
		if time.Now().After(deadline) {
			return tries, fmt.Errorf("%s:%s refused %d times in 2 minutes: %w", repo, tag, tries, err)
		}
	}
}

// pushImageSkippingKnown is pushImage with a HEAD before each blob.
func pushImageSkippingKnown(c *client, rot *rotation, repo, tag string, img image) error {
	for _, b := range img.blobs {
		r, err := c.do(http.MethodHead, rot.pick()+"/v2/"+repo+"/blobs/"+digestOf(b), nil, nil)
		if err != nil {
			return err
		}
		if r.status == http.StatusOK {
			continue
		}
		chunks := 0
		if len(b) > 16<<10 {
			chunks = 2
		}
		if err := c.pushBlob(rot, repo, b, chunks); err != nil {
			return err
		}
	}
	return c.pushManifest(rot.pick(), repo, tag, img.manifest)
}

// describeBlob says what the store holds of blob d and its link from repo
// (the layout of internal/registry/registry.go), for failure messages.
func describeBlob(store storage.Driver, repo, d string) string {
	hex := strings.TrimPrefix(d, "sha256:")
	bytesKey := "blobs/sha256/" + hex[:2] + "/" + hex
	var out []string
	for _, k := range []string{bytesKey, bytesKey + ".repos/" + strings.ReplaceAll(repo, "/", "~")} {
		info, err := store.Stat(context.Background(), k)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", k, err))
		} else {
			out = append(out, fmt.Sprintf("%s: %d bytes, written %s", k, info.Size, info.ModTime.Format("15:04:05")))
		}
	}
	return strings.Join(out, "; ")
}

// present returns the digests whose bytes are still in the store.
func present(t *testing.T, store storage.Driver, digests []string) []string {
	t.Helper()
	var left []string
	for _, d := range digests {
		hex := strings.TrimPrefix(d, "sha256:")
		_, err := store.Stat(context.Background(), "blobs/sha256/"+hex[:2]+"/"+hex)
		switch {
		case err == nil:
			left = append(left, d)
		case !errors.Is(err, storage.ErrNotFound):
			t.Fatal(err)
		}
	}
	return left
}
