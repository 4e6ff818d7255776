//go:build replicas

package replicas

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
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

// pushedImage is an image acknowledged (201 for its manifest) as repo:tag.
type pushedImage struct {
	repo, tag string
	img       image
	afterDown bool // started once the victim was marked down
}

// killLedger records what was acknowledged and which requests failed.
type killLedger struct {
	mu      sync.Mutex
	acked   []pushedImage
	downAt  time.Time     // zero until HAProxy marked the victim down
	before  []string      // failed requests sent before that
	late    []string      // failed requests sent after it: none may be
	changed chan struct{} // closed and replaced at each acknowledgement
	nAfter  int
}

func (l *killLedger) markDown(at time.Time) {
	l.mu.Lock()
	l.downAt = at
	l.mu.Unlock()
}

// down reports whether the victim was marked down before t.
func (l *killLedger) down(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.downAt.IsZero() && t.After(l.downAt)
}

func (l *killLedger) ack(p pushedImage) {
	l.mu.Lock()
	l.acked = append(l.acked, p)
	if p.afterDown {
		l.nAfter++
	}
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *killLedger) fail(sent time.Time, what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.downAt.IsZero() && sent.After(l.downAt) {
		l.late = append(l.late, what)
	} else {
		l.before = append(l.before, what)
	}
}

func (l *killLedger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *killLedger) all() []pushedImage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]pushedImage(nil), l.acked...)
}

func (l *killLedger) failures() (before, late []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.before...), append([]string(nil), l.late...)
}

// waitAcked returns once ok(acknowledged, acknowledged after down) holds.
func (l *killLedger) waitAcked(ok func(n, after int) bool, within time.Duration) error {
	deadline := time.After(within)
	for {
		l.mu.Lock()
		n, after, ch := len(l.acked), l.nAfter, l.changed
		l.mu.Unlock()
		if ok(n, after) {
			return nil
		}
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("%d images acknowledged (%d after the replica was marked down) in %v: not enough", n, after, within)
		}
	}
}

// errRetry marks a request that failed the way a dead replica makes
// requests fail: the client sends it again.
var errRetry = errors.New("failed; the client retries")

// pusher is a client pushing images through the balancer, retrying as
// real clients do.
type pusher struct {
	c    *client
	base string
	l    *killLedger
	rng  *rand.Rand
}

func (p *pusher) run(w int, pool [][]byte, stop <-chan struct{}) error {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		started := time.Now()
		repo := repoName(fmt.Sprintf("kill-%d", i%2))
		tag := fmt.Sprintf("w%d-%d", w, i)
		img := newImage(p.rng, repo+":"+tag, pool[p.rng.IntN(len(pool))])
		for _, b := range img.blobs {
			if err := p.retry(func() error { return p.upload(repo, b) }); err != nil {
				return fmt.Errorf("%s:%s: %w", repo, tag, err)
			}
		}
		if err := p.retry(func() error {
			_, err := p.send(http.StatusCreated, http.MethodPut, "/v2/"+repo+"/manifests/"+tag,
				map[string]string{"Content-Type": mtManifest}, img.manifest)
			return err
		}); err != nil {
			return fmt.Errorf("%s:%s: %w", repo, tag, err)
		}
		p.l.ack(pushedImage{repo: repo, tag: tag, img: img, afterDown: p.l.down(started)})
	}
}

// retry runs f until it succeeds or fails otherwise than errRetry, at
// most ten times.
func (p *pusher) retry(f func() error) error {
	var err error
	for range 10 {
		if err = f(); !errors.Is(err, errRetry) {
			return err
		}
	}
	return fmt.Errorf("ten tries: %w", err)
}

// upload sends blob b to repo: whole when small, else POST, two PATCHes
// and a PUT. A failed request restarts the upload, as docker and
// containerd do.
func (p *pusher) upload(repo string, b []byte) error {
	d := digestOf(b)
	octet := map[string]string{"Content-Type": "application/octet-stream"}
	if len(b) <= 16<<10 {
		_, err := p.send(http.StatusCreated, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d, octet, b)
		return err
	}
	r, err := p.send(http.StatusAccepted, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if err != nil {
		return err
	}
	half := len(b) / 2
	for _, part := range [][2]int{{0, half}, {half, len(b) - 1}} {
		r, err = p.send(http.StatusAccepted, http.MethodPatch, r.header.Get("Location"), map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", part[0], part[1]-1),
		}, b[part[0]:part[1]])
		if err != nil {
			return err
		}
	}
	u, err := location("", r.header.Get("Location"), d)
	if err != nil {
		return err
	}
	_, err = p.send(http.StatusCreated, http.MethodPut, u, octet, b[len(b)-1:])
	return err
}

