//go:build soak

package soak

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
)

// ociClient speaks the distribution API from one local address.
type ociClient struct {
	base       string
	user, pass string
	hc         *http.Client
}

// newClient returns a client for cfg's server that connects from local,
// keeping at most conns connections.
func newClient(cfg config, local, user, pass string, conns int) *ociClient {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	tr := &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
	}
	return &ociClient{base: "http://" + cfg.addr, user: user, pass: pass, hc: &http.Client{Transport: tr}}
}

// do sends a request and returns the response (body closed) and its body.
func (c *ociClient) do(ctx context.Context, method, path string, body []byte, h map[string]string) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// expect sends a request and fails unless it gets status.
func (c *ociClient) expect(ctx context.Context, status int, method, path string, body []byte, h map[string]string) (*http.Response, []byte, error) {
	resp, b, err := c.do(ctx, method, path, body, h)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != status {
		return nil, nil, fmt.Errorf("%s %s: %d, want %d: %.300s", method, path, resp.StatusCode, status, b)
	}
	return resp, b, nil
}

// pushBlob uploads b to repo, in two chunks when it is large enough.
func (c *ociClient) pushBlob(ctx context.Context, repo string, b []byte) (string, error) {
	d := digestOf(b)
	if len(b) < 1024 {
		_, _, err := c.expect(ctx, 201, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, b, nil)
		return d, err
	}
	resp, _, err := c.expect(ctx, 202, "POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if err != nil {
		return "", err
	}
	loc := resp.Header.Get("Location")
	half := len(b) / 2
	for _, part := range []struct {
		data  []byte
		start int
	}{{b[:half], 0}, {b[half:], half}} {
		rng := fmt.Sprintf("%d-%d", part.start, part.start+len(part.data)-1)
		resp, _, err = c.expect(ctx, 202, "PATCH", loc, part.data, map[string]string{"Content-Range": rng, "Content-Type": "application/octet-stream"})
		if err != nil {
			return "", err
		}
		loc = resp.Header.Get("Location")
	}
	_, _, err = c.expect(ctx, 201, "PUT", loc+"?digest="+d, nil, nil)
	return d, err
}

var nextLink = regexp.MustCompile(`^<(/v2/[^>]+)>; rel="next"$`)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
