// Package config holds octoserve's settings: defaults, overridden by a YAML
// file, overridden by command-line flags (applied by the caller).
package config

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/octoserve/octoserve/internal/storage/s3"
)

// Config is the whole configuration file.
type Config struct {
	HTTP       HTTP       `yaml:"http"`
	Storage    Storage    `yaml:"storage"`
	Log        Log        `yaml:"log"`
	Validation Validation `yaml:"validation"`
	Auth       Auth       `yaml:"auth"`
	TLS        TLS        `yaml:"tls"`
	GC         GC         `yaml:"gc"`
	Uploads    Uploads    `yaml:"uploads"`
	Metrics    Metrics    `yaml:"metrics"`
	Proxy      Proxy      `yaml:"proxy"` // pull-through cache (proxy.go)
}

// Metrics configures the metrics and debug address: /metrics, pprof,
// /healthz and /readyz, apart from the public API (docs/operations.md).
type Metrics struct {
	// Addr is where to serve them; "" turns them off.
	Addr string `yaml:"addr"`
	// Htpasswd, when set, asks for basic authentication there (any user
	// of this bcrypt htpasswd file); otherwise bind Addr to loopback or a
	// private network.
	Htpasswd string `yaml:"htpasswd"`
	// UsageInterval is how often the stored bytes per repository are
	// counted, in the background (also after each collection).
	UsageInterval time.Duration `yaml:"usageInterval"`
}

// GC configures garbage collection inside `serve` and the defaults of
// `octoserve gc`.
type GC struct {
	// Interval runs a collection this often while serving; 0 turns it off.
	Interval time.Duration `yaml:"interval"`
	// MinAge keeps anything written or used more recently, so that a push
	// in progress (blobs uploaded, manifest not yet) loses nothing.
	MinAge time.Duration `yaml:"minAge"`
	// DeleteUntagged also removes manifests no tag (or kept index, or kept
	// subject of a referrer) reaches.
	DeleteUntagged bool `yaml:"deleteUntagged"`
	// ClockSkew widens MinAge by how far the clocks of the storage's own
	// nodes may disagree (an object store spread over several hosts).
	// Ages are judged by the store's clock, so replicas' clocks do not
	// matter; a local disk needs 0.
	ClockSkew time.Duration `yaml:"clockSkew"`
}

// Uploads configures upload sessions.
type Uploads struct {
	// MaxIdle removes a session that received nothing for this long.
	MaxIdle time.Duration `yaml:"maxIdle"`
	// PurgeInterval is how often `serve` looks for idle sessions.
	PurgeInterval time.Duration `yaml:"purgeInterval"`
	// MaxPerRepository bounds the sessions open at once in one
	// repository, MaxPerUser those one authenticated user has open in all
	// repositories; 0 means no limit.
	MaxPerRepository int `yaml:"maxPerRepository"`
	MaxPerUser       int `yaml:"maxPerUser"`
	// AutomaticMount lets a mount without "from" (?mount=<digest> alone)
	// mount a blob the registry already holds (201) instead of opening an
	// upload session (202). On by default.
	AutomaticMount bool `yaml:"automaticMount"`
}

// HTTP configures the listener.
type HTTP struct {
	Addr              string        `yaml:"addr"`
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
	IdleTimeout       time.Duration `yaml:"idleTimeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdownTimeout"`
	MaxHeaderBytes    int           `yaml:"maxHeaderBytes"`
	// BodyTimeout cuts off a request body that delivers nothing for this
	// long while the server waits for it; a body that keeps moving may
	// take as long as it needs.
	BodyTimeout time.Duration `yaml:"bodyTimeout"`
	// MaxConnsPerClient bounds the connections one client address (IPv6:
	// one /64) holds at once; 0 means no limit (behind a proxy, every
	// client has the proxy's address).
	MaxConnsPerClient int `yaml:"maxConnsPerClient"`
}