// send makes one request through the balancer: errRetry (recorded) when
// it fails as requests to a dead replica do — no answer, or 502, 503 or
// 504 from the balancer — and a *statusError for any other unexpected
// answer, which no correct registry gives.
func (p *pusher) send(want int, method, path string, header map[string]string, body []byte) (reply, error) {
	sent := time.Now()
	r, err := p.c.do(method, p.base+path, header, body)
	switch {
	case err == nil && r.status == want:
		return r, nil
	case err != nil:
		p.l.fail(sent, fmt.Sprintf("%s %s: %v", method, path, err))
		return r, errRetry
	case r.status == http.StatusBadGateway || r.status == http.StatusServiceUnavailable || r.status == http.StatusGatewayTimeout:
		p.l.fail(sent, fmt.Sprintf("%s %s: %d", method, path, r.status))
		return r, errRetry
	}
	return r, &statusError{method: method, url: p.base + path, want: want, got: r}
}

// witness is an upload whose PATCH is in flight on the victim at the kill.
type witness struct {
	repo, loc string
	blob      []byte
	pw        *io.PipeWriter
	result    chan error
}

// startWitness opens an upload session (through the balancer), sends a
// PATCH of blob to victim directly and returns once half its body is
// sent — which, with Expect: 100-continue, means the replica's handler
// has begun reading it.
func startWitness(t *testing.T, victim replica, rng *rand.Rand) *witness {
	t.Helper()
	c := newClient()
	w := &witness{repo: repoName("kill-witness"), blob: randomBytes(rng, 1<<20), result: make(chan error, 1)}
	r, err := c.expect(http.StatusAccepted, http.MethodPost, cl.lbBase()+"/v2/"+w.repo+"/blobs/uploads/", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.loc = r.header.Get("Location")
	u, err := location(victim.base(), w.loc, "")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	w.pw = pw
	req, err := http.NewRequest(http.MethodPatch, u, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(w.blob))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("0-%d", len(w.blob)-1))
	req.Header.Set("Expect", "100-continue")
	tr := &http.Transport{Proxy: nil, ExpectContinueTimeout: time.Minute, DisableKeepAlives: true}
	go func() {
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			err = fmt.Errorf("answered %d %s", resp.StatusCode, b)
			if resp.StatusCode < 300 {
				err = fmt.Errorf("%w (a success, though the body was cut off)", err)
			}
			w.result <- err
			return
		}
		w.result <- nil // the expected outcome: no answer
	}()
	wrote := make(chan error, 1)
	go func() {
		_, err := pw.Write(w.blob[:len(w.blob)/2])
		wrote <- err
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("sending the witness PATCH's first half to %s: %v", victim.name, err)
		}
	case err := <-w.result:
		pr.CloseWithError(errors.New("answered"))
		t.Fatalf("the witness PATCH on %s was answered before its body was read: %v", victim.name, err)
	case <-time.After(time.Minute):
		t.Fatalf("%s did not read the witness PATCH's body within a minute", victim.name)
	}
	return w
}

// abort ends the witness PATCH's body once the replica is dead and checks
// it got no answer.
func (w *witness) abort(t *testing.T) {
	t.Helper()
	w.pw.CloseWithError(errors.New("the replica was killed"))
	if err := <-w.result; err != nil {
		t.Fatalf("the PATCH in flight at the kill: %v", err)
	}
}

// resume does what a client does after its PATCH failed: it asks any
// replica (through the balancer) where the upload stands — nothing of the
// half-sent chunk may be there — sends the chunk again and closes the
// upload, then pushes an image with that layer, which is acknowledged.
func (w *witness) resume(t *testing.T, lb string, l *killLedger) {
	t.Helper()
	c := newClient()
	u, err := location(lb, w.loc, "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.expect(http.StatusNoContent, http.MethodGet, u, nil, nil)
	if err != nil {
		t.Fatalf("the interrupted upload's status: %v", err)
	}
	if rg := r.header.Get("Range"); rg != "0-0" {
		t.Fatalf("the interrupted upload holds bytes (Range %q): part of the chunk cut off by the kill is visible", rg)
	}
	r, err = c.expect(http.StatusAccepted, http.MethodPatch, u, map[string]string{
		"Content-Type":  "application/octet-stream",
		"Content-Range": fmt.Sprintf("0-%d", len(w.blob)-1),
	}, w.blob)
	if err != nil {
		t.Fatalf("sending the chunk again: %v", err)
	}
	if rg, want := r.header.Get("Range"), fmt.Sprintf("0-%d", len(w.blob)-1); rg != want {
		t.Fatalf("after the chunk was sent again: Range %q, want %q", rg, want)
	}
	u, err = location(lb, r.header.Get("Location"), digestOf(w.blob))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.expect(http.StatusCreated, http.MethodPut, u, nil, nil); err != nil {
		t.Fatalf("closing the resumed upload: %v", err)
	}
	// An image whose layer is the resumed blob (not sent again).
	img := newImage(rand.New(rand.NewPCG(12, 6)), "witness", w.blob)
	rot := &rotation{bases: []string{lb}}
	for _, b := range img.blobs[:2] {
		if err := c.pushBlob(rot, w.repo, b, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.pushManifest(lb, w.repo, "resumed", img.manifest); err != nil {
		t.Fatal(err)
	}
	l.ack(pushedImage{repo: w.repo, tag: "resumed", img: img})
}
