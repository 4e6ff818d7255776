package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProxyConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, err string
	}{
		{"minimal", `
proxy:
  upstreams:
    - prefix: docker.io/
      url: https://registry-1.docker.io
`, ""},
		{"full", `
proxy:
  upstreams:
    - prefix: docker.io
      url: https://registry-1.docker.io
      namespaces: [docker.io, registry-1.docker.io]
      username: bot
      password: pw
      revalidate: 1m
      timeout: 5s
      push: false
    - prefix: ghcr.io
      url: http://127.0.0.1:5001
      insecure: true
      push: true
  defaultUpstream: docker.io
  expiry: 720h
  maxBytes: 1000
`, ""},
		{"overlapping prefixes", `
proxy:
  upstreams:
    - {prefix: mirror, url: "https://a.example"}
    - {prefix: mirror/docker, url: "https://b.example"}
`, "overlaps"},
		{"namespace twice", `
proxy:
  upstreams:
    - {prefix: a, url: "https://a.example", namespaces: [x.io]}
    - {prefix: b, url: "https://b.example", namespaces: [x.io]}
`, "claimed twice"},
		{"default not an upstream", `
proxy:
  upstreams:
    - {prefix: a, url: "https://a.example"}
  defaultUpstream: docker.io
`, "not the prefix of an upstream"},
		{"bad url", `
proxy:
  upstreams:
    - {prefix: a, url: "ftp://a.example"}
`, "http:// or https://"},
		{"bad prefix", `
proxy:
  upstreams:
    - {prefix: "Docker.IO", url: "https://a.example"}
`, "not a repository name prefix"},
		{"password without user", `
proxy:
  upstreams:
    - {prefix: a, url: "https://a.example", password: x}
`, "needs a username"},
		{"negative expiry", `
proxy:
  expiry: -1h
  upstreams:
    - {prefix: a, url: "https://a.example"}
`, "must not be negative"},
		{"unknown key", `
proxy:
  upstreams:
    - {prefix: a, url: "https://a.example", revalidte: 1m}
`, "revalidte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one saying %q (config %+v)", err, tc.err, cfg.Proxy)
			}
		})
	}
}

func TestUpstreamDefaults(t *testing.T) {
	u := Upstream{Prefix: "docker.io/", URL: "https://registry-1.docker.io"}.WithDefaults()
	if u.Prefix != "docker.io" || len(u.Namespaces) != 1 || u.Namespaces[0] != "docker.io" ||
		u.Revalidate != DefaultRevalidate || u.Timeout != DefaultUpstreamTimeout {
		t.Fatalf("defaults: %+v", u)
	}
	if u := (Upstream{Prefix: "a", Revalidate: time.Second}).WithDefaults(); u.Revalidate != time.Second {
		t.Fatalf("a set revalidate was replaced: %v", u.Revalidate)
	}
}
