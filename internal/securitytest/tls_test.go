package securitytest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/auth"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/server"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// selfSigned writes a self-signed certificate for localhost and 127.0.0.1
// and its key as PEM files in dir, and returns their paths and a pool
// trusting the certificate.
func selfSigned(t testing.TB, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "octoserve test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return certPath, keyPath, pool
}

// runServer runs server.Run with opts and h until the test ends and
// returns the address it listens on.
func runServer(t *testing.T, opts server.Options, h http.Handler) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	opts.Addr = "127.0.0.1:0"
	if opts.ShutdownTimeout == 0 {
		// Only bounds a shutdown that hangs; connections a test leaves
		// behind close within a second, even on a loaded machine.
		opts.ShutdownTimeout = time.Minute
	}
	go func() {
		done <- server.Run(ctx, slog.New(slog.DiscardHandler), opts, h, func(a net.Addr) { addrc <- a.String() })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	select {
	case a := <-addrc:
		return a
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	}
	return ""
}

// pushAndPull pushes a blob and a manifest to repo through c and reads
// them back.
func pushAndPull(t *testing.T, c *client, repo string) {
	t.Helper()
	x := seed(t, c, repo)
	st, _, b := c.do("GET", "/v2/"+repo+"/manifests/v1", nil, map[string]string{"Accept": registry.MediaTypeOCIManifest})
	if st != 200 || string(b) != string(x.manifest) {
		t.Fatalf("pull over TLS: %d %s", st, b)
	}
	if st, _, b := c.do("GET", "/v2/"+repo+"/blobs/"+x.layerD, nil, nil); st != 200 || string(b) != string(x.layer) {
		t.Fatalf("blob over TLS: %d %s", st, b)
	}
}

// TestTLS serves the registry with auth over HTTPS with a self-signed
// certificate and drives it with a Go client trusting that certificate.
func TestTLS(t *testing.T) {
	certPath, keyPath, pool := selfSigned(t, t.TempDir())
	root := t.TempDir()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	ac := matrixAuth()
	ac.Htpasswd = writeHtpasswd(t, matrixUsers)
	authn, err := auth.New(ac, nil)
	if err != nil {
		t.Fatal(err)
	}
	var plain atomic.Int32
	a := api.New(registry.New(d, registry.Options{}), authn.APIOptions()...)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			plain.Add(1)
		}
		a.ServeHTTP(w, r)
	})
	addr := runServer(t, server.Options{CertFile: certPath, KeyFile: keyPath, ReadHeaderTimeout: 5 * time.Second}, h)
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	for _, host := range []string{addr, strings.Replace(addr, "127.0.0.1", "localhost", 1)} {
		anon := &client{t: t, base: "https://" + host, hc: trusting}
		if st, hd, _ := anon.do("GET", "/v2/", nil, nil); st != 401 || hd.Get("WWW-Authenticate") != `Basic realm="octoserve"` {
			t.Fatalf("anonymous /v2/ over TLS: %d %q", st, hd.Get("WWW-Authenticate"))
		}
	}
	alice := &client{t: t, base: "https://" + addr, user: "alice", pass: "alice-pw", hc: trusting}
	if st, _, _ := alice.do("GET", "/v2/", nil, nil); st != 200 {
		t.Fatalf("alice /v2/ over TLS: %d", st)
	}
	pushAndPull(t, alice, "team-a/app")
	bob := &client{t: t, base: "https://" + addr, user: "bob", pass: "bob-pw", hc: trusting}
	if st, _, _ := bob.do("POST", "/v2/team-a/app/blobs/uploads/", nil, nil); st != 403 {
		t.Fatalf("bob push over TLS: %d", st)
	}

	// A client that does not trust the certificate is refused by its own
	// TLS stack; one speaking plain HTTP gets net/http's 400; TLS 1.1 is
	// not offered.
	_, err = http.Get("https://" + addr + "/v2/")
	var unknownAuthority x509.UnknownAuthorityError
	if !errors.As(err, &unknownAuthority) {
		t.Fatalf("untrusted client: %v", err)
	}
	resp, err := http.Get("http://" + addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("plain HTTP to the TLS port: %d", resp.StatusCode)
	}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if resp, err := old.Get("https://" + addr + "/v2/"); err == nil {
		resp.Body.Close()
		t.Fatal("TLS 1.1 accepted")
	}
	if n := plain.Load(); n != 0 {
		t.Fatalf("%d requests reached the API without TLS", n)
	}
}

