//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// authServer is a second octoserve the scenario starts itself, with basic
// authentication on, on a free loopback port and its own data directory.
type authServer struct {
	addr string
	log  string // the server's log file
}

// startAuthServer starts the binary under test with config (auth on) and
// returns its address and log.
func startAuthServer(s *session, config string) *authServer {
	s.t.Helper()
	addr, log := startOctoserve(s, "authserver", config, http.StatusUnauthorized)
	return &authServer{addr: addr, log: log}
}

// ref is addr/repo plus ":tag" or "@digest".
func (srv *authServer) ref(repo, suffix string) string { return srv.addr + "/" + repo + suffix }

// podman runs podman as root with its own storage (vfs) under the test's
// temporary directories, nothing from the host's.
type podman struct {
	s      *session
	global []string
}

func newPodman(s *session) *podman {
	s.t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		s.t.Fatal("podman not found: apt-get install podman (.ci/run installs it)")
	}
	// podman refuses a run root longer than 50 characters, which the
	// session's directory usually is.
	runRoot, err := os.MkdirTemp("", "podman-run-")
	if err == nil && len(runRoot) > 50 {
		os.Remove(runRoot)
		runRoot, err = os.MkdirTemp("/tmp", "podman-run-")
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { os.RemoveAll(runRoot) })
	return &podman{s: s, global: []string{
		"--root", filepath.Join(s.dir, "podman-storage"),
		"--runroot", runRoot,
		"--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
	}}
}

func (p *podman) run(args ...string) string {
	p.s.t.Helper()
	return p.runIn(nil, args...)
}

func (p *podman) runIn(stdin io.Reader, args ...string) string {
	p.s.t.Helper()
	return p.s.mustIn(stdin, "podman", append(p.global, args...)...)
}

