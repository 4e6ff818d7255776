//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Media types the tests check for.
const (
	mtOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mtOCIConfig      = "application/vnd.oci.image.config.v1+json"
	mtOCILayerGzip   = "application/vnd.oci.image.layer.v1.tar+gzip"
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerConfig   = "application/vnd.docker.container.image.v1+json"
	mtDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// commandTimeout bounds every client run and HTTP request.
const commandTimeout = 5 * time.Minute

var (
	// registryAddr is host:port of the registry under test.
	registryAddr string
	// resultsDir receives <TestName>.log for each failed test.
	resultsDir string
	// runID keeps repository names unique when the tests run more than once
	// against the same registry.
	runID string
)

func TestMain(m *testing.M) {
	registryAddr = os.Getenv("OCTOSERVE_ADDR")
	if registryAddr == "" {
		fmt.Fprintln(os.Stderr, "e2e: OCTOSERVE_ADDR is not set; run `make test-e2e`, or set it to the host:port of a running octoserve")
		os.Exit(2)
	}
	resultsDir = os.Getenv("OCTOSERVE_E2E_RESULTS")
	if resultsDir == "" {
		resultsDir = filepath.Join("..", "test-results", "e2e")
	}
	runID = randomHex(4)
	os.Exit(m.Run())
}

// session is one test's sandbox: a temporary work directory, a private HOME
// and client configuration (nothing touches the user's), and a transcript of
// every command run and HTTP request made, written to resultsDir when the
// test fails.
type session struct {
	t      *testing.T
	dir    string   // work directory; commands run here
	env    []string // environment for client commands
	policy string   // skopeo signature policy file

	mu  sync.Mutex
	log bytes.Buffer

	regctlReady bool
}

func newSession(t *testing.T) *session {
	t.Helper()
	s := &session{t: t, dir: t.TempDir()}
	home := filepath.Join(s.dir, ".home")
	runtimeDir := filepath.Join(home, "run")
	for _, d := range []string{home, runtimeDir, filepath.Join(home, "tmp"), filepath.Join(home, ".docker")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	s.policy = s.writeFile(".home/policy.json", []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`))
	registriesConf := s.writeFile(".home/registries.conf", []byte("unqualified-search-registries = []\n"))
	authFile := s.writeFile(".home/auth.json", []byte(`{"auths":{}}`))
	s.env = append(filteredEnviron(),
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"XDG_RUNTIME_DIR="+runtimeDir,
		"TMPDIR="+filepath.Join(home, "tmp"),
		"DOCKER_CONFIG="+filepath.Join(home, ".docker"),
		"REGCTL_CONFIG="+filepath.Join(home, ".regctl", "config.json"),
		"REGISTRY_AUTH_FILE="+authFile,
		"CONTAINERS_REGISTRIES_CONF="+registriesConf,
		"NO_PROXY=*", "no_proxy=*",
	)
	t.Cleanup(s.saveLogOnFailure)
	return s
}

// filteredEnviron is os.Environ without variables that would point a client
// at the user's configuration or at a proxy.
func filteredEnviron() []string {
	drop := map[string]bool{
		"HOME": true, "XDG_CONFIG_HOME": true, "XDG_CACHE_HOME": true, "XDG_DATA_HOME": true,
		"XDG_RUNTIME_DIR": true, "TMPDIR": true, "DOCKER_CONFIG": true, "REGCTL_CONFIG": true,
		"REGISTRY_AUTH_FILE": true, "CONTAINERS_REGISTRIES_CONF": true,
		"HTTP_PROXY": true, "HTTPS_PROXY": true, "ALL_PROXY": true, "NO_PROXY": true,
		"http_proxy": true, "https_proxy": true, "all_proxy": true, "no_proxy": true,
	}
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			out = append(out, kv)
		}
	}
	return out
}

func (s *session) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(&s.log, format, args...)
	if !strings.HasSuffix(format, "\n") {
		s.log.WriteByte('\n')
	}
}

func (s *session) saveLogOnFailure() {
	if !s.t.Failed() {
		return
	}
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(s.t.Name(), "_")
	path := filepath.Join(resultsDir, name+".log")
	if err := os.MkdirAll(resultsDir, 0o755); err != nil {
		s.t.Logf("cannot keep the client output: %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	header := fmt.Sprintf("# %s against %s (run %s)\n# client commands and HTTP requests, in order\n\n", s.t.Name(), registryAddr, runID)
	if err := os.WriteFile(path, append([]byte(header), s.log.Bytes()...), 0o644); err != nil {
		s.t.Logf("cannot keep the client output: %v", err)
		return
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	s.t.Logf("client output kept in %s", path)
}

// result is what one client run produced.
type result struct {
	Stdout, Stderr string
	Err            error
}

// Combined is stdout followed by stderr.
func (r result) Combined() string { return r.Stdout + r.Stderr }

// exec runs a client in the session's work directory and records it.
func (s *session) exec(stdin io.Reader, name string, args ...string) result {
	s.t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		hint := "run `make tools`, and put .tools/bin on PATH"
		if name == "skopeo" {
			hint = "apt-get install skopeo"
		}
		s.t.Fatalf("%s not found: %s", name, hint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = s.dir
	cmd.Env = s.env
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", commandTimeout, err)
	}
	res := result{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
	status := "exit 0"
	if err != nil {
		status = err.Error()
	}
	s.logf("$ %s %s\n%s%s[%s, %v]\n", name, shellQuote(args), indentOutput("out", res.Stdout), indentOutput("err", res.Stderr), status, time.Since(start).Round(time.Millisecond))
	return res
}

// must runs a client and fails the test unless it exits 0; it returns stdout.
func (s *session) must(name string, args ...string) string {
	s.t.Helper()
	return s.mustIn(nil, name, args...)
}

// mustIn is must with stdin.
func (s *session) mustIn(stdin io.Reader, name string, args ...string) string {
	s.t.Helper()
	res := s.exec(stdin, name, args...)
	if res.Err != nil {
		s.t.Fatalf("%s %s: %v\n%s", name, shellQuote(args), res.Err, tail(res.Combined(), 40))
	}
	return res.Stdout
}

// fail runs a client that is expected to fail and returns its output.
func (s *session) fail(name string, args ...string) string {
	s.t.Helper()
	res := s.exec(nil, name, args...)
	if res.Err == nil {
		s.t.Fatalf("%s %s succeeded, expected it to fail; output:\n%s", name, shellQuote(args), tail(res.Combined(), 40))
	}
	return res.Combined()
}

// Client wrappers: every run talks plain HTTP to the loopback registry.

func (s *session) crane(args ...string) string {
	s.t.Helper()
	return s.must("crane", append(args, "--insecure")...)
}

func (s *session) oras(args ...string) string {
	s.t.Helper()
	return s.must("oras", append(args, "--plain-http")...)
}

func (s *session) skopeo(args ...string) string {
	s.t.Helper()
	return s.must("skopeo", append([]string{"--policy", s.policy}, args...)...)
}

// regctl runs regctl, configuring the registry for plain HTTP on first use
// (in the session's own REGCTL_CONFIG).
func (s *session) regctl(args ...string) string {
	s.t.Helper()
	return s.regctlIn(nil, args...)
}

func (s *session) regctlIn(stdin io.Reader, args ...string) string {
	s.t.Helper()
	s.regctlSetup()
	return s.mustIn(stdin, "regctl", args...)
}

func (s *session) regctlSetup(extra ...string) {
	s.t.Helper()
	if s.regctlReady && len(extra) == 0 {
		return
	}
	s.must("regctl", append([]string{"registry", "set", registryAddr, "--tls", "disabled"}, extra...)...)
	s.regctlReady = true
}

// Files.

func (s *session) writeFile(rel string, data []byte) string {
	s.t.Helper()
	p := filepath.Join(s.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		s.t.Fatal(err)
	}
	return p
}

func (s *session) readFile(rel string) []byte {
	s.t.Helper()
	p := rel
	if !filepath.IsAbs(p) {
		p = filepath.Join(s.dir, rel)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// Raw HTTP, for what no client shows (status codes, headers) and to check
// the server's own answer behind a client's view.

type httpResult struct {
	Status int
	Header http.Header
	Body   []byte
}

func (s *session) http(method, path string, header map[string]string, body []byte) httpResult {
	s.t.Helper()
	url := path
	if !strings.HasPrefix(url, "http") {
		url = "http://" + registryAddr + path
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	var rdr io.Reader
	if body != nil {
		rdr = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rdr)
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if body != nil {
		req.ContentLength = int64(len(body))
	}
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil},
		// The tests look at redirects themselves.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		s.logf("> %s %s\n< error: %v\n", method, url, err)
		s.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	var hdr []string
	for k, v := range resp.Header {
		hdr = append(hdr, k+": "+strings.Join(v, ", "))
	}
	sort.Strings(hdr)
	shown := string(b)
	if len(b) > 2048 || !isText(b) {
		shown = fmt.Sprintf("(%d bytes)", len(b))
	}
	reqHdr := ""
	for k, v := range header {
		reqHdr += fmt.Sprintf("  > %s: %s\n", k, v)
	}
	bodyNote := ""
	if body != nil {
		bodyNote = fmt.Sprintf("  > (body %d bytes)\n", len(body))
	}
	s.logf("> %s %s\n%s%s< %s\n%s%s\n", method, url, reqHdr, bodyNote, resp.Status, indentLines("  < ", strings.Join(hdr, "\n")), indentLines("  | ", shown))
	return httpResult{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// referrers returns the referrers API answer for subject in repo, checking
// that it is a well-formed OCI image index served with status 200.
func (s *session) referrers(repo, subject string) []descriptor {
	s.t.Helper()
	r := s.http("GET", "/v2/"+repo+"/referrers/"+subject, nil, nil)
	if r.Status != http.StatusOK {
		s.t.Fatalf("GET /v2/%s/referrers/%s: status %d, want 200; body: %s", repo, subject, r.Status, tail(string(r.Body), 10))
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, mtOCIIndex) {
		s.t.Errorf("referrers API Content-Type %q, want %q", ct, mtOCIIndex)
	}
	var idx manifest
	if err := json.Unmarshal(r.Body, &idx); err != nil {
		s.t.Fatalf("referrers API body is not JSON: %v", err)
	}
	if idx.MediaType != mtOCIIndex || idx.SchemaVersion != 2 {
		s.t.Errorf("referrers API answered mediaType %q schemaVersion %d, want %q 2", idx.MediaType, idx.SchemaVersion, mtOCIIndex)
	}
	return idx.Manifests
}

// OCI structures, only the fields the tests read.

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *platform         `json:"platform,omitempty"`
}

type platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	ArtifactType  string       `json:"artifactType,omitempty"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
	Manifests     []descriptor `json:"manifests"`
	Subject       *descriptor  `json:"subject,omitempty"`
}

type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

func (s *session) parseManifest(b []byte) manifest {
	s.t.Helper()
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		s.t.Fatalf("manifest is not JSON: %v\n%s", err, tail(string(b), 20))
	}
	return m
}

// Test data.

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// tarFile is one regular file of a layer.
type tarFile struct {
	Name string
	Data []byte
}

// makeLayerTar builds an uncompressed layer tarball holding files, with
// their parent directories.
func makeLayerTar(t *testing.T, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	dirs := map[string]bool{}
	for _, f := range files {
		var parents []string
		for d := filepath.Dir(f.Name); d != "." && d != "/"; d = filepath.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime}); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.Name, Mode: 0o644, Size: int64(len(f.Data)), ModTime: mtime}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gunzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

// tarFiles reads the regular files of a tarball.
func tarFiles(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading tar entry %s: %v", h.Name, err)
		}
		out[strings.TrimPrefix(h.Name, "./")] = data
	}
}

