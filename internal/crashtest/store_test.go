package crashtest

import (
	"context"
	"os"
	"testing"

	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/backend"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// store is where the octoserve under test keeps its data: a temporary
// directory, or — with CRASH_STORAGE_CONFIG naming a configuration file
// (scripts/test-s3.sh's crash step: an S3 bucket, under a key prefix of
// that run's own) — the store that file names. The test opens the same
// store itself, only to describe what it holds when a check fails.
type store struct {
	arg   string // names it to serve, gc and verify: --root=DIR or --config=FILE
	where string
	d     storage.Driver
}

func openStore(t *testing.T, root string) *store {
	t.Helper()
	file := os.Getenv("CRASH_STORAGE_CONFIG")
	if file == "" {
		d, err := filesystem.New(root)
		if err != nil {
			t.Fatal(err)
		}
		return &store{arg: "--root=" + root, where: "root " + root, d: d}
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("CRASH_STORAGE_CONFIG: %v", err)
	}
	d, where, err := backend.Open(context.Background(), cfg.Storage)
	if err != nil {
		t.Fatalf("CRASH_STORAGE_CONFIG: %v", err)
	}
	return &store{arg: "--config=" + file, where: where, d: d}
}
