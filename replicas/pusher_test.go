//go:build replicas

package replicas

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

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
