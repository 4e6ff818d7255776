package crashtest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Deadlines that only stop a test of an octoserve that hangs; each leaves
// a loaded machine ample room.
const (
	// startTimeout bounds how long a (re)started octoserve may take to log
	// that it listens (and, in round 1, to acknowledge a first tag).
	startTimeout = time.Minute
	// stopTimeout bounds a graceful shutdown after SIGTERM.
	stopTimeout = time.Minute
	// requestTimeout bounds one request (a loopback request to a live
	// server; requests in flight at a kill fail at once).
	requestTimeout = time.Minute
	// verifyTimeout bounds `octoserve verify`, which re-hashes every blob.
	verifyTimeout = 10 * time.Minute
)

// server is one octoserve process.
type server struct {
	cmd  *exec.Cmd
	addr string // host:port it listens on (loopback)
	log  *logTail
	done chan struct{} // closed when the process has been reaped
	err  error         // Wait's result, valid once done is closed
}

// listenRE matches the line octoserve logs once its listener is bound, in
// slog's text format: msg="octoserve listening" addr=127.0.0.1:41234 ...
var listenRE = regexp.MustCompile(`msg="octoserve listening".*?\baddr="?([^"\s]+)`)

// startServer runs bin serve on the store storeArg names (--root=DIR or
// --config=FILE), listening on a kernel-chosen loopback port, and returns
// once it logged its address. The process is killed when the test ends,
// whatever happens.
func startServer(t *testing.T, bin, storeArg string) *server {
	t.Helper()
	s := &server{log: newLogTail(200), done: make(chan struct{})}
	s.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0", storeArg)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	s.cmd.Env = os.Environ()
	s.cmd.SysProcAttr = procAttr()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.kill)
	select {
	case addr := <-s.log.addr:
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			s.kill()
			t.Fatalf("octoserve listens on %q, not a loopback address", addr)
		}
		s.addr = addr
	case <-s.done:
		t.Fatalf("octoserve exited before listening (%v); its output:\n%s", s.err, s.log.String())
	case <-time.After(startTimeout):
		s.kill()
		t.Fatalf("octoserve did not log %q within %v; its output:\n%s", "octoserve listening", startTimeout, s.log.String())
	}
	return s
}

// kill sends SIGKILL (unless the process is gone) and reaps it.
func (s *server) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// stop asks for a graceful shutdown (SIGTERM) and kills after a while.
func (s *server) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if s.err != nil {
			t.Errorf("octoserve exited with %v after SIGTERM; its output:\n%s", s.err, s.log.String())
		}
	case <-time.After(stopTimeout):
		s.kill()
		t.Errorf("octoserve did not exit within %v of SIGTERM; killed it", stopTimeout)
	}
}

func (s *server) base() string { return "http://" + s.addr }

// logTail is the process's output: it spots the listening line and keeps
// the last lines for failure messages (octoserve logs every request).
type logTail struct {
	mu      sync.Mutex
	partial []byte
	lines   []string // the last max lines
	head    []string // the first 10 lines that are not request logs
	max     int
	addr    chan string
	sent    bool
}

func newLogTail(max int) *logTail {
	return &logTail{max: max, addr: make(chan string, 1)}
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		if !l.sent {
			if m := listenRE.FindStringSubmatch(line); m != nil {
				l.addr <- m[1]
				l.sent = true
			}
		}
		if len(l.head) < 10 && !strings.Contains(line, "msg=request ") {
			l.head = append(l.head, line)
		}
		l.lines = append(l.lines, line)
		if len(l.lines) > l.max {
			l.lines = l.lines[len(l.lines)-l.max:]
		}
	}
	if len(l.partial) > 64<<10 { // a runaway line: keep it bounded
		l.lines = append(l.lines, string(l.partial))
		l.partial = l.partial[:0]
	}
	return len(p), nil
}

// String returns the last n lines logged, for failure messages.
func (l *logTail) last(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(l.partial) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(l.partial))
	}
	return indent(lines)
}

// first returns the first lines logged other than requests (startup,
// warnings), for failure messages.
func (l *logTail) first() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return indent(l.head)
}

func (l *logTail) String() string { return l.last(40) }

func indent(lines []string) string {
	if len(lines) == 0 {
		return "  (nothing)"
	}
	return "  " + strings.Join(lines, "\n  ")
}
