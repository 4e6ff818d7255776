//go:build replicas

package replicas

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

const (
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
	mtConfig   = "application/vnd.oci.image.config.v1+json"
	mtLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// requestTimeout bounds one request; it only stops a test of a registry
// that hangs.
const requestTimeout = 2 * time.Minute

// client speaks the distribution API over plain HTTP on loopback.
type client struct{ hc *http.Client }

func newClient() *client {
	tr := &http.Transport{
		Proxy:               nil, // loopback only, whatever the environment says
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		DisableCompression:  true,
	}
	return &client{hc: &http.Client{
		Transport:     tr,
		Timeout:       requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// reply is a response, body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) String() string { return fmt.Sprintf("%d %.300s", r.status, r.body) }

// do sends one request to url (base + path) and reads the answer.
func (c *client) do(method, url string, header map[string]string, body []byte) (reply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return reply{}, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: reading the answer: %w", method, url, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// expect is do that also requires status.
func (c *client) expect(status int, method, url string, header map[string]string, body []byte) (reply, error) {
	r, err := c.do(method, url, header, body)
	if err != nil {
		return r, fmt.Errorf("%s %s: %w", method, url, err)
	}
	if r.status != status {
		return r, &statusError{method: method, url: url, want: status, got: r}
	}
	return r, nil
}

// statusError is an answer with another status than the one expected.
type statusError struct {
	method, url string
	want        int
	got         reply
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %s, want %d", e.method, e.url, e.got, e.want)
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// image is an OCI image: its blobs (config first) and manifest.
type image struct {
	blobs    [][]byte
	manifest []byte
	digest   string
}

// newImage makes an image of a config naming what, a layer of its own and
// the given shared layers.
func newImage(rng *rand.Rand, what string, shared ...[]byte) image {
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Labels":{"test":%q}}}`, what))
	blobs := [][]byte{cfg, randomBytes(rng, 2<<10+rng.IntN(64<<10))}
	blobs = append(blobs, shared...)
	desc := func(mt string, b []byte) map[string]any {
		return map[string]any{"mediaType": mt, "digest": digestOf(b), "size": len(b)}
	}
	var layers []any
	for _, b := range blobs[1:] {
		layers = append(layers, desc(mtLayer, b))
	}
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mtManifest,
		"config": desc(mtConfig, cfg), "layers": layers})
	return image{blobs: blobs, manifest: m, digest: digestOf(m)}
}

// rotation hands out base URLs in turn: each request of a push goes to
// the next one.
type rotation struct {
	bases []string
	next  int
}

func (r *rotation) pick() string {
	b := r.bases[r.next%len(r.bases)]
	r.next++
	return b
}

// location resolves an upload Location (octoserve answers a path) against
// base, with the digest added when d is set.
func location(base, loc, d string) (string, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("upload Location %q: %w", loc, err)
	}
	if d != "" {
		q := u.Query()
		q.Set("digest", d)
		u.RawQuery = q.Encode()
	}
	if u.IsAbs() {
		return u.String(), nil
	}
	return base + u.String(), nil
}

// pushBlob uploads b to repo, each request to the next base of rot: whole
// (POST ?digest=) when chunks is 0, else a session of chunks PATCHes and
// a closing PUT.
func (c *client) pushBlob(rot *rotation, repo string, b []byte, chunks int) error {
	d := digestOf(b)
	if chunks == 0 {
		_, err := c.expect(http.StatusCreated, http.MethodPost, rot.pick()+"/v2/"+repo+"/blobs/uploads/?digest="+d,
			map[string]string{"Content-Type": "application/octet-stream"}, b)
		return err
	}
	r, err := c.expect(http.StatusAccepted, http.MethodPost, rot.pick()+"/v2/"+repo+"/blobs/uploads/", nil, nil)
	if err != nil {
		return err
	}
	loc := r.header.Get("Location")
	size := len(b) / chunks
	for i := range chunks {
		part := b[i*size : (i+1)*size]
		base := rot.pick()
		u, err := location(base, loc, "")
		if err != nil {
			return err
		}
		r, err = c.expect(http.StatusAccepted, http.MethodPatch, u, map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": strconv.Itoa(i*size) + "-" + strconv.Itoa((i+1)*size-1),
		}, part)
		if err != nil {
			return err
		}
		loc = r.header.Get("Location")
	}
	base := rot.pick()
	u, err := location(base, loc, d)
	if err != nil {
		return err
	}
	_, err = c.expect(http.StatusCreated, http.MethodPut, u, map[string]string{"Content-Type": "application/octet-stream"}, b[chunks*size:])
	return err
}

// pushManifest puts an image manifest as ref (a tag or digest) of repo.
func (c *client) pushManifest(base, repo, ref string, m []byte) error {
	_, err := c.expect(http.StatusCreated, http.MethodPut, base+"/v2/"+repo+"/manifests/"+ref,
		map[string]string{"Content-Type": mtManifest}, m)
	return err
}

// pushImage pushes img's blobs and its manifest as tag, every request to
// the next base of rot.
func (c *client) pushImage(rot *rotation, repo, tag string, img image) error {
	for _, b := range img.blobs {
		if err := c.pushImageBlob(rot, repo, b); err != nil {
			return err
		}
	}
	return c.pushManifest(rot.pick(), repo, tag, img.manifest)
}

// pushImageBlob pushes one of an image's blobs: whole, or in two chunks
// when larger than 16 KiB.
func (c *client) pushImageBlob(rot *rotation, repo string, b []byte) error {
	chunks := 0
	if len(b) > 16<<10 {
		chunks = 2
	}
	return c.pushBlob(rot, repo, b, chunks)
}

// pull fetches img from base as repo:ref and compares every byte: the
// manifest, its digest header and each blob.
func (c *client) pull(base, repo, ref string, img image) error {
	r, err := c.expect(http.StatusOK, http.MethodGet, base+"/v2/"+repo+"/manifests/"+ref,
		map[string]string{"Accept": mtManifest}, nil)
	if err != nil {
		return err
	}
	if !bytes.Equal(r.body, img.manifest) {
		return fmt.Errorf("%s %s:%s: the manifest served is not the one pushed", base, repo, ref)
	}
	if got := r.header.Get("Docker-Content-Digest"); got != img.digest {
		return fmt.Errorf("%s %s:%s: Docker-Content-Digest %s, want %s", base, repo, ref, got, img.digest)
	}
	for _, b := range img.blobs {
		d := digestOf(b)
		r, err := c.expect(http.StatusOK, http.MethodGet, base+"/v2/"+repo+"/blobs/"+d, nil, nil)
		if err != nil {
			return err
		}
		if !bytes.Equal(r.body, b) {
			return fmt.Errorf("%s %s: blob %s served %d bytes that differ from the %d pushed", base, repo, d, len(r.body), len(b))
		}
	}
	return nil
}

// tagDigest is the digest repo:tag resolves to on base (HEAD).
func (c *client) tagDigest(base, repo, tag string) (string, error) {
	r, err := c.expect(http.StatusOK, http.MethodHead, base+"/v2/"+repo+"/manifests/"+tag,
		map[string]string{"Accept": mtManifest}, nil)
	if err != nil {
		return "", err
	}
	return r.header.Get("Docker-Content-Digest"), nil
}
