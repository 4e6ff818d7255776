package gc_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
	"github.com/octoserve/octoserve/internal/storage/s3"
	"github.com/octoserve/octoserve/internal/storage/s3/s3test"
)

// TestGCBesideLiveServer is issue 6's "safe while the server is serving":
// clients push images over HTTP — uploading, mounting, or skipping blobs a
// HEAD says the repository has, as real clients do — and delete some,
// while collections with a tiny grace period run back to back. The
// collector is a second Registry on its own storage driver over the same
// root, sharing no memory with the server: exactly `octoserve gc` run as
// a separate process beside `octoserve serve`. The server's disk is slow
// to write manifest links, so pushes straddle collections. A push may be refused (a
// blob a HEAD found was collected before the manifest came: the client
// pushes again), but every image whose manifest got its 201 and was not
// deleted must pull completely afterwards, and verify must find the store
// consistent. Halfway through, each client waits until a collection has
// removed some of what was deleted, so that collections remove garbage
// while pushes go on however fast or slow the machine is.
//
// It runs on a directory and, when the S3 test server is there (make
// test-s3 starts one: internal/storage/s3/s3test), on a bucket: there
// the server and the collector are two drivers on one key prefix, as two
// replicas are.
func TestGCBesideLiveServer(t *testing.T) {
	t.Run("filesystem", func(t *testing.T) {
		root := t.TempDir()
		gcBesideLiveServer(t, func() (storage.Driver, error) { return filesystem.New(root) })
	})
	t.Run("s3", func(t *testing.T) {
		srv := s3test.Require(t)
		cfg := s3.Config{Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket, PathStyle: true,
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Prefix: s3test.Prefix(t)}
		var first *s3.Driver
		t.Cleanup(func() {
			if first != nil {
				if err := first.DeleteAll(context.Background(), ""); err != nil {
					t.Errorf("emptying the test prefix: %v", err)
				}
			}
		})
		gcBesideLiveServer(t, func() (storage.Driver, error) {
			d, err := s3.New(context.Background(), cfg)
			if first == nil {
				first = d
			}
			return d, err
		})
	})
}

// gcBesideLiveServer is TestGCBesideLiveServer on the store open opens,
// once for the server and once for the collector.
func gcBesideLiveServer(t *testing.T, open func() (storage.Driver, error)) {
	serveDriver, err := open()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(registry.New(&slowDisk{Driver: serveDriver}, registry.Options{})))
	defer srv.Close()
	gcDriver, err := open()
	if err != nil {
		t.Fatal(err)
	}
	collector := registry.New(gcDriver, registry.Options{})

	// A pool of layers shared by every image in every repository, so
	// uploads, mounts and collections of one digest race each other.
	pool := make([][]byte, 8)
	for i := range pool {
		pool[i] = bytes.Repeat([]byte(fmt.Sprintf("shared layer %d ", i)), 200+i*50)
	}
	repos := []string{"live/a", "live/b", "live/c"}

	var (
		mu              sync.Mutex
		acked           = map[string]pushed{} // repo:tag -> image, not deleted
		refused         atomic.Int64
		stop            = make(chan struct{})
		removedSome     = make(chan struct{}) // closed once a collection removed a blob
		collectorExited = make(chan struct{})
		gcErr           = make(chan error, 1)
		runs            int
		freed           int64
		removed         int
		workers         sync.WaitGroup
		failures        = make(chan error, 8)
	)
	go func() {
		defer close(collectorExited)
		for {
			select {
			case <-stop:
				gcErr <- nil
				return
			default:
			}
			report, err := collector.CollectGarbage(context.Background(), registry.GCOptions{MinAge: 30 * time.Millisecond})
			if err != nil {
				gcErr <- err
				return
			}
			runs++
			if removed == 0 && len(report.Blobs) > 0 {
				close(removedSome)
			}
			freed += report.BytesFreed
			removed += len(report.Blobs)
		}
	}()

	for w := range 4 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			c := &client{base: srv.URL, rng: rand.New(rand.NewPCG(uint64(w), 6))}
			for i := range 10 {
				if i == 5 { // images 0 and 3 deleted by now
					select {
					case <-removedSome:
					case <-collectorExited:
						return // the collection's error is reported below
					case <-time.After(time.Minute):
						failures <- fmt.Errorf("worker %d: no collection removed anything in a minute after the first deletes", w)
						return
					}
				}
				repo := repos[c.rng.IntN(len(repos))]
				tag := fmt.Sprintf("w%d-%d", w, i)
				img := c.newImage(pool, fmt.Sprintf("own layer of %s:%s", repo, tag))
				deadline := time.Now().Add(pushRetryFor)
				var err error
				for tries := 1; ; tries++ {
					if err = c.push(repo, tag, img); err == nil {
						break
					}
					refused.Add(1)
					if time.Now().After(deadline) {
						err = fmt.Errorf("%s:%s refused %d times in %v: %w", repo, tag, tries, pushRetryFor, err)
						break
					}
				}
				if err != nil {
					failures <- err
					return
				}
				if i%3 == 0 { // garbage for the collector
					if err := c.delete(repo, img.digest); err != nil {
						failures <- err
						return
					}
					continue
				}
				mu.Lock()
				acked[repo+":"+tag] = img
				mu.Unlock()
			}
		}()
	}
	workers.Wait()
	close(stop)
	if err := <-gcErr; err != nil {
		t.Fatalf("collection failed: %v", err)
	}
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	c := &client{base: srv.URL}
	for ref, img := range acked {
		repo, tag, _ := cutLast(ref, ":")
		if err := c.pull(repo, tag, img); err != nil {
			t.Errorf("%s (pushed, 201, not deleted): %v", ref, err)
		}
	}
	v, err := collector.Verify(context.Background(), registry.VerifyOptions{})
	if err != nil || len(v.Problems) > 0 {
		t.Fatalf("verify: %v %v", err, v.Problems)
	}
	t.Logf("%d images pushed and kept, %d pushes refused and retried; %d collections beside them removed %d blobs (%d bytes)",
		len(acked), refused.Load(), runs, removed, freed)
}

