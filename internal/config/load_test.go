package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Files given in order each set only what they name: a later one
// overrides an earlier one, and the storage default applies only when no
// file names a storage.
func TestLoadLayersFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	storage := write("storage.yaml", "storage:\n  s3:\n    bucket: b\n    endpoint: http://127.0.0.1:9\n    pathStyle: true\ngc:\n  minAge: 2h\n")
	limits := write("limits.yaml", "gc:\n  interval: 5m\nvalidation:\n  sparse: true\n")
	cfg, err := Load(storage, limits)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.S3 == nil || cfg.Storage.Root != "" || cfg.Storage.S3.Bucket != "b" {
		t.Fatalf("storage %+v: the first file's bucket, and no default root", cfg.Storage)
	}
	if cfg.GC.MinAge != 2*time.Hour || cfg.GC.Interval != 5*time.Minute || !cfg.Validation.Sparse {
		t.Fatalf("gc %+v, sparse %v: both files' keys", cfg.GC, cfg.Validation.Sparse)
	}
	override := write("override.yaml", "gc:\n  minAge: 1m\n")
	if cfg, _ := Load(storage, limits, override); cfg.GC.MinAge != time.Minute || cfg.GC.Interval != 5*time.Minute {
		t.Fatalf("a later file overrides only what it names: %+v", cfg.GC)
	}
	if cfg, err := Load(limits); err != nil || cfg.Storage.Root != DefaultRoot {
		t.Fatalf("no storage named: root %q, %v", cfg.Storage.Root, err)
	}
	if _, err := Load(write("typo.yaml", "gc:\n  minAg: 1m\n")); err == nil {
		t.Fatal("an unknown key was accepted")
	}
}
