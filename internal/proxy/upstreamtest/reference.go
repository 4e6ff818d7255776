package upstreamtest

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ReferenceBin is where scripts/install-tools.sh puts the reference
// registry (distribution/distribution v3.1.2), relative to the module
// root.
const ReferenceBin = ".tools/bin/registry"

// StartReference starts the reference registry binary bin on a free
// loopback port with a fresh storage directory, waits until it answers,
// and returns its base URL. It is stopped (by PID) when the test ends.
func StartReference(t testing.TB, bin string) string {
	t.Helper()
	dir := t.TempDir()
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
`, filepath.Join(dir, "data"))
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "registry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", configPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = withoutRegistryEnv(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting the reference registry %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	url, err := waitListening(logPath, exited)
	if err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("reference registry: %v; its log:\n%s", err, b)
	}
	return url
}

// withoutRegistryEnv drops REGISTRY_* variables: the reference registry
// reads each as an override of its config (and the test scripts export
// REGISTRY_ADDR and others for octoserve).
func withoutRegistryEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			out = append(out, kv)
		}
	}
	return out
}

var listeningRE = regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)

// waitListening reads the bound address from the log and waits until
// GET /v2/ answers 200.
func waitListening(logPath string, exited <-chan struct{}) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	for addr := ""; ; {
		select {
		case <-exited:
			return "", fmt.Errorf("exited during startup")
		default:
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no answer within 30s (address %q)", addr)
		}
		if addr == "" {
			addr = findListening(logPath)
		}
		if addr != "" {
			if resp, err := client.Get("http://" + addr + "/v2/"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return "http://" + addr, nil
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func findListening(logPath string) string {
	f, err := os.Open(logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
			return m[1]
		}
	}
	return ""
}