// TestAnonymousPullThenLogin is issue 10's high finding with real clients:
// containers/image (skopeo, podman) answers the Basic challenge with empty
// credentials when it has none, even with --no-creds. Those pulls must be
// anonymous pulls, and must never count as failed logins: after more of
// them than the failed-login burst, a real user from the same address
// logs in, pushes and pulls with the same clients.
func TestAnonymousPullThenLogin(t *testing.T) {
	s := newSession(t)
	const burst = 3
	const password = "alice-e2e-password"
	bin := os.Getenv("OCTOSERVE_BIN")
	if bin == "" {
		t.Skip("OCTOSERVE_BIN names the octoserve binary to start with auth on; `make test-e2e` sets it")
	}
	htpasswd := s.writeFile("authserver/htpasswd", []byte(s.mustIn(strings.NewReader(password+"\n"), bin, "htpasswd", "alice")))
	srv := startAuthServer(s, fmt.Sprintf(`auth:
  htpasswd: %s
  rules:
    - repository: "public/**"
      anonymousPull: true
    - repository: "**"
      users: [alice]
      actions: [pull, push]
  failedLogins: {burst: %d, perMinute: 1}
`, htpasswd, burst))
	public, private := "public/base-"+runID, "team/app-"+runID
	pm := newPodman(s)

	// Seed a public image as alice, with crane, then forget the login.
	s.must("crane", "auth", "login", srv.addr, "-u", "alice", "-p", password)
	layer := s.writeFile("layer.tar", makeLayerTar(t, tarFile{Name: "app/hello.txt", Data: []byte("hello from " + runID)}))
	pushed := digestOf(t, s.crane("append", "-f", layer, "-t", srv.ref(public, ":v1")))
	s.must("crane", "auth", "logout", srv.addr)

	// Without credentials, skopeo and podman send "Authorization: Basic
	// Og==" once challenged; every one of these pulls, more than the
	// burst, must succeed as an anonymous pull.
	src := "docker://" + srv.ref(public, ":v1")
	for i := 0; i <= burst; i++ {
		for _, dir := range []string{fmt.Sprint("anon-no-creds-", i), fmt.Sprint("anon-", i)} {
			args := []string{"copy", "--src-tls-verify=false"}
			if strings.HasPrefix(dir, "anon-no-creds") {
				args = append(args, "--src-no-creds")
			}
			s.skopeo(append(args, src, "dir:"+filepath.Join(s.dir, dir))...)
			if got := sha256Digest(s.readFile(filepath.Join(dir, "manifest.json"))); got != pushed {
				t.Fatalf("anonymously pulled manifest has digest %s, want %s", got, pushed)
			}
		}
		var info struct{ Digest string }
		decodeJSON(t, s.skopeo("inspect", "--tls-verify=false", "--no-creds", src), &info)
		if info.Digest != pushed {
			t.Fatalf("anonymous skopeo inspect: digest %s, want %s", info.Digest, pushed)
		}
		pm.run("pull", "--tls-verify=false", "--signature-policy", s.policy, srv.ref(public, ":v1"))
		pm.run("rmi", srv.ref(public, ":v1"))
	}
	// Anonymous means anonymous: no push, no private pull.
	s.fail("skopeo", "--policy", s.policy, "copy", "--dest-tls-verify=false", "--dest-no-creds",
		"dir:"+filepath.Join(s.dir, "anon-0"), "docker://"+srv.ref(private, ":anon"))
	s.fail("skopeo", "--policy", s.policy, "inspect", "--tls-verify=false", "--no-creds", "docker://"+srv.ref(public, ":missing"))
	if log := string(s.readFile(srv.log)); strings.Contains(log, "login failed") || strings.Contains(log, "too many failed logins") {
		t.Fatalf("anonymous pulls were counted as failed logins:\n%s", tail(log, 20))
	}

	// alice, from the same address, logs in and pushes and pulls with both.
	s.mustIn(strings.NewReader(password), "skopeo", "login", "--tls-verify=false", "-u", "alice", "--password-stdin", srv.addr)
	s.skopeo("copy", "--dest-tls-verify=false", "dir:"+filepath.Join(s.dir, "anon-0"), "docker://"+srv.ref(private, ":skopeo"))
	s.skopeo("copy", "--src-tls-verify=false", "docker://"+srv.ref(private, ":skopeo"), "dir:"+filepath.Join(s.dir, "alice"))
	s.must("skopeo", "logout", srv.addr)
	if got := sha256Digest(s.readFile(filepath.Join("alice", "manifest.json"))); got != pushed {
		t.Fatalf("alice pulled a manifest with digest %s, want %s", got, pushed)
	}

	pm.runIn(strings.NewReader(password), "login", "--tls-verify=false", "-u", "alice", "--password-stdin", srv.addr)
	pm.run("pull", "--tls-verify=false", "--signature-policy", s.policy, srv.ref(private, ":skopeo"))
	pm.run("tag", srv.ref(private, ":skopeo"), srv.ref(private, ":podman"))
	pm.run("push", "--tls-verify=false", srv.ref(private, ":podman"))
	pm.run("rmi", srv.ref(private, ":podman"), srv.ref(private, ":skopeo"))
	pm.run("pull", "--tls-verify=false", "--signature-policy", s.policy, srv.ref(private, ":podman"))
	pm.run("logout", srv.addr)

	var tags struct{ Tags []string }
	decodeJSON(t, s.skopeo("list-tags", "--tls-verify=false", "--creds", "alice:"+password, "docker://"+srv.ref(private, "")), &tags)
	for _, want := range []string{"skopeo", "podman"} {
		if !contains(tags.Tags, want) {
			t.Errorf("tags of %s: %v, want %q among them", private, tags.Tags, want)
		}
	}
	if log := string(s.readFile(srv.log)); strings.Contains(log, "login failed") || strings.Contains(log, "too many failed logins") {
		t.Fatalf("a failed login in the server log:\n%s", tail(log, 20))
	}
}
