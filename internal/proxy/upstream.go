package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/registry"
)

// manifestAccept is every manifest type octoserve stores, so that the
// upstream sends what it holds instead of converting it.
var manifestAccept = strings.Join([]string{
	registry.MediaTypeOCIIndex, registry.MediaTypeOCIManifest,
	registry.MediaTypeDockerList, registry.MediaTypeDockerManifest,
}, ", ")

// upstream is the client of one upstream registry: the distribution API's
// manifest and blob requests, authenticated as the upstream asks (auth.go).
type upstream struct {
	cfg    config.Upstream
	base   string // URL without a trailing slash
	client *http.Client
	auth   *authenticator
	obs    Observer
}

func newUpstream(cfg config.Upstream, obs Observer) (*upstream, error) {
	cfg = cfg.WithDefaults()
	tlsConfig := &tls.Config{InsecureSkipVerify: cfg.Insecure} //nolint:gosec // an explicit, documented choice for tests and private upstreams
	if cfg.CA != "" {
		pem, err := os.ReadFile(cfg.CA)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: reading ca: %w", cfg.Prefix, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream %s: ca %s holds no PEM certificate", cfg.Prefix, cfg.CA)
		}
		tlsConfig.RootCAs = pool
	}
	password := cfg.Password
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: reading passwordFile: %w", cfg.Prefix, err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		// Blob bytes must arrive as stored: they are hashed and kept.
		DisableCompression: true,
	}
	client := &http.Client{Transport: transport}
	u := &upstream{cfg: cfg, base: strings.TrimRight(cfg.URL, "/"), client: client, obs: obs}
	u.auth = newAuthenticator(client, cfg.Username, password)
	return u, nil
}

// name identifies the upstream in logs and metrics.
func (u *upstream) name() string { return u.cfg.Prefix }

// do sends method to /v2/<repo><path> of the upstream, answering an
// authentication challenge once. Any status is returned as a response;
// the error is for no answer at all.
func (u *upstream) do(ctx context.Context, method, repo, path string, header http.Header) (*http.Response, error) {
	scope := "repository:" + repo + ":pull"
	target := u.base + "/v2/" + repo + path
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, target, nil)
		if err != nil {
			return nil, err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		if err := u.auth.authorize(ctx, req, scope); err != nil {
			u.obs.UpstreamError(u.name(), 0)
			return nil, err
		}
		resp, err := u.client.Do(req)
		if err != nil {
			u.obs.UpstreamError(u.name(), 0)
			return nil, fmt.Errorf("%s %s: %w", method, target, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			answered, err := u.auth.challenged(ctx, resp, scope)
			if err != nil {
				resp.Body.Close()
				u.obs.UpstreamError(u.name(), 0)
				return nil, err
			}
			if answered {
				drain(resp)
				continue
			}
		}
		if resp.StatusCode >= 400 && resp.StatusCode != http.StatusNotFound {
			u.obs.UpstreamError(u.name(), resp.StatusCode)
		}
		return resp, nil
	}
}

// drain reads a little of an unwanted body so the connection can be
// reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// manifest asks for manifest ref (tag or digest) of repo.
func (u *upstream) manifest(ctx context.Context, method, repo, ref string) (*http.Response, error) {
	return u.do(ctx, method, repo, "/manifests/"+url.PathEscape(ref), http.Header{"Accept": {manifestAccept}})
}

// blob asks for blob d of repo, from byte offset on.
func (u *upstream) blob(ctx context.Context, method, repo string, d reference.Digest, offset int64) (*http.Response, error) {
	h := http.Header{}
	if offset > 0 {
		h.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	return u.do(ctx, method, repo, "/blobs/"+d.String(), h)
}