// Storage says where data lives: a local directory (Root) or a bucket of
// an S3-compatible object store (S3), never both. internal/storage/backend
// opens it.
type Storage struct {
	Root string `yaml:"root"`
	// S3 is documented field by field in internal/storage/s3.Config.
	S3 *s3.Config `yaml:"s3"`
}

// DefaultRoot is storage.root when the file sets neither it nor
// storage.s3.
const DefaultRoot = "./data"

// Log configures log/slog output on stderr.
type Log struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn, error
}

// Validation tunes what manifests are accepted.
type Validation struct {
	// Sparse accepts manifests whose blobs or child manifests are missing.
	Sparse bool `yaml:"sparse"`
	// MaxManifestBytes bounds a manifest body (default 4 MiB).
	MaxManifestBytes int64 `yaml:"maxManifestBytes"`
	// MaxBlobBytes bounds a blob's total size (default
	// DefaultMaxBlobBytes); 0 means no limit.
	MaxBlobBytes int64 `yaml:"maxBlobBytes"`
	// MaxChunkBytes bounds one upload request body; 0 means no limit.
	MaxChunkBytes int64 `yaml:"maxChunkBytes"`
}

// Auth turns on HTTP basic authentication (when Htpasswd is set) and
// per-repository access rules; internal/auth interprets it.
type Auth struct {
	Htpasswd string              `yaml:"htpasswd"` // bcrypt htpasswd file
	Realm    string              `yaml:"realm"`    // default "octoserve"
	Groups   map[string][]string `yaml:"groups"`   // group -> users
	Rules    []AccessRule        `yaml:"rules"`
	// FailedLogins rate-limits wrong passwords per client address.
	FailedLogins RateLimit `yaml:"failedLogins"`
}

// AccessRule grants actions on the repositories matching a glob.
type AccessRule struct {
	Repository    string   `yaml:"repository"` // glob: * within a path component, ** across components
	Users         []string `yaml:"users"`      // "*" is every authenticated user
	Groups        []string `yaml:"groups"`
	Actions       []string `yaml:"actions"` // pull, push, delete
	AnonymousPull bool     `yaml:"anonymousPull"`
}

// RateLimit is a token bucket per client address.
type RateLimit struct {
	Burst      int     `yaml:"burst"`      // failures allowed at once
	PerMinute  float64 `yaml:"perMinute"`  // failures regained per minute
	MaxClients int     `yaml:"maxClients"` // addresses tracked at most
}

// TLS serves HTTPS when both files are set.
type TLS struct {
	Certificate string `yaml:"certificate"` // PEM certificate chain
	Key         string `yaml:"key"`         // PEM private key
	// CipherSuites overrides the TLS 1.2 cipher suites offered (Go's
	// names); empty offers only ECDHE suites with AEAD ciphers.
	CipherSuites []string `yaml:"cipherSuites"`
}

// DefaultMaxBlobBytes bounds one blob unless configured (10 GiB): far
// above the layers of ordinary images, the per-layer limit of large
// hosted registries, and low enough that one upload cannot claim a disk
// by announcing an absurd length. Set validation.maxBlobBytes higher (or
// 0, no limit) for larger layers such as model weights.
const DefaultMaxBlobBytes = 10 << 30

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		HTTP: HTTP{
			Addr:              ":5000",
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ShutdownTimeout:   30 * time.Second,
			MaxHeaderBytes:    64 << 10,
			BodyTimeout:       time.Minute,
			MaxConnsPerClient: 100,
		},
		Storage: Storage{Root: DefaultRoot},
		Log:     Log{Format: "text", Level: "info"},
		Validation: Validation{
			MaxManifestBytes: 4 << 20,
			MaxBlobBytes:     DefaultMaxBlobBytes,
		},
		Auth: Auth{
			Realm:        "octoserve",
			FailedLogins: RateLimit{Burst: 10, PerMinute: 10, MaxClients: 10000},
		},
		GC:      GC{MinAge: time.Hour},
		Uploads: Uploads{MaxIdle: 24 * time.Hour, PurgeInterval: 15 * time.Minute, MaxPerRepository: 1000, MaxPerUser: 1000, AutomaticMount: true},
		Metrics: Metrics{UsageInterval: 10 * time.Minute},
	}
}

