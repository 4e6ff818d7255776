package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestMetricsSettings(t *testing.T) {
	dir := t.TempDir()
	load := func(body string) (Config, error) {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return Load(p)
	}
	cfg, err := load("metrics:\n  addr: 127.0.0.1:9090\n  htpasswd: /etc/octoserve/metrics.htpasswd\n")
	if err != nil || cfg.Metrics.Addr != "127.0.0.1:9090" || cfg.Metrics.UsageInterval != 10*time.Minute {
		t.Fatalf("%+v, %v: the address, and the default usage interval", cfg.Metrics, err)
	}
	if cfg := Default(); cfg.Metrics.Addr != "" {
		t.Fatalf("metrics on by default: %+v", cfg.Metrics)
	}
	for _, bad := range []string{
		"metrics:\n  htpasswd: /x\n",       // a password for an address that is off
		"metrics:\n  usageInterval: 0s\n",  // never
		"metrics:\n  usageIntervals: 1m\n", // a typo
	} {
		if _, err := load(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
