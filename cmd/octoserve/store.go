package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/backend"
)

// openRegistry opens the storage cfg names and the registry over it, and
// returns a description of the storage for logs.
func openRegistry(cfg config.Config) (*registry.Registry, string, error) {
	return openRegistryThrough(cfg, nil)
}

// openRegistryThrough is openRegistry with the driver passed through wrap
// (serve's metrics decorator), when wrap is not nil.
func openRegistryThrough(cfg config.Config, wrap func(storage.Driver) storage.Driver) (*registry.Registry, string, error) {
	ctx := context.Background()
	driver, where, err := backend.Open(ctx, cfg.Storage)
	if err != nil {
		return nil, "", err
	}
	if wrap != nil {
		driver = wrap(driver)
	}
	reg := registry.New(driver, registry.Options{
		Sparse:           cfg.Validation.Sparse,
		MaxManifestBytes: cfg.Validation.MaxManifestBytes,
		MaxBlobBytes:     cfg.Validation.MaxBlobBytes,
		MaxChunkBytes:    cfg.Validation.MaxChunkBytes,

		MaxUploadsPerRepository: cfg.Uploads.MaxPerRepository,
		MaxUploadsPerOwner:      cfg.Uploads.MaxPerUser,
	})
	// A store an earlier octoserve wrote is upgraded before anything else
	// reads it: gc and verify judge links by the current layout.
	n, err := reg.UpgradeLayout(ctx)
	if err != nil {
		return nil, "", err
	}
	if n > 0 {
		fmt.Fprintf(os.Stderr, "octoserve: upgraded the storage layout of %s: %d links rewritten\n", where, n)
	}
	return reg, where, nil
}

// storeFlags are the flags of the offline commands: which store to open.
type storeFlags struct {
	root   *string
	config *configFiles
}

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	f := storeFlags{
		root:   fs.String("root", "", "data directory (default ./data, or the storage section of --config)"),
		config: &configFiles{},
	}
	fs.Var(f.config, "config", "YAML configuration file; repeat it to layer files, later ones override earlier ones")
	return f
}

// configFiles is a repeatable --config flag.
type configFiles []string

func (c *configFiles) String() string { return strings.Join(*c, ",") }

func (c *configFiles) Set(path string) error {
	*c = append(*c, path)
	return nil
}

// open loads the configuration the flags name and opens its registry.
func (f storeFlags) open() (config.Config, *registry.Registry, error) {
	cfg, err := f.load()
	if err != nil {
		return cfg, nil, err
	}
	reg, _, err := openRegistry(cfg)
	return cfg, reg, err
}

// load reads the configuration the flags name.
func (f storeFlags) load() (config.Config, error) {
	cfg, err := config.Load(*f.config...)
	if err != nil {
		return cfg, err
	}
	if *f.root != "" {
		cfg.Storage.Root = *f.root
	}
	return cfg, cfg.Validate()
}
