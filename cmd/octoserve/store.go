package main

import (
	"flag"

	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// openRegistry opens the storage cfg names and the registry over it.
func openRegistry(cfg config.Config) (*registry.Registry, *filesystem.Driver, error) {
	driver, err := filesystem.New(cfg.Storage.Root)
	if err != nil {
		return nil, nil, err
	}
	return registry.New(driver, registry.Options{
		Sparse:           cfg.Validation.Sparse,
		MaxManifestBytes: cfg.Validation.MaxManifestBytes,
		MaxBlobBytes:     cfg.Validation.MaxBlobBytes,
		MaxChunkBytes:    cfg.Validation.MaxChunkBytes,

		MaxUploadsPerRepository: cfg.Uploads.MaxPerRepository,
	}), driver, nil
}

// storeFlags are the flags of the offline commands: which store to open.
type storeFlags struct {
	root, config *string
}

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		root:   fs.String("root", "", "data directory (default ./data, or storage.root of --config)"),
		config: fs.String("config", "", "YAML configuration file"),
	}
}

// load reads the configuration the flags name.
func (f storeFlags) load() (config.Config, error) {
	cfg, err := config.Load(*f.config)
	if err != nil {
		return cfg, err
	}
	if *f.root != "" {
		cfg.Storage.Root = *f.root
	}
	return cfg, cfg.Validate()
}
