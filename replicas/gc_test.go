//go:build replicas

package replicas

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

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
		if err := c.pushImageBlob(rot, repo, b); err != nil {
			return err
		}
	}
	return c.pushManifest(rot.pick(), repo, tag, img.manifest)
}