// pushRetryFor bounds how long a refused push is retried: a client pushes
// again until it gets through, and on a loaded machine several tries in a
// row may each be slower than the collections' grace period.
const pushRetryFor = 2 * time.Minute

// slowDisk takes up to 100ms — longer than the collections' grace period
// — to write a manifest's revision link, as a busy disk may: a push then
// spans a collection's start, between checking the blobs it references and
// linking the manifest that keeps them.
type slowDisk struct {
	storage.Driver
	mu  sync.Mutex
	rng *rand.Rand
}

func (s *slowDisk) PutContent(ctx context.Context, p string, b []byte) error {
	if strings.Contains(p, "/_manifests/revisions/") {
		s.mu.Lock()
		if s.rng == nil {
			s.rng = rand.New(rand.NewPCG(1, 2))
		}
		d := time.Duration(s.rng.IntN(100)) * time.Millisecond
		s.mu.Unlock()
		time.Sleep(d)
	}
	return s.Driver.PutContent(ctx, p, b)
}

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// pushed is an image: its blobs (config first) and manifest.
type pushed struct {
	blobs    [][]byte
	manifest []byte
	digest   string
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// client speaks the distribution spec's push and pull flows.
type client struct {
	base string
	rng  *rand.Rand
}

func (c *client) newImage(pool [][]byte, own string) pushed {
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","comment":%q}`, own))
	blobs := [][]byte{cfg, []byte(own)}
	for _, i := range c.rng.Perm(len(pool))[:1+c.rng.IntN(3)] {
		blobs = append(blobs, pool[i])
	}
	desc := func(mt string, b []byte) map[string]any {
		return map[string]any{"mediaType": mt, "digest": digestOf(b), "size": len(b)}
	}
	var layers []any
	for _, b := range blobs[1:] {
		layers = append(layers, desc("application/vnd.oci.image.layer.v1.tar", b))
	}
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": registry.MediaTypeOCIManifest,
		"config": desc("application/vnd.oci.image.config.v1+json", cfg), "layers": layers})
	return pushed{blobs: blobs, manifest: m, digest: digestOf(m)}
}

