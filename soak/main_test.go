//go:build soak

// Package soak runs octoserve under hostile load (make test-soak, which
// starts the server with scripts/lib/registry.sh and runs `octoserve
// verify` afterwards). Legitimate clients — crane and a Go client —
// push and pull while hostile ones, each from its own loopback address
// (all of 127.0.0.0/8 is loopback on Linux), send slow bodies, flood the
// login, list a huge set of referrers and open upload sessions without
// end. The test fails if a legitimate client sees any error, if the
// server's peak memory or open descriptors pass the stated bounds, if a
// hostile connection is neither answered nor closed, if a flooding
// address gets more passwords checked than the failed-login limit allows,
// or if an attack did not happen at all (a soak whose attackers silently
// did nothing proves nothing).
package soak

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// config is what scripts/test-soak.sh passes in the environment.
type config struct {
	addr        string // host:port of the server
	pid         int    // its process, for /proc
	duration    time.Duration
	maxConns    int           // the server's http.maxConnsPerClient
	bodyTimeout time.Duration // the server's http.bodyTimeout
	alicePW     string        // alice: pull, push, delete on legit/**; pull, push on public/**
	malloryPW   string        // mallory: pull, push on hostile/** and public/**
	crane       string
	// The server's auth.failedLogins.
	loginBurst     int
	loginPerMinute float64
}

func loadConfig(t *testing.T) config {
	t.Helper()
	get := func(k string) string {
		v := os.Getenv(k)
		if v == "" {
			t.Fatalf("%s is not set: run make test-soak", k)
		}
		return v
	}
	atoi := func(k string) int {
		n, err := strconv.Atoi(get(k))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return n
	}
	dur := func(k string) time.Duration {
		d, err := time.ParseDuration(get(k))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return d
	}
	return config{
		addr:        get("SOAK_ADDR"),
		pid:         atoi("SOAK_PID"),
		duration:    dur("SOAK_DURATION"),
		maxConns:    atoi("SOAK_MAX_CONNS_PER_CLIENT"),
		bodyTimeout: dur("SOAK_BODY_TIMEOUT"),
		alicePW:     get("SOAK_ALICE_PASSWORD"),
		malloryPW:   get("SOAK_MALLORY_PASSWORD"),
		crane:       get("SOAK_CRANE"),

		loginBurst:     atoi("SOAK_FAILED_LOGIN_BURST"),
		loginPerMinute: float64(atoi("SOAK_FAILED_LOGIN_PER_MINUTE")),
	}
}

// The client addresses: legitimate clients use 127.0.0.1, each attack its own.
const (
	legitAddr = "127.0.0.1"
)

var (
	slowBodyAddrs   = []string{"127.0.0.2", "127.0.0.3"}
	loginFloodAddrs = []string{"127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"}
	referrersAddr   = "127.0.0.8"
	sessionsAddr    = "127.0.0.9"
)

// clientAddrs is how many addresses connect: the server may hold
// maxConns connections for each.
var clientAddrs = 1 + len(slowBodyAddrs) + len(loginFloodAddrs) + 2

// Bounds. Descriptors: a full quota of connections for every client
// address plus the files and sockets of the server itself. Memory: the
// server holds a manifest cache of 64 MiB, a few large manifests being
// pushed and a referrers page (a 2 MiB entry and the one after it) per
// concurrent listing; before the referrers list was paged, one listing of
// this test's referrer set allocated over 200 MiB, and six run at once.
const (
	fdReserve   = 64
	maxRSSBytes = 512 << 20
)

// tally counts outcomes by name and keeps the first failures.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
	fails  []string
	nfails int
}

func newTally() *tally { return &tally{counts: map[string]int{}} }

func (c *tally) add(name string) {
	c.mu.Lock()
	c.counts[name]++
	c.mu.Unlock()
}

func (c *tally) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[name]
}