// repoName is a repository name unique to this run.
func repoName(name string) string { return "e2e/" + name + "-" + runID }

// ref is registry/repo plus ":tag" or "@digest" as given.
func ref(repo, suffix string) string { return registryAddr + "/" + repo + suffix }

// Output helpers.

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}

func indentOutput(label, s string) string {
	if s == "" {
		return ""
	}
	if !isText([]byte(s)) {
		return fmt.Sprintf("  [%s: %d bytes of binary output]\n", label, len(s))
	}
	if len(s) > 64<<10 {
		s = "[... " + fmt.Sprint(len(s)-64<<10) + " bytes cut ...]\n" + s[len(s)-64<<10:]
	}
	return indentLines("  "+label+"| ", strings.TrimRight(s, "\n")) + "\n"
}

func indentLines(prefix, s string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

func isText(b []byte) bool {
	n := len(b)
	if n > 4096 {
		n = 4096
	}
	for _, c := range b[:n] {
		if c == 0 || (c < 0x20 && c != '\n' && c != '\r' && c != '\t') {
			return false
		}
	}
	return true
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// firstLine is s up to its first newline, trimmed.
func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(l)
}

// digestOf extracts the sha256 digest a client printed (for example
// "host/repo@sha256:..." from crane).
func digestOf(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(out)
	if m == "" {
		t.Fatalf("no digest in client output: %q", tail(out, 5))
	}
	return m
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("client output is not the JSON expected: %v\n%s", err, tail(s, 20))
	}
}
