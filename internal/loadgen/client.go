package loadgen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client speaks the distribution API to one registry.
type Client struct {
	base *url.URL
	http *http.Client
}

// NewClient returns a client of the registry at baseURL that keeps up to
// conns connections open (one per concurrent worker).
func NewClient(baseURL string, conns int) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("registry URL: %w", err)
	}
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &Client{base: u, http: &http.Client{Transport: tr, Timeout: 10 * time.Minute}}, nil
}

// Close drops the idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Digest is the sha256 digest string of b.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// errStatus describes an unexpected answer, with the start of its body.
func errStatus(resp *http.Response, want int) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, bytes.TrimSpace(b))
}

// do sends a request and checks its status; the caller closes the body.
func (c *Client) do(ctx context.Context, method, target string, body io.Reader, size int64, hdr map[string]string, want int) (*http.Response, error) {
	u, err := c.base.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("resolving %q: %w", target, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		defer resp.Body.Close()
		return nil, errStatus(resp, want)
	}
	return resp, nil
}

// drain reads and closes a body so that its connection is reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// startUpload opens an upload session in repo and returns its location.
func (c *Client) startUpload(ctx context.Context, repo string) (string, error) {
	resp, err := c.do(ctx, "POST", "/v2/"+repo+"/blobs/uploads/", nil, 0, nil, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	drain(resp)
	return location(resp)
}

func location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("%s %s: no Location", resp.Request.Method, resp.Request.URL.Path)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("bad Location %q: %w", loc, err)
	}
	return u.String(), nil
}

// patch sends one chunk at offset start (Content-Range set when ranged)
// and returns the next location.
func (c *Client) patch(ctx context.Context, loc string, chunk []byte, start int64, ranged bool) (string, error) {
	hdr := map[string]string{"Content-Type": "application/octet-stream"}
	if ranged {
		hdr["Content-Range"] = fmt.Sprintf("%d-%d", start, start+int64(len(chunk))-1)
	}
	resp, err := c.do(ctx, "PATCH", loc, bytes.NewReader(chunk), int64(len(chunk)), hdr, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	drain(resp)
	return location(resp)
}

// finish closes upload loc as digest, sending body (may be empty).
func (c *Client) finish(ctx context.Context, loc, digest string, body []byte) error {
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	resp, err := c.do(ctx, "PUT", u.String(), rd, int64(len(body)), map[string]string{"Content-Type": "application/octet-stream"}, http.StatusCreated)
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

// PushPatched uploads b as POST, one PATCH, PUT (how docker and crane push
// a layer).
func (c *Client) PushPatched(ctx context.Context, repo string, b []byte) (string, error) {
	d := Digest(b)
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return "", err
	}
	if loc, err = c.patch(ctx, loc, b, 0, false); err != nil {
		return "", err
	}
	return d, c.finish(ctx, loc, d, nil)
}

// PushTwoStep uploads b as POST, then PUT with the body (how containerd
// pushes a small blob).
func (c *Client) PushTwoStep(ctx context.Context, repo string, b []byte) (string, error) {
	d := Digest(b)
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return "", err
	}
	return d, c.finish(ctx, loc, d, b)
}

// PushChunked uploads b in chunks of chunkSize with Content-Range.
func (c *Client) PushChunked(ctx context.Context, repo string, b []byte, chunkSize int) (string, error) {
	d := Digest(b)
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return "", err
	}
	for off := 0; off < len(b); off += chunkSize {
		end := min(off+chunkSize, len(b))
		if loc, err = c.patch(ctx, loc, b[off:end], int64(off), true); err != nil {
			return "", fmt.Errorf("chunk at %d: %w", off, err)
		}
	}
	return d, c.finish(ctx, loc, d, nil)
}

