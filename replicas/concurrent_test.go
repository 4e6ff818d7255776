//go:build replicas

package replicas

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
)

// TestSameBlobAndTagThroughEveryReplica pushes one blob into two
// repositories through every replica at the same moment — whole and in
// chunks whose requests go to different replicas — and then different
// manifests to one tag through every replica at the same moment. Every
// 201 is honoured: the blob and every acknowledged manifest are served,
// byte for byte, by every replica; and as soon as the last push returned,
// every replica (and the balancer) resolves the tag to the same digest,
// one of those pushed.
func TestSameBlobAndTagThroughEveryReplica(t *testing.T) {
	c := newClient()
	bases := cl.bases()
	n := len(bases)
	rng := rand.New(rand.NewPCG(12, 2))
	repos := []string{repoName("same-a"), repoName("same-b")}
	blob := randomBytes(rng, 1<<20+rng.IntN(1<<20))
	d := digestOf(blob)

	// Every replica, every repository, whole and chunked (each chunk on
	// the next replica): 4n uploads of the same bytes at once.
	type upload struct {
		repo   string
		rot    *rotation
		chunks int
		what   string
	}
	var uploads []upload
	for i := range n {
		for _, repo := range repos {
			for _, chunks := range []int{0, 3} {
				rot := &rotation{bases: bases, next: i}
				uploads = append(uploads, upload{repo, rot, chunks, fmt.Sprintf("%s via %s (%d chunks)", repo, cl.replicas[i].name, chunks)})
			}
		}
	}
	errs := atOnce(len(uploads), func(i int) error {
		u := uploads[i]
		if err := c.pushBlob(u.rot, u.repo, blob, u.chunks); err != nil {
			return fmt.Errorf("%s: %w", u.what, err)
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, repo := range repos {
		for _, r := range cl.replicas {
			got, err := c.expect(http.StatusOK, http.MethodGet, r.base()+"/v2/"+repo+"/blobs/"+d, nil, nil)
			if err != nil {
				t.Fatalf("blob in %s on %s: %v", repo, r.name, err)
			}
			if !bytes.Equal(got.body, blob) {
				t.Fatalf("blob in %s on %s: the bytes differ from those pushed", repo, r.name)
			}
		}
	}

	// Different manifests to one tag, two through each replica, at once.
	repo := repos[0]
	var images []image
	for i := range 2 * n {
		img := newImage(rng, fmt.Sprintf("same tag %d", i), blob)
		for _, b := range img.blobs[:2] { // config and own layer; blob is there
			if err := c.pushBlob(&rotation{bases: bases, next: i}, repo, b, 0); err != nil {
				t.Fatal(err)
			}
		}
		images = append(images, img)
	}
	errs = atOnce(len(images), func(i int) error {
		return c.pushManifest(bases[i%n], repo, "latest", images[i].manifest)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("manifest %d via %s: %v", i, cl.replicas[i%n].name, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	var seen []string
	for _, base := range append(bases, cl.lbBase()) {
		got, err := c.tagDigest(base, repo, "latest")
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, got)
	}
	if distinct := slices.Compact(slices.Sorted(slices.Values(seen))); len(distinct) != 1 {
		t.Fatalf("right after the pushes, the replicas and the balancer resolve the tag to different digests: %v", seen)
	}
	if !slices.ContainsFunc(images, func(img image) bool { return img.digest == seen[0] }) {
		t.Fatalf("the tag resolves to %s, none of the manifests pushed", seen[0])
	}
	for i, img := range images {
		for _, r := range cl.replicas {
			if err := c.pull(r.base(), repo, img.digest, img); err != nil {
				t.Errorf("acknowledged manifest %d on %s: %v", i, r.name, err)
			}
		}
	}
	t.Logf("%d uploads of one blob and %d pushes of one tag at once over %d replicas; the tag is %s everywhere", len(uploads), len(images), n, seen[0])
}

// atOnce runs f(0..k-1) in k goroutines released together, and returns
// what each returned.
func atOnce(k int, f func(i int) error) []error {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, k)
	)
	for i := range k {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}
