//go:build replicas

package replicas

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestReplicaKilledMidPush kills one replica with SIGKILL while clients
// push images through the balancer, in the middle of a request: an
// upload PATCH sent straight to it, whose body it has begun to read
// (the client sends the body only after the replica's "100 Continue",
// which Go's server sends when the handler first reads). Clients retry a
// request that fails (a 502 from the balancer, a connection cut) as real
// ones do: an upload from its start, a manifest PUT again. The
// interrupted upload is then resumed through the balancer: nothing of the
// half-sent chunk is visible, and the whole blob goes through. Once
// HAProxy has marked the replica down, no request may fail at all; and
// afterwards every acknowledged image pulls whole from each survivor and
// through the balancer, and verify finds the bucket consistent.
func TestReplicaKilledMidPush(t *testing.T) {
	victim := cl.replicas[1]
	var survivors []replica
	for _, r := range cl.replicas {
		if r != victim {
			survivors = append(survivors, r)
		}
	}
	rng := rand.New(rand.NewPCG(12, 5))
	pool := [][]byte{randomBytes(rng, 40<<10), randomBytes(rng, 24<<10), randomBytes(rng, 3<<10)}
	l := &killLedger{changed: make(chan struct{})}

	// Clients pushing through the balancer until each has pushed three
	// images started after the replica was marked down.
	const pushers, afterDown = 4, 3
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, pushers)
	for w := range pushers {
		p := &pusher{c: newClient(), base: cl.lbBase(), l: l, rng: rand.New(rand.NewPCG(12, uint64(200+w)))}
		wg.Go(func() { errs[w] = p.run(w, pool, stop) })
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	if err := l.waitAcked(func(n, _ int) bool { return n >= pushers }, 2*time.Minute); err != nil {
		t.Fatalf("before the kill: %v", err)
	}

	wit := startWitness(t, victim, rng)
	if err := syscall.Kill(victim.pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing %s (pid %d): %v", victim.name, victim.pid, err)
	}
	killedAt := time.Now()
	t.Logf("killed %s (pid %d) with an upload PATCH in the middle of its body; %d images acknowledged so far", victim.name, victim.pid, l.count())
	wit.abort(t)
	waitRefused(t, victim)
	if err := waitStatus(victim.name, "DOWN", time.Minute); err != nil {
		t.Fatal(err)
	}
	l.markDown(time.Now())
	t.Logf("HAProxy marked %s down %v after the kill", victim.name, time.Since(killedAt).Round(time.Millisecond))

	wit.resume(t, cl.lbBase(), l)
	if err := l.waitAcked(func(_, after int) bool { return after >= pushers*afterDown }, 2*time.Minute); err != nil {
		t.Fatalf("after the kill: %v", err)
	}
	close(stop)
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Errorf("pusher %d: %v", w, err)
		}
	}
	before, late := l.failures()
	for _, f := range late {
		t.Errorf("a request sent after HAProxy marked %s down failed: %s", victim.name, f)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d requests failed around the kill and were retried, e.g. %v", len(before), first(before, 3))

	c := newClient()
	acked := l.all()
	for _, p := range acked {
		for _, base := range append([]string{cl.lbBase()}, survivorBases(survivors)...) {
			if err := c.pull(base, p.repo, p.tag, p.img); err != nil {
				t.Errorf("%s:%s (acknowledged) from %s: %v", p.repo, p.tag, base, err)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d acknowledged images pull whole from the balancer and from %d survivors", len(acked), len(survivors))
	verifyStore(t)
}

func survivorBases(rs []replica) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.base())
	}
	return out
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// waitRefused returns once nothing accepts connections at r's address:
// the process is gone (its listener closed with it).
func waitRefused(t *testing.T, r replica) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		conn, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		if conn != nil {
			conn.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections a minute after SIGKILL", r.name)
		}
		time.Sleep(10 * time.Millisecond) // then look again
	}
}