// TestTLSFilesRefusedAtStartup: a missing or mismatched key pair stops
// the server before it listens.
func TestTLSFilesRefusedAtStartup(t *testing.T) {
	dir := t.TempDir()
	certPath, _, _ := selfSigned(t, dir)
	_, otherKey, _ := selfSigned(t, t.TempDir())
	for _, o := range []server.Options{
		{Addr: "127.0.0.1:0", CertFile: certPath, KeyFile: filepath.Join(dir, "missing.pem")},
		{Addr: "127.0.0.1:0", CertFile: certPath, KeyFile: otherKey},
	} {
		err := server.Run(context.Background(), slog.New(slog.DiscardHandler), o, http.NotFoundHandler(), nil)
		if err == nil || !strings.Contains(err.Error(), "loading TLS certificate") {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from the test directory: %v", err)
	}
	return root
}

// startBinary builds cmd/octoserve and runs "octoserve serve" with args,
// returning the address it logged once listening.
func startBinary(t *testing.T, args ...string) string {
	t.Helper()
	return startBinaryListening(t, []string{"octoserve listening"}, args...)[0]
}

// TestTLSBinaryWithClients runs the octoserve binary with a YAML config
// (auth on) and --tls-cert/--tls-key, and drives it over HTTPS with a Go
// client and then with the real clients scripts/install-tools.sh puts in
// .tools/bin (crane, oras) and skopeo from PATH, each trusting the test
// certificate and logging in; a client that is not installed skips only
// its own subtest.
func TestTLSBinaryWithClients(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	certPath, keyPath, pool := selfSigned(t, dir)
	cfg := filepath.Join(dir, "octoserve.yaml")
	yaml := fmt.Sprintf(`storage:
  root: %s
auth:
  htpasswd: %s
  groups:
    admins: [carol]
  rules:
    - repository: "team-a/**"
      users: [alice]
      groups: [admins]
      actions: [pull, push]
    - repository: "team-a/**"
      users: [bob]
      actions: [pull]
    - repository: "public/*"
      anonymousPull: true
      users: [alice]
      actions: [pull, push]
`, filepath.Join(dir, "data"), writeHtpasswd(t, matrixUsers))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := startBinary(t, "--config", cfg, "--tls-cert", certPath, "--tls-key", keyPath)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if st, _, _ := (&client{t: t, base: "https://" + addr, hc: hc}).do("GET", "/v2/", nil, nil); st != 401 {
		t.Fatalf("anonymous /v2/: %d", st)
	}
	pushAndPull(t, &client{t: t, base: "https://" + addr, user: "alice", pass: "alice-pw", hc: hc}, "team-a/go-client")

	tools := filepath.Join(repoRoot(t), ".tools", "bin")
	home := t.TempDir()
	// run runs a client with HOME isolated; trust adds the certificate to
	// Go's system pool (all three clients are Go programs).
	run := func(t *testing.T, bin string, wantOK, trust bool, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"),
			"REGISTRY_AUTH_FILE="+filepath.Join(home, "auth.json"))
		if trust {
			cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+certPath)
		}
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("%s %s: err=%v (want ok=%v)\n%s", filepath.Base(bin), strings.Join(args, " "), err, wantOK, out)
		}
		return string(out)
	}
	need := func(t *testing.T, bin string) string {
		t.Helper()
		if !filepath.IsAbs(bin) {
			p, err := exec.LookPath(bin)
			if err != nil {
				t.Skipf("%s not installed: skipped", bin)
			}
			return p
		}
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s not installed (run scripts/install-tools.sh): skipped", bin)
		}
		return bin
	}

	t.Run("crane", func(t *testing.T) {
		crane := need(t, filepath.Join(tools, "crane"))
		layer := filepath.Join(dir, "layer.tar")
		writeTar(t, layer, "hello.txt", "hello over TLS\n")
		// Without trusting the certificate crane fails.
		run(t, crane, false, false, "catalog", addr)
		// Logged in as alice: push, list, pull.
		run(t, crane, true, true, "auth", "login", addr, "-u", "alice", "-p", "alice-pw")
		run(t, crane, true, true, "append", "-f", layer, "-t", addr+"/team-a/crane:v1")
		run(t, crane, true, true, "append", "-f", layer, "-t", addr+"/public/crane:v1")
		if out := run(t, crane, true, true, "ls", addr+"/team-a/crane"); strings.TrimSpace(out) != "v1" {
			t.Fatalf("crane ls: %q", out)
		}
		if out := run(t, crane, true, true, "catalog", addr); !strings.Contains(out, "team-a/crane") || !strings.Contains(out, "public/crane") {
			t.Fatalf("crane catalog as alice: %q", out)
		}
		run(t, crane, true, true, "export", addr+"/team-a/crane:v1", filepath.Join(dir, "out.tar"))
		// bob may pull team-a but not push.
		run(t, crane, true, true, "auth", "login", addr, "-u", "bob", "-p", "bob-pw")
		run(t, crane, true, true, "manifest", addr+"/team-a/crane:v1")
		if out := run(t, crane, false, true, "tag", addr+"/team-a/crane:v1", "v2"); !strings.Contains(out, "DENIED") {
			t.Fatalf("bob tagging: %s", out)
		}
		// Anonymous: public pulls work, team-a needs a login, the catalog
		// shows only public repositories.
		run(t, crane, true, true, "auth", "logout", addr)
		run(t, crane, true, true, "manifest", addr+"/public/crane:v1")
		if out := run(t, crane, false, true, "manifest", addr+"/team-a/crane:v1"); !strings.Contains(out, "UNAUTHORIZED") {
			t.Fatalf("anonymous team-a pull: %s", out)
		}
		if out := run(t, crane, true, true, "catalog", addr); strings.Contains(out, "team-a") || !strings.Contains(out, "public/crane") {
			t.Fatalf("anonymous catalog: %q", out)
		}
		// A wrong password is refused.
		run(t, crane, true, true, "auth", "login", addr, "-u", "alice", "-p", "not-her-password")
		if out := run(t, crane, false, true, "ls", addr+"/team-a/crane"); !strings.Contains(out, "UNAUTHORIZED") {
			t.Fatalf("wrong password: %s", out)
		}
		run(t, crane, true, true, "auth", "logout", addr)
	})

	t.Run("oras", func(t *testing.T) {
		oras := need(t, filepath.Join(tools, "oras"))
		regCfg := filepath.Join(home, "oras.json")
		file := filepath.Join(dir, "artifact.txt")
		if err := os.WriteFile(file, []byte("an artifact\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, oras, true, true, "login", addr, "-u", "alice", "-p", "alice-pw", "--registry-config", regCfg)
		run(t, oras, true, true, "push", addr+"/team-a/oras:v1", "artifact.txt", "--artifact-type", "application/vnd.test",
			"--registry-config", regCfg, "--disable-path-validation")
		out := filepath.Join(dir, "oras-out")
		run(t, oras, true, true, "pull", addr+"/team-a/oras:v1", "-o", out, "--registry-config", regCfg)
		if b, err := os.ReadFile(filepath.Join(out, "artifact.txt")); err != nil || string(b) != "an artifact\n" {
			t.Fatalf("oras pull: %q %v", b, err)
		}
		run(t, oras, true, true, "login", addr, "-u", "bob", "-p", "bob-pw", "--registry-config", regCfg)
		if o := run(t, oras, false, true, "push", addr+"/team-a/oras:v2", "artifact.txt", "--registry-config", regCfg,
			"--disable-path-validation"); !strings.Contains(o, "403") && !strings.Contains(o, "denied") && !strings.Contains(o, "DENIED") {
			t.Fatalf("oras push as bob: %s", o)
		}
		if o := run(t, oras, false, true, "login", addr, "-u", "alice", "-p", "wrong", "--registry-config", regCfg); !strings.Contains(o, "401") &&
			!strings.Contains(strings.ToLower(o), "unauthorized") {
			t.Fatalf("oras login with a wrong password: %s", o)
		}
	})

	t.Run("skopeo", func(t *testing.T) {
		skopeo := need(t, "skopeo")
		policy := filepath.Join(home, "policy.json")
		if err := os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		src, dst := "docker://"+addr+"/team-a/go-client:v1", "docker://"+addr+"/team-a/skopeo:v1"
		run(t, skopeo, true, true, "--policy", policy, "copy", "--src-creds", "alice:alice-pw", "--dest-creds", "alice:alice-pw", src, dst)
		run(t, skopeo, true, true, "inspect", "--raw", "--creds", "bob:bob-pw", dst)
		if o := run(t, skopeo, false, true, "--policy", policy, "copy", "--src-creds", "bob:bob-pw", "--dest-creds", "bob:bob-pw",
			src, "docker://"+addr+"/team-a/skopeo:bob"); !strings.Contains(strings.ToLower(o), "denied") {
			t.Fatalf("skopeo copy as bob: %s", o)
		}
		if o := run(t, skopeo, false, true, "inspect", "--raw", "--creds", "alice:wrong", dst); !strings.Contains(strings.ToLower(o), "unauthorized") {
			t.Fatalf("skopeo with a wrong password: %s", o)
		}
	})
}

// writeTar writes a tarball holding one file.
func writeTar(t testing.TB, path, name, body string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