// Mount links blob digest of repository from into repo.
func (c *Client) Mount(ctx context.Context, repo, from, digest string) error {
	q := url.Values{"mount": {digest}, "from": {from}}
	resp, err := c.do(ctx, "POST", "/v2/"+repo+"/blobs/uploads/?"+q.Encode(), nil, 0, nil, http.StatusCreated)
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

// ErrDigestMismatch is returned when pulled bytes do not hash to their
// digest.
var ErrDigestMismatch = errors.New("digest mismatch")

// PullBlob downloads blob digest of repo the way Go clients (containerd,
// crane, regctl) do: the bytes go through a sha256 hash as they are read,
// with io.Copy's 32 KiB buffer, and the digest is checked at the end. It
// returns the number of bytes read.
func (c *Client) PullBlob(ctx context.Context, repo, digest string) (int64, error) {
	resp, err := c.do(ctx, "GET", "/v2/"+repo+"/blobs/"+digest, nil, 0, nil, http.StatusOK)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return verifyBody(resp.Body, digest)
}

// PullBlobTimed is PullBlob that also returns when the first byte of
// the body arrived, counted from the request.
func (c *Client) PullBlobTimed(ctx context.Context, repo, digest string) (int64, time.Duration, error) {
	start := time.Now()
	resp, err := c.do(ctx, "GET", "/v2/"+repo+"/blobs/"+digest, nil, 0, nil, http.StatusOK)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	fb := &firstByte{r: resp.Body, start: start}
	n, err := verifyBody(fb, digest)
	return n, fb.at, err
}

// firstByte notes when the first byte came out of r.
type firstByte struct {
	r     io.Reader
	start time.Time
	at    time.Duration
}

func (f *firstByte) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && f.at == 0 {
		f.at = time.Since(f.start)
	}
	return n, err
}

// verifyBody hashes everything r yields and checks it against digest.
func verifyBody(r io.Reader, digest string) (int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return n, fmt.Errorf("reading %s: %w", digest, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return n, fmt.Errorf("%w: got %s, want %s (%d bytes)", ErrDigestMismatch, got, digest, n)
	}
	return n, nil
}

// PutManifest stores body as repo:ref.
func (c *Client) PutManifest(ctx context.Context, repo, ref, mediaType string, body []byte) error {
	resp, err := c.do(ctx, "PUT", "/v2/"+repo+"/manifests/"+ref, bytes.NewReader(body), int64(len(body)),
		map[string]string{"Content-Type": mediaType}, http.StatusCreated)
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

// GetManifest fetches repo:ref and returns its body.
func (c *Client) GetManifest(ctx context.Context, repo, ref string) ([]byte, error) {
	resp, err := c.do(ctx, "GET", "/v2/"+repo+"/manifests/"+ref, nil, 0,
		map[string]string{"Accept": MediaTypeOCIManifest}, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// get fetches path and returns its body.
func (c *Client) get(ctx context.Context, path string) ([]byte, *http.Response, error) {
	resp, err := c.do(ctx, "GET", path, nil, 0, nil, http.StatusOK)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp, err
}

// ListAll walks a paginated list (tags or catalog) from first, following
// Link headers, and returns how many entries it saw.
func (c *Client) ListAll(ctx context.Context, first, field string) (int, error) {
	total, next := 0, first
	for next != "" {
		b, resp, err := c.get(ctx, next)
		if err != nil {
			return total, err
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal(b, &page); err != nil {
			return total, fmt.Errorf("%s: %w", next, err)
		}
		var entries []string
		if err := json.Unmarshal(page[field], &entries); err != nil {
			return total, fmt.Errorf("%s: field %s: %w", next, field, err)
		}
		total += len(entries)
		next = nextLink(resp.Header.Get("Link"))
	}
	return total, nil
}

// nextLink extracts the target of a `<...>; rel="next"` Link header.
func nextLink(h string) string {
	if h == "" || !strings.Contains(h, `rel="next"`) {
		return ""
	}
	start, end := strings.Index(h, "<"), strings.Index(h, ">")
	if start < 0 || end < start {
		return ""
	}
	return h[start+1 : end]
}

func pageQuery(n int) string { return "?n=" + strconv.Itoa(n) }
