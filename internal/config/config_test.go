package config

import (
	"os"
	"path/filepath"
	"testing"
)

// uploads.automaticMount is on unless the file turns it off, and only a
// YAML boolean is accepted.
func TestAutomaticMount(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       bool
		wantErr    bool
	}{
		{name: "no file", want: true},
		{name: "not set", yaml: "uploads:\n  maxIdle: 1h\n", want: true},
		{name: "on", yaml: "uploads:\n  automaticMount: true\n", want: true},
		{name: "off", yaml: "uploads:\n  automaticMount: false\n", want: false},
		{name: "not a boolean", yaml: "uploads:\n  automaticMount: sometimes\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = filepath.Join(t.TempDir(), "octoserve.yaml")
				if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := Load(path)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("loaded %q without an error", tc.yaml)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Uploads.AutomaticMount != tc.want {
				t.Fatalf("uploads.automaticMount = %v, want %v", cfg.Uploads.AutomaticMount, tc.want)
			}
		})
	}
}
