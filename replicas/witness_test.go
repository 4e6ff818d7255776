//go:build replicas

package replicas

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"
)

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
