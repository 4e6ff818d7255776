package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadStorage(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		wantErr  string // "" = loads
		wantRoot string
		wantS3   bool
	}{
		{name: "nothing: the default directory", yaml: "log:\n  level: info\n", wantRoot: DefaultRoot},
		{name: "a directory", yaml: "storage:\n  root: /srv/data\n", wantRoot: "/srv/data"},
		{name: "a bucket: no directory", yaml: "storage:\n  s3:\n    bucket: reg\n    endpoint: http://127.0.0.1:9000\n    pathStyle: true\n", wantS3: true},
		{name: "both", yaml: "storage:\n  root: /srv/data\n  s3:\n    bucket: reg\n", wantErr: "exclusive"},
		{name: "a bucket without its name", yaml: "storage:\n  s3:\n    region: eu-west-1\n", wantErr: "storage.s3: bucket"},
		{name: "an empty s3 section", yaml: "storage:\n  s3: {}\n", wantErr: "storage.s3: bucket"},
		{name: "a part size S3 refuses", yaml: "storage:\n  s3:\n    bucket: reg\n    partSize: 1048576\n", wantErr: "storage.s3: partSize"},
		{name: "half the credentials", yaml: "storage:\n  s3:\n    bucket: reg\n    accessKey: AK\n", wantErr: "secretKey"},
		{name: "a misspelt key", yaml: "storage:\n  s3:\n    bucket: reg\n    pathstyle: true\n", wantErr: "pathstyle"},
		{name: "an expiry past 7 days", yaml: "storage:\n  s3:\n    bucket: reg\n    redirect: true\n    redirectExpiry: 200h\n", wantErr: "redirectExpiry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "octoserve.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Storage.Root != tc.wantRoot || (cfg.Storage.S3 != nil) != tc.wantS3 {
				t.Fatalf("storage = root %q, s3 %+v", cfg.Storage.Root, cfg.Storage.S3)
			}
		})
	}
}

func TestLoadS3Settings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "octoserve.yaml")
	yaml := `storage:
  s3:
    endpoint: https://s3.example:9000
    region: eu-west-1
    bucket: registry
    prefix: prod/octoserve
    pathStyle: true
    accessKey: AK
    secretKey: SK
    partSize: 16777216
    redirect: true
    redirectExpiry: 5m
`
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Storage.S3
	if s.Endpoint != "https://s3.example:9000" || s.Region != "eu-west-1" || s.Bucket != "registry" ||
		s.Prefix != "prod/octoserve" || !s.PathStyle || s.AccessKey != "AK" || s.SecretKey != "SK" ||
		s.PartSize != 16<<20 || !s.Redirect || s.RedirectExpiry != 5*time.Minute {
		t.Fatalf("loaded %+v", *s)
	}
}

// Flags are applied after Load; a --root beside a configured bucket is
// refused when the caller validates again.
func TestRootFlagBesideBucket(t *testing.T) {
	cfg := Default()
	cfg.Storage.Root = ""
	cfg.Storage.S3 = nil
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "storage.root or storage.s3") {
		t.Fatalf("no storage at all: %v", err)
	}
	path := filepath.Join(t.TempDir(), "octoserve.yaml")
	if err := os.WriteFile(path, []byte("storage:\n  s3:\n    bucket: reg\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Root = "/from/flag"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "exclusive") {
		t.Fatalf("--root beside storage.s3: %v", err)
	}
}