func (c *client) do(method, path string, body []byte, contentType string) (*http.Response, []byte, error) {
	u := path
	if path[0] == '/' {
		u = c.base + path
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if method == http.MethodGet || method == http.MethodHead {
		req.Header.Set("Accept", registry.MediaTypeOCIManifest)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func want(resp *http.Response, body []byte, status int, what string) error {
	if resp.StatusCode != status {
		return fmt.Errorf("%s: status %d, want %d: %s", what, resp.StatusCode, status, body)
	}
	return nil
}

// push sends the image's blobs — skipped when a HEAD finds them, mounted
// from another repository or uploaded, chunked or whole — then its
// manifest by tag.
func (c *client) push(repo, tag string, img pushed) error {
	for _, b := range img.blobs {
		d := digestOf(b)
		resp, _, err := c.do(http.MethodHead, "/v2/"+repo+"/blobs/"+d, nil, "")
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusOK {
			continue // the registry has it: a client does not send it again
		}
		switch c.rng.IntN(3) {
		case 0: // mount from wherever it may be, else upload into the session
			resp, body, err := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?mount="+d, nil, "")
			if err != nil {
				return err
			}
			if resp.StatusCode == http.StatusCreated {
				continue
			}
			if err := want(resp, body, http.StatusAccepted, "mount "+d); err != nil {
				return err
			}
			if err := c.finish(resp.Header.Get("Location"), d, b); err != nil {
				return err
			}
		case 1: // session: a PATCH, then the rest with the PUT
			resp, body, err := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, "")
			if err != nil {
				return err
			}
			if err := want(resp, body, http.StatusAccepted, "start upload"); err != nil {
				return err
			}
			half := len(b) / 2
			resp, body, err = c.do(http.MethodPatch, resp.Header.Get("Location"), b[:half], "application/octet-stream")
			if err != nil {
				return err
			}
			if err := want(resp, body, http.StatusAccepted, "patch "+d); err != nil {
				return err
			}
			if err := c.finish(resp.Header.Get("Location"), d, b[half:]); err != nil {
				return err
			}
		default: // monolithic
			resp, body, err := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d, b, "application/octet-stream")
			if err != nil {
				return err
			}
			if err := want(resp, body, http.StatusCreated, "upload "+d); err != nil {
				return err
			}
		}
	}
	resp, body, err := c.do(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, img.manifest, registry.MediaTypeOCIManifest)
	if err != nil {
		return err
	}
	return want(resp, body, http.StatusCreated, "manifest "+repo+":"+tag)
}

func (c *client) finish(location, d string, rest []byte) error {
	u, err := url.Parse(location)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", d)
	u.RawQuery = q.Encode()
	resp, body, err := c.do(http.MethodPut, c.base+u.String(), rest, "application/octet-stream")
	if err != nil {
		return err
	}
	return want(resp, body, http.StatusCreated, "finish upload "+d)
}

func (c *client) delete(repo, d string) error {
	resp, body, err := c.do(http.MethodDelete, "/v2/"+repo+"/manifests/"+d, nil, "")
	if err != nil {
		return err
	}
	return want(resp, body, http.StatusAccepted, "delete "+repo+"@"+d)
}

// pull fetches tag and every blob it references and compares the bytes.
func (c *client) pull(repo, tag string, img pushed) error {
	resp, body, err := c.do(http.MethodGet, "/v2/"+repo+"/manifests/"+tag, nil, "")
	if err != nil {
		return err
	}
	if err := want(resp, body, http.StatusOK, "manifest"); err != nil {
		return err
	}
	if !bytes.Equal(body, img.manifest) {
		return fmt.Errorf("manifest served differs from the pushed one")
	}
	for _, b := range img.blobs {
		d := digestOf(b)
		resp, got, err := c.do(http.MethodGet, "/v2/"+repo+"/blobs/"+d, nil, "")
		if err != nil {
			return err
		}
		if err := want(resp, got, http.StatusOK, "blob "+d); err != nil {
			return err
		}
		if !bytes.Equal(got, b) {
			return fmt.Errorf("blob %s served %d bytes that differ from the pushed ones", d, len(got))
		}
	}
	return nil
}
