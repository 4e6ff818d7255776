package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/octoserve/octoserve/internal/reference"
)

// Proxy makes octoserve a pull-through cache: repositories under an
// upstream's prefix mirror that upstream (internal/proxy); every other
// repository is an ordinary local one.
type Proxy struct {
	Upstreams []Upstream `yaml:"upstreams"`
	// DefaultUpstream is the prefix of the upstream that also serves names
	// under no prefix, as Docker's registry-mirrors sends them
	// ("library/alpine"; "alpine" means "library/alpine"). With it set,
	// every repository outside the other prefixes is a cached one.
	DefaultUpstream string `yaml:"defaultUpstream"`
	// Expiry removes cached manifests not pulled for this long (by a
	// garbage collection); 0 keeps them.
	Expiry time.Duration `yaml:"expiry"`
	// MaxBytes caps the bytes only cached repositories hold: a collection
	// removes the least recently pulled beyond it; 0 means no cap.
	MaxBytes int64 `yaml:"maxBytes"`
}

// Upstream is one registry mirrored under a prefix.
type Upstream struct {
	// Prefix is the repository prefix it serves: with "docker.io",
	// docker.io/library/alpine is the upstream's library/alpine.
	Prefix string `yaml:"prefix"`
	// URL is the upstream registry's base, e.g. https://registry-1.docker.io.
	URL string `yaml:"url"`
	// Namespaces are the ?ns= values (containerd's hosts.toml mirrors send
	// the image's registry host) that mean this upstream; default: the
	// prefix.
	Namespaces []string `yaml:"namespaces"`
	// Username and Password (or a file holding it) are sent to the
	// upstream's token service, or as basic credentials to an upstream
	// that asks for them; without them pulls are anonymous.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"passwordFile"`
	// Revalidate is how long a cached tag is served without asking the
	// upstream whether it moved (default 5m).
	Revalidate time.Duration `yaml:"revalidate"`
	// Timeout bounds a manifest request, the wait for a blob's response
	// headers, and a stall in a blob's body (default 30s). Past it a
	// cached copy is served if there is one.
	Timeout time.Duration `yaml:"timeout"`
	// Insecure skips TLS certificate verification; CA adds a PEM file of
	// trusted certificates (for tests and private upstreams).
	Insecure bool   `yaml:"insecure"`
	CA       string `yaml:"ca"`
	// Push lets clients push to and delete from the cached repositories;
	// by default they are read-only (DENIED).
	Push bool `yaml:"push"`
}

// Defaults of an upstream's settings.
const (
	DefaultRevalidate      = 5 * time.Minute
	DefaultUpstreamTimeout = 30 * time.Second
)

// WithDefaults returns the upstream with unset settings at their defaults.
func (u Upstream) WithDefaults() Upstream {
	u.Prefix = strings.Trim(u.Prefix, "/")
	if len(u.Namespaces) == 0 {
		u.Namespaces = []string{u.Prefix}
	}
	if u.Revalidate == 0 {
		u.Revalidate = DefaultRevalidate
	}
	if u.Timeout == 0 {
		u.Timeout = DefaultUpstreamTimeout
	}
	return u
}

// Enabled reports whether any upstream is configured.
func (p Proxy) Enabled() bool { return len(p.Upstreams) > 0 }

// validate reports proxy settings that cannot work.
func (p Proxy) validate() error {
	if p.Expiry < 0 || p.MaxBytes < 0 {
		return fmt.Errorf("proxy.expiry and proxy.maxBytes must not be negative (0: off)")
	}
	prefixes := map[string]bool{}
	namespaces := map[string]bool{}
	for i, u := range p.Upstreams {
		u = u.WithDefaults()
		if err := u.validate(); err != nil {
			return fmt.Errorf("proxy.upstreams[%d]: %w", i, err)
		}
		for other := range prefixes {
			if u.Prefix == other || strings.HasPrefix(u.Prefix, other+"/") || strings.HasPrefix(other, u.Prefix+"/") {
				return fmt.Errorf("proxy.upstreams[%d]: prefix %q overlaps prefix %q", i, u.Prefix, other)
			}
		}
		prefixes[u.Prefix] = true
		for _, ns := range u.Namespaces {
			if namespaces[ns] {
				return fmt.Errorf("proxy.upstreams[%d]: namespace %q is claimed twice", i, ns)
			}
			namespaces[ns] = true
		}
	}
	if d := strings.Trim(p.DefaultUpstream, "/"); d != "" && !prefixes[d] {
		return fmt.Errorf("proxy.defaultUpstream %q is not the prefix of an upstream", p.DefaultUpstream)
	}
	return nil
}

func (u Upstream) validate() error {
	if err := reference.ValidateName(u.Prefix); err != nil {
		return fmt.Errorf("prefix %q is not a repository name prefix: %v", u.Prefix, err)
	}
	url, err := url.Parse(u.URL)
	if err != nil || (url.Scheme != "http" && url.Scheme != "https") || url.Host == "" {
		return fmt.Errorf("url %q must be an http:// or https:// URL", u.URL)
	}
	if u.Password != "" && u.PasswordFile != "" {
		return fmt.Errorf("password and passwordFile are exclusive")
	}
	if (u.Password != "" || u.PasswordFile != "") && u.Username == "" {
		return fmt.Errorf("a password needs a username")
	}
	if u.Revalidate < 0 || u.Timeout < 0 {
		return fmt.Errorf("revalidate and timeout must not be negative")
	}
	return nil
}