func (c *tally) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nfails++
	if len(c.fails) < 20 {
		c.fails = append(c.fails, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

func (c *tally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []string
	for k := range c.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "    %-44s %8d\n", k, c.counts[k])
	}
	return b.String()
}

func TestSoak(t *testing.T) {
	cfg := loadConfig(t)
	mon := startMonitor(t, cfg.pid)
	legit, hostile := newTally(), newTally()

	// Before the clock starts, while nothing floods the server: the
	// attackers' own uploads (slow-body sessions, the referrer set) and a
	// first login of each user, so that every attack and client runs for
	// the whole duration even on a loaded machine.
	sessions := map[string][]string{}
	for _, a := range slowBodyAddrs {
		s, err := slowSessions(cfg, a)
		if err != nil {
			t.Fatalf("setting up the slow-body attack: %v", err)
		}
		sessions[a] = s
	}
	huge, err := pushHugeReferrers(cfg, referrersAddr)
	if err != nil {
		t.Fatalf("pushing the huge referrer set: %v", err)
	}
	if _, _, err := newClient(cfg, legitAddr, "alice", cfg.alicePW, 1).expect(context.Background(), 200, "GET", "/v2/", nil, nil); err != nil {
		t.Fatalf("alice's login: %v", err)
	}

	ctx, stop := context.WithTimeout(context.Background(), cfg.duration)
	defer stop()

	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	for w := 0; w < 2; w++ {
		run(func() { craneWorker(ctx, t, cfg, w, legit) })
	}
	run(func() { goClientWorker(ctx, cfg, legit) })
	for _, a := range slowBodyAddrs {
		run(func() { slowBodies(ctx, cfg, a, sessions[a], hostile) })
	}
	for _, a := range loginFloodAddrs {
		run(func() { loginFlood(ctx, cfg, a, hostile) })
	}
	run(func() { referrerFlood(ctx, cfg, referrersAddr, huge, hostile) })
	run(func() { sessionFlood(ctx, cfg, sessionsAddr, hostile) })
	wg.Wait()
	peakRSS, peakFDs := mon.stop()

	fdBound := clientAddrs*cfg.maxConns + fdReserve
	t.Logf("after %v:\n  legitimate clients:\n%s  hostile clients:\n%s  server: peak RSS %d MiB (bound %d MiB), peak open descriptors %d (bound %d = %d addresses x %d + %d), %d samples",
		cfg.duration, legit, hostile, peakRSS>>20, maxRSSBytes>>20, peakFDs, fdBound, clientAddrs, cfg.maxConns, fdReserve, mon.samples)
	if legit.nfails > 0 {
		t.Errorf("legitimate clients saw %d errors; the first:\n  %s", legit.nfails, strings.Join(legit.fails, "\n  "))
	}
	if hostile.nfails > 0 {
		t.Errorf("the server mishandled %d hostile requests; the first:\n  %s", hostile.nfails, strings.Join(hostile.fails, "\n  "))
	}
	if peakRSS > maxRSSBytes {
		t.Errorf("server peak RSS %d MiB, over the bound of %d MiB", peakRSS>>20, maxRSSBytes>>20)
	}
	if peakFDs > fdBound {
		t.Errorf("server held %d descriptors, over the bound of %d", peakFDs, fdBound)
	}
	// Every attack and every legitimate client must have run.
	for _, need := range []struct {
		c    *tally
		name string
	}{
		{legit, "crane push+pull"},
		{legit, "go client round"},
		{hostile, "slow body: 408 after the body timeout"},
		{hostile, "slow body: refused at once (401), closed"},
		{hostile, "slow body: connection closed on accept (per-client bound)"},
		{hostile, "login flood: 401"},
		{hostile, "login flood: 429"},
		{hostile, "referrers: full walks"},
		{hostile, "slow body: trickled, then 408"},
		{hostile, "upload sessions: 202 opened"},
	} {
		if need.c.count(need.name) == 0 {
			t.Errorf("%q never happened: the soak did not exercise it", need.name)
		}
	}
}