// Load reads the YAML files at paths, in order, over the defaults: each
// sets only the keys it names, so a later file overrides an earlier one
// (a deployment's storage section in one file, its limits in another).
// Unknown keys are an error, so a typo does not silently fall back to a
// default.
func Load(paths ...string) (Config, error) {
	cfg := Default()
	cfg.Storage.Root = "" // the default only when no file names a storage
	for _, path := range paths {
		if path == "" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("reading config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && err.Error() != "EOF" {
			return cfg, fmt.Errorf("parsing config %s: %w", path, err)
		}
	}
	if cfg.Storage.Root == "" && cfg.Storage.S3 == nil {
		cfg.Storage.Root = DefaultRoot
	}
	return cfg, cfg.Validate()
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format must be text or json, not %q", c.Log.Format)
	}
	if err := c.Storage.Validate(); err != nil {
		return err
	}
	if c.Validation.MaxManifestBytes <= 0 {
		return fmt.Errorf("validation.maxManifestBytes must be positive")
	}
	if c.GC.Interval < 0 || c.GC.MinAge < 0 || c.GC.ClockSkew < 0 {
		return fmt.Errorf("gc.interval, gc.minAge and gc.clockSkew must not be negative")
	}
	if c.Uploads.MaxPerRepository < 0 || c.Uploads.MaxPerUser < 0 {
		return fmt.Errorf("uploads.maxPerRepository and uploads.maxPerUser must not be negative (0: no limit)")
	}
	if c.Uploads.MaxIdle <= 0 || c.Uploads.PurgeInterval <= 0 {
		return fmt.Errorf("uploads.maxIdle and uploads.purgeInterval must be positive")
	}
	if c.HTTP.ReadHeaderTimeout <= 0 || c.HTTP.IdleTimeout <= 0 || c.HTTP.BodyTimeout <= 0 || c.HTTP.MaxHeaderBytes <= 0 {
		return fmt.Errorf("http.readHeaderTimeout, idleTimeout, bodyTimeout and maxHeaderBytes must be positive (they protect against slow and oversized requests)")
	}
	if c.HTTP.MaxConnsPerClient < 0 {
		return fmt.Errorf("http.maxConnsPerClient must not be negative (0: no limit)")
	}
	if c.Validation.MaxBlobBytes < 0 || c.Validation.MaxChunkBytes < 0 {
		return fmt.Errorf("validation.maxBlobBytes and maxChunkBytes must not be negative (0: no limit)")
	}
	if (c.TLS.Certificate == "") != (c.TLS.Key == "") {
		return fmt.Errorf("tls.certificate and tls.key must be set together")
	}
	if c.Metrics.UsageInterval <= 0 {
		return fmt.Errorf("metrics.usageInterval must be positive")
	}
	if c.Metrics.Htpasswd != "" && c.Metrics.Addr == "" {
		return fmt.Errorf("metrics.htpasswd needs metrics.addr: without it the metrics are off")
	}
	if c.Auth.Htpasswd == "" && (len(c.Auth.Rules) > 0 || len(c.Auth.Groups) > 0) {
		return fmt.Errorf("auth.rules and auth.groups need auth.htpasswd: without it authentication is off")
	}
	return c.Proxy.validate()
}

// Validate reports a storage section that names no backend, both, or an
// S3 bucket that cannot work.
func (s Storage) Validate() error {
	switch {
	case s.Root != "" && s.S3 != nil:
		return fmt.Errorf("storage.root (%s) and storage.s3 are exclusive: data lives in a directory or a bucket (with --root, leave storage.s3 out)", s.Root)
	case s.S3 != nil:
		if err := s.S3.Validate(); err != nil {
			return fmt.Errorf("storage.s3: %w", err)
		}
	case s.Root == "":
		return fmt.Errorf("storage.root or storage.s3 must be set")
	}
	return nil
}
