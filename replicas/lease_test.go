//go:build replicas

package replicas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/storage"
)

// leasePath is where the housekeeping lease lives in the store
// (internal/registry/protocol.go).
const leasePath = "_gc/lease"

// TestTwoCollectorsOneLease starts two `octoserve gc` on the bucket the
// replicas serve, the second while the first holds the housekeeping
// lease: exactly one collects, and the other refuses, naming the holder.
// To have the second start while the first certainly holds the lease, the
// first is paused (SIGSTOP) once the lease in the bucket names it, and
// resumed after the second has answered; a first collector that finishes
// before the test saw its lease is simply run again.
func TestTwoCollectorsOneLease(t *testing.T) {
	store := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var (
		first *collector
		owner string
	)
	for attempt := 1; first == nil; attempt++ {
		if ctx.Err() != nil {
			t.Fatalf("in %d runs, no collector was seen holding the lease", attempt-1)
		}
		c := startCollector(t, ctx)
		holder, err := waitForLease(ctx, store, c)
		if err != nil {
			t.Fatal(err)
		}
		if holder == "" {
			if err := c.wait(); err != nil { // finished before its lease was seen
				t.Fatal(err)
			}
			continue
		}
		if err := c.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		// It may have released the lease between the look and the pause:
		// look again, now that it cannot change anything.
		if still, err := leaseOwner(ctx, store); err != nil || still != holder {
			if err != nil {
				t.Fatal(err)
			}
			_ = c.cmd.Process.Signal(syscall.SIGCONT)
			if err := c.wait(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		first, owner = c, holder
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = first.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()

	second := startCollector(t, ctx)
	err := second.wait()
	if err == nil {
		t.Fatalf("a second collection ran while the first (%s, paused) held the lease:\n%s", owner, second.out.String())
	}
	if out := second.out.String(); !strings.Contains(out, "holds the lease") || !strings.Contains(out, owner) {
		t.Fatalf("the second collector failed without naming the lease holder %q: %v\n%s", owner, err, out)
	}
	if err := first.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	if err := first.wait(); err != nil {
		t.Fatalf("the first collector, resumed: %v", err)
	}
	if !regexp.MustCompile(`would remove \d+ blobs`).MatchString(first.out.String()) {
		t.Fatalf("the first collector printed no summary:\n%s", first.out.String())
	}
	t.Logf("the lease holder (%s) collected; the other said: %s", owner, strings.TrimSpace(lastLine(second.out.String())))
	if _, err := store.Stat(context.Background(), leasePath); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the lease is still there after both collectors ended: %v", err)
	}
}

// collector is one `octoserve gc` process.
type collector struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

func startCollector(t *testing.T, ctx context.Context) *collector {
	t.Helper()
	c := &collector{out: &bytes.Buffer{}, done: make(chan error, 1)}
	c.cmd = exec.CommandContext(ctx, cl.bin, "gc", "--config", cl.storeConfig, "--min-age", "0", "--dry-run")
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	return c
}

// wait returns the process's exit: nil for status 0.
func (c *collector) wait() error {
	if err := <-c.done; err != nil {
		return fmt.Errorf("%w: %s", err, c.out.String())
	}
	return nil
}

// waitForLease polls the lease in the store until it names c's process,
// and returns its owner; "" when c exited first.
func waitForLease(ctx context.Context, store storage.Driver, c *collector) (string, error) {
	pid := "pid " + strconv.Itoa(c.cmd.Process.Pid)
	for {
		owner, err := leaseOwner(ctx, store)
		if err != nil {
			return "", err
		}
		if strings.HasSuffix(owner, pid) {
			return owner, nil
		}
		select {
		case err := <-c.done:
			c.done <- err // for wait
			return "", nil
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(2 * time.Millisecond): // then look again
		}
	}
}

// leaseOwner is the owner the lease in the store names ("" when there is
// none).
func leaseOwner(ctx context.Context, store storage.Driver) (string, error) {
	b, err := store.GetContent(ctx, leasePath)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var rec struct {
		Owner string `json:"owner"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return "", fmt.Errorf("the lease is not a lease record: %w", err)
	}
	return rec.Owner, nil
}
