// Package config holds octoserve's settings: defaults, overridden by a YAML
// file, overridden by command-line flags (applied by the caller).
package config

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file.
type Config struct {
	HTTP       HTTP       `yaml:"http"`
	Storage    Storage    `yaml:"storage"`
	Log        Log        `yaml:"log"`
	Validation Validation `yaml:"validation"`
}

// HTTP configures the listener.
type HTTP struct {
	Addr              string        `yaml:"addr"`
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
	IdleTimeout       time.Duration `yaml:"idleTimeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdownTimeout"`
	MaxHeaderBytes    int           `yaml:"maxHeaderBytes"`
}

// Storage says where data lives.
type Storage struct {
	Root string `yaml:"root"`
}

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
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		HTTP: HTTP{
			Addr:              ":5000",
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ShutdownTimeout:   30 * time.Second,
			MaxHeaderBytes:    64 << 10,
		},
		Storage:    Storage{Root: "./data"},
		Log:        Log{Format: "text", Level: "info"},
		Validation: Validation{MaxManifestBytes: 4 << 20},
	}
}

// Load reads the YAML file at path over the defaults. Unknown keys are an
// error, so a typo does not silently fall back to a default.
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, nil
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
	return cfg, cfg.Validate()
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format must be text or json, not %q", c.Log.Format)
	}
	if c.Storage.Root == "" {
		return fmt.Errorf("storage.root must be set")
	}
	if c.Validation.MaxManifestBytes <= 0 {
		return fmt.Errorf("validation.maxManifestBytes must be positive")
	}
	return nil
}
