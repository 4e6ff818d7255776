package securitytest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/octoserve/octoserve/internal/auth"
	"github.com/octoserve/octoserve/internal/config"
)

// TestDocumentedConfig loads every YAML example in docs/configuration.md
// and in README.md's Configuration section (with the file paths pointed
// at test files) and builds the authenticator from it, so that the
// documentation stays valid.
func TestDocumentedConfig(t *testing.T) {
	root := repoRoot(t)
	var blocks []string
	yamlRE := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range yamlRE.FindAllStringSubmatch(string(doc), -1) {
		blocks = append(blocks, m[1])
	}
	if readme, err := os.ReadFile(filepath.Join(root, "README.md")); err == nil {
		if _, section, ok := strings.Cut(string(readme), "\n## Configuration"); ok {
			if i := strings.Index(section, "\n## "); i >= 0 {
				section = section[:i]
			}
			for _, m := range yamlRE.FindAllStringSubmatch(section, -1) {
				blocks = append(blocks, m[1])
			}
		}
	}
	if len(blocks) == 0 {
		t.Fatal("no YAML examples found")
	}
	dir := t.TempDir()
	certPath, keyPath, _ := selfSigned(t, dir)
	htpasswd := writeHtpasswd(t, map[string]string{"alice": "a", "bob": "b", "carol": "c", "builder": "d"})
	for i, b := range blocks {
		b = regexp.MustCompile(`(?m)^(\s*htpasswd:)\s*\S+`).ReplaceAllString(b, "${1} "+htpasswd)
		b = regexp.MustCompile(`(?m)^(\s*certificate:)\s*\S+`).ReplaceAllString(b, "${1} "+certPath)
		b = regexp.MustCompile(`(?m)^(\s*key:)\s*\S+`).ReplaceAllString(b, "${1} "+keyPath)
		b = regexp.MustCompile(`(?m)^(\s*root:)\s*\S+`).ReplaceAllString(b, "${1} "+filepath.Join(dir, "data"))
		path := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(path, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("example %d: %v\n%s", i, err, b)
		}
		if cfg.Auth.Htpasswd != "" {
			if _, err := auth.New(cfg.Auth, nil); err != nil {
				t.Fatalf("example %d: %v", i, err)
			}
		}
	}
}

// TestConfigRefusals: settings that would silently weaken the server are
// startup errors.
func TestConfigRefusals(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "htpasswd-md5")
	if err := os.WriteFile(bad, []byte("alice:$apr1$x$y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for yaml, want := range map[string]string{
		"auth:\n  rules:\n    - repository: \"**\"\n      anonymousPull: true\n": "need auth.htpasswd",
		"tls:\n  certificate: /x.pem\n":                                          "must be set together",
		"http:\n  readHeaderTimeout: 0s\n":                                       "must be positive",
		"http:\n  bodyTimeout: 0s\n":                                             "must be positive",
		"http:\n  maxConnsPerClient: -1\n":                                       "must not be negative",
		"validation:\n  maxBlobBytes: -1\n":                                      "must not be negative",
		"auth:\n  htpasswdd: /x\n":                                               "field htpasswdd not found",
	} {
		path := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", yaml, err, want)
		}
	}
	if _, err := auth.New(config.Auth{Htpasswd: bad}, nil); err == nil || !strings.Contains(err.Error(), `user "alice": unsupported password hash`) {
		t.Errorf("MD5 htpasswd: %v", err)
	}
}
