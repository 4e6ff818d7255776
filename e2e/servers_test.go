//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Processes a test starts itself (a second octoserve with basic auth on, a
// containerd) are stopped by PID when the test ends; their logs join the
// test's transcript when it fails.

// startTimeout bounds how long a server a test starts may take to answer.
const startTimeout = 30 * time.Second

// process is a server started by a test.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when the process has exited
}

// startProcess starts bin with args, output to logPath, and stops it by PID
// (TERM, then KILL after 10 s) when the test ends, keeping its log in the
// transcript if the test failed.
func (s *session) startProcess(name, logPath, bin string, args ...string) *process {
	s.t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.dir
	cmd.Env = s.env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Should the test binary itself be killed, its servers go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s.logf("$ %s %s &", bin, shellQuote(args))
	if err := cmd.Start(); err != nil {
		logFile.Close()
		s.t.Fatalf("starting %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	s.t.Cleanup(func() {
		p.stop()
		if s.t.Failed() {
			b, _ := os.ReadFile(logPath)
			s.logf("# log of %s (pid %d)\n%s", name, cmd.Process.Pid, indentOutput("log", string(b)))
		}
	})
	return p
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// waitFor polls ready until it reports true, the process exits or
// startTimeout passes.
func (s *session) waitFor(p *process, what string, ready func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for !ready() {
		if !p.running() {
			b, _ := os.ReadFile(p.logPath)
			s.t.Fatalf("%s exited before %s; its log:\n%s", p.name, what, tail(string(b), 20))
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.logPath)
			s.t.Fatalf("%s: no %s within %v; its log:\n%s", p.name, what, startTimeout, tail(string(b), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// authRegistry is a second octoserve, with basic auth on, that a test starts
// for itself. User may pull and push repositories under OKPrefix and only
// pull those under ROPrefix; Admin may do anything anywhere (it puts in place
// what User may only read).
type authRegistry struct {
	Addr                 string
	User, Password       string
	Admin, AdminPassword string
	OKPrefix, ROPrefix   string
	WrongPassword        string
}

// startOctoserve starts $OCTOSERVE_BIN (the binary under test) with
// config on a free loopback port and a fresh root, waits until GET /v2/
// answers ready (200, or 401 with auth on), and returns its address and
// log file. It is stopped by PID when the test ends, and its log kept in
// the test's transcript.
func startOctoserve(s *session, name, config string, ready int) (string, string) {
	s.t.Helper()
	bin := os.Getenv("OCTOSERVE_BIN")
	if bin == "" {
		s.t.Fatal("OCTOSERVE_BIN is not set: run the scenarios with `make test-e2e` (scripts/test-e2e.sh)")
	}
	dir := filepath.Join(s.dir, "."+name)
	configPath := s.writeFile("."+name+"/config.yaml", []byte(config))
	logPath := filepath.Join(dir, "octoserve.log")
	p := s.startProcess("octoserve ("+name+")", logPath, bin, "serve", "--addr", "127.0.0.1:0",
		"--root", filepath.Join(dir, "data"), "--config", configPath)
	listening := regexp.MustCompile(`octoserve listening.* addr="?([^" ]+)`)
	var addr string
	s.waitFor(p, `"octoserve listening" in its log`, func() bool {
		b, _ := os.ReadFile(logPath)
		if m := listening.FindSubmatch(b); m != nil {
			addr = string(m[1])
			return true
		}
		return false
	})
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	s.waitFor(p, fmt.Sprintf("%d from GET /v2/", ready), func() bool {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == ready
	})
	s.logf("# octoserve (%s) at %s (pid %d)", name, addr, p.cmd.Process.Pid)
	return addr, logPath
}

// startAuthRegistry starts $OCTOSERVE_BIN (the binary under test) on a free
// loopback port with a fresh root, an htpasswd file and access rules, and
// waits until GET /v2/ asks for credentials.
func startAuthRegistry(s *session) *authRegistry {
	s.t.Helper()
	bin := os.Getenv("OCTOSERVE_BIN")
	if bin == "" {
		s.t.Fatal("OCTOSERVE_BIN is not set: run the scenarios with `make test-e2e` (scripts/test-e2e.sh)")
	}
	ar := &authRegistry{
		User: "alice", Password: "alice-" + randomHex(12),
		Admin: "admin", AdminPassword: "admin-" + randomHex(12),
		OKPrefix: "e2e-ok", ROPrefix: "e2e-ro",
		WrongPassword: "wrong-" + randomHex(6),
	}
	var htpasswd bytes.Buffer
	for user, pw := range map[string]string{ar.User: ar.Password, ar.Admin: ar.AdminPassword} {
		htpasswd.WriteString(s.mustIn(strings.NewReader(pw), bin, "htpasswd", user))
	}
	htpasswdPath := s.writeFile(".auth-registry/htpasswd", htpasswd.Bytes())
	config := fmt.Sprintf(`auth:
  htpasswd: %q
  rules:
    - repository: "%s/**"
      users: [%s]
      actions: [pull, push]
    - repository: "%s/**"
      users: [%s]
      actions: [pull]
    - repository: "**"
      users: [%s]
      actions: [pull, push, delete]
  # Every client here shares 127.0.0.1, and one push with a wrong password
  # fails many requests at once (containerd: each blob, retried): the
  # default burst of 10 would answer the next scenario step 429.
  failedLogins: {burst: 1000, perMinute: 1000}
`, htpasswdPath, ar.OKPrefix, ar.User, ar.ROPrefix, ar.User, ar.Admin)
	ar.Addr, _ = startOctoserve(s, "auth-registry", config, http.StatusUnauthorized)
	return ar
}

// OK and RO name a repository the user may push to, and one it may only
// pull from.
func (ar *authRegistry) OK(name string) string { return ar.OKPrefix + "/" + name + "-" + runID }
func (ar *authRegistry) RO(name string) string { return ar.ROPrefix + "/" + name + "-" + runID }

// Ref is addr/repo followed by suffix (":tag" or "@digest").
func (ar *authRegistry) Ref(repo, suffix string) string { return ar.Addr + "/" + repo + suffix }

// assertNoTag checks, as the admin, that repo has no tag tag: a refused
// push left nothing behind.
func (ar *authRegistry) assertNoTag(s *session, repo, tag string) {
	s.t.Helper()
	r := s.http("HEAD", "http://"+ar.Addr+"/v2/"+repo+"/manifests/"+tag,
		map[string]string{"Authorization": basicAuth(ar.Admin, ar.AdminPassword), "Accept": mtOCIManifest + ", " + mtOCIIndex + ", " + mtDockerManifest}, nil)
	if r.Status != http.StatusNotFound {
		s.t.Errorf("%s:%s after a refused push: HEAD status %d, want 404", repo, tag, r.Status)
	}
}

// assertDenied checks that a refused client run was refused by the
// registry's access rules (403 DENIED), not for some other reason.
func assertDenied(s *session, client, out string) {
	s.t.Helper()
	low := strings.ToLower(out)
	if !strings.Contains(low, "denied") && !strings.Contains(low, "403") {
		s.t.Errorf("%s was refused, but not with 403 DENIED:\n%s", client, tail(out, 20))
	}
}

// containerd is a containerd daemon a test starts for itself, with its root,
// state and socket in a temporary directory.
type containerd struct {
	Socket      string
	Snapshotter string
}

// startContainerd starts containerd (from Debian's package) as root with
// everything under a fresh temporary directory, waits until it answers
// `ctr version`, and points the session's ctr at it (CONTAINERD_ADDRESS,
// CONTAINERD_NAMESPACE, CONTAINERD_SNAPSHOTTER). It unpacks with the
// overlayfs snapshotter when containerd reports it usable here, and with
// the native one otherwise.
func startContainerd(s *session) *containerd {
	s.t.Helper()
	if os.Geteuid() != 0 {
		s.t.Fatal("the containerd scenarios run containerd as root")
	}
	for _, bin := range []string{"containerd", "ctr"} {
		if _, err := exec.LookPath(bin); err != nil {
			s.t.Fatalf("%s not found: apt-get install containerd", bin)
		}
	}
	// A short directory: a unix socket path is limited to 108 bytes.
	dir, err := os.MkdirTemp("", "ctrd")
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			s.t.Errorf("removing containerd's directory: %v", err)
		}
	})
	c := &containerd{Socket: filepath.Join(dir, "containerd.sock")}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
# Only what pulls and pushes need: no CRI (it would set up networking).
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Socket, c.Socket+".ttrpc", filepath.Join(dir, "opt"))
	configPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		s.t.Fatal(err)
	}
	p := s.startProcess("containerd", filepath.Join(dir, "containerd.log"), "containerd", "--config", configPath)
	s.waitFor(p, "answer to `ctr version`", func() bool {
		cmd := exec.Command("ctr", "--address", c.Socket, "version")
		return cmd.Run() == nil
	})
	c.Snapshotter = "native"
	plugins := s.must("ctr", "--address", c.Socket, "plugins", "ls")
	if regexp.MustCompile(`(?m)^io\.containerd\.snapshotter\.v1\s+overlayfs\s+\S+\s+ok\s*$`).MatchString(plugins) {
		c.Snapshotter = "overlayfs"
	}
	s.env = append(s.env, "CONTAINERD_ADDRESS="+c.Socket, "CONTAINERD_NAMESPACE=e2e", "CONTAINERD_SNAPSHOTTER="+c.Snapshotter)
	s.logf("# containerd at %s (pid %d), snapshotter %s", c.Socket, p.cmd.Process.Pid, c.Snapshotter)
	return c
}
