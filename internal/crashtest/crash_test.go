package crashtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// repos are the repositories pushed to; several pushers share each.
var repos = []string{"crash/alpha", "crash/beta", "crash/nested/gamma"}

// TestKill9 is issue 6's crash test: rounds of concurrent pushes, each
// ended by SIGKILL at a random moment, then a restart on the same root and
// a check that everything acknowledged is served byte-identical and that
// nothing partial is visible (see checker.run); finally `octoserve verify`
// (when the binary has it) must find the root consistent.
//
// Each round's pushers first do what a client does after a failed push:
// resume the upload session that was open at the kill (GET its status,
// PATCH the rest, PUT), then push again the image that was in flight, so
// whatever the crash left behind is reused, not just left alone.
//
// OCTOSERVE_BIN        the binary to test (required; the test skips without it)
// CRASH_ROUNDS         kill/restart rounds (default 20)
// CRASH_WORKERS        concurrent pushers (default 4)
// CRASH_SEED           seed of the image contents and choices (default: random, logged)
// CRASH_KEEP_ROOT      keep the storage root after the test (its path is logged)
// CRASH_STORAGE_CONFIG a config file naming the store to use instead of a root (S3)
// CRASH_KILL_SCALE     multiply the 50–400 ms before each kill (default 1; S3: slower)
func TestKill9(t *testing.T) {
	bin := os.Getenv("OCTOSERVE_BIN")
	if bin == "" {
		t.Skip("crash test skipped: set OCTOSERVE_BIN to an octoserve binary (`make test-crash` builds bin/octoserve and runs it)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("OCTOSERVE_BIN: %v", err)
	}
	rounds := envInt(t, "CRASH_ROUNDS", 20)
	workers := envInt(t, "CRASH_WORKERS", 4)
	killScale := envInt(t, "CRASH_KILL_SCALE", 1)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	root := t.TempDir()
	if os.Getenv("CRASH_KEEP_ROOT") != "" {
		var err error
		if root, err = os.MkdirTemp("", "octoserve-crash-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("storage root kept at %s", root)
	}
	st := openStore(t, root)
	t.Logf("%d rounds, %d pushers, CRASH_SEED=%d, %s", rounds, workers, seed, st.where)

	tr := &http.Transport{
		Proxy:               nil, // loopback only, whatever the environment says
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 2 * workers,
		DisableCompression:  true,
	}
	client := &http.Client{
		Transport:     tr,
		Timeout:       requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(tr.CloseIdleConnections)

	rng := rand.New(rand.NewPCG(seed, 0))
	var shared [][]byte
	for i := range 6 {
		b := make([]byte, 1<<10+rng.IntN(32<<10))
		_, _ = rand.NewChaCha8(seedBytes(seed, 1000+i)).Read(b)
		shared = append(shared, b)
	}

	l := newLedger()
	start := time.Now()
	srv := startServer(t, bin, st.arg)
	retries := make([]*imagePlan, workers)
	resumes := make([]*openUpload, workers)
	var resumed, resumeGone int
	for round := 1; round <= rounds; round++ {
		if dl, ok := t.Deadline(); ok && time.Until(dl) < 30*time.Second {
			t.Fatalf("stopping after %d of %d rounds: the go test deadline is near", round-1, rounds)
		}
		base, err := url.Parse(srv.base())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		pushers := make([]*pusher, workers)
		for w := range workers {
			p := &pusher{
				c: client, base: base, l: l,
				rng:   rand.New(rand.NewPCG(seed, uint64(round*1000+w))),
				bytes: rand.NewChaCha8(seedBytes(seed, round*1000+w)),
				round: round, worker: w, repos: repos, shared: shared,
				retry: retries[w], resume: resumes[w],
			}
			pushers[w] = p
			wg.Go(func() { p.run(ctx) })
		}
		if round == 1 {
			// However slow the machine, the first kill comes only after an
			// image got its tag, so the test always checks acknowledged
			// images; later kills may come at any moment of a round.
			select {
			case <-l.tagged:
			case <-srv.done:
			case <-time.After(startTimeout):
				t.Fatalf("round 1: no tag acknowledged within %v; octoserve's last log lines:\n%s", startTimeout, srv.log.last(40))
			}
		}
		// The kill's moment: random, not a synchronisation.
		delay := time.Duration(50+rng.IntN(351)) * time.Millisecond
		delay *= time.Duration(killScale)
		time.Sleep(delay)
		select {
		case <-srv.done:
			t.Fatalf("round %d: octoserve exited on its own (%v) before the kill; its last log lines:\n%s", round, srv.err, srv.log.last(40))
		default:
		}
		srv.kill() // SIGKILL while requests are in flight
		cancel()
		wg.Wait()
		tr.CloseIdleConnections()
		for w, p := range pushers {
			retries[w], resumes[w] = p.current, p.upload
			resumed += p.resumed
			resumeGone += p.resumeGone
		}

		killed := srv
		srv = startServer(t, bin, st.arg)
		checkStart := time.Now()
		k := newChecker(client, srv.base(), st.d, l)
		// Each round checks what the last two rounds pushed (a retry
		// re-pushes what the previous round had in flight); every tenth
		// round and the last check everything pushed since the start.
		scope := "full"
		if round%10 != 0 && round != rounds {
			k.since = round - 1
			scope = "new "
		}
		k.run()
		l.mu.Lock()
		st := *l.stats(round)
		protocol := append([]string(nil), l.protocol...)
		l.mu.Unlock()
		if len(protocol) > 0 || len(k.failures) > 0 {
			var msg strings.Builder
			fmt.Fprintf(&msg, "round %d (killed %v into it, CRASH_SEED=%d):\n", round, delay, seed)
			for _, p := range protocol {
				fmt.Fprintf(&msg, "  during the pushes: %s\n", p)
			}
			for _, f := range k.failures {
				fmt.Fprintf(&msg, "  after the restart: %s\n", f)
			}
			fmt.Fprintf(&msg, "the killed octoserve's last log lines:\n%s\n", killed.log.last(15))
			fmt.Fprintf(&msg, "the restarted octoserve's log lines other than requests:\n%s", srv.log.first())
			t.Fatal(msg.String())
		}
		b, m, tg := l.totals()
		t.Logf("round %2d: killed after %3dms; acknowledged %3d blobs %3d manifests %3d tags (totals %4d/%4d/%4d); never acknowledged: %2d visible and whole, %2d absent; %s check: %4d requests in %v",
			round, delay.Milliseconds(), st.blobsAcked, st.manifestsAcked, st.tagsAcked, b, m, tg, k.inflightVisible, k.inflightAbsent, scope, k.requests, time.Since(checkStart).Round(time.Millisecond))
	}
	srv.stop(t)
	b, m, tg := l.totals()
	t.Logf("upload sessions open at a kill: %d resumed after the restart from the size the registry reported, %d finished by the PUT in flight at the kill (session 404, blob stored)", resumed, resumeGone)
	verify(t, bin, st.arg)
	t.Logf("%d rounds in %v; %d blobs, %d manifests, %d tags acknowledged and served back intact", rounds, time.Since(start).Round(time.Millisecond), b, m, tg)
}

// verify runs `octoserve verify` on the store (storeArg: --root=DIR or
// --config=FILE) when the binary has that subcommand (it lists it in its
// usage) and requires exit status 0.
func verify(t *testing.T, bin, storeArg string) {
	t.Helper()
	usage, _ := exec.Command(bin, "help").CombinedOutput()
	if !regexp.MustCompile(`(?m)^\s*octoserve verify\b`).Match(usage) {
		t.Logf("octoserve verify not available in %s (its usage does not list it); skipped the final fsck", bin)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), verifyTimeout)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, bin, "verify", storeArg).CombinedOutput()
	if err != nil {
		t.Errorf("octoserve verify %s: %v; output:\n%s", storeArg, err, out)
		return
	}
	t.Logf("octoserve verify: consistent (%v): %s", time.Since(start).Round(time.Millisecond), lastLine(out))
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > 10000 {
		t.Fatalf("%s=%q: want a whole number from 1 to 10000", name, s)
	}
	return v
}

func seedBytes(seed uint64, n int) [32]byte {
	var b [32]byte
	for i := range 8 {
		b[i] = byte(seed >> (8 * i))
		b[8+i] = byte(uint64(n) >> (8 * i))
	}
	return b
}
