//go:build replicas

package replicas

import (
	"context"
	"errors"
	"fmt"
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
