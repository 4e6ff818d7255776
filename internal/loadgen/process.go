package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"time"
)

// listenRE finds the bound address in the start-up line of octoserve
// (`msg="octoserve listening" addr=HOST:PORT`, or JSON) or of the reference
// registry (`msg="listening on HOST:PORT"`).
var listenRE = regexp.MustCompile(`listening(?: on |.*addr(?:=|":))"?([0-9.]+:[0-9]+)`)

// MeasureStart starts argv (a server bound to port 0), waits until its log
// names the address and GET probe answers 200, and returns the time from
// exec to that answer. The server's output is appended to logPath; the
// server is stopped by its PID before MeasureStart returns.
func MeasureStart(ctx context.Context, argv []string, probe, logPath string) (time.Duration, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = pw, pw
	start := time.Now()
	if err := cmd.Start(); err != nil {
		pw.Close()
		pr.Close()
		return 0, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	pw.Close()
	defer stopProcess(cmd)
	addrc := make(chan string, 1)
	go scanForAddress(pr, logf, addrc)
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(time.Minute):
		return 0, fmt.Errorf("%s logged no listening address within a minute (see %s)", argv[0], logPath)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	url := "http://" + addr + probe
	client := &http.Client{Timeout: 10 * time.Second}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	// The reference registry answers 404 for an OCI manifest to a client
	// that does not accept it.
	req.Header.Set("Accept", MediaTypeOCIManifest)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := client.Do(req)
		if err == nil {
			drain(resp)
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return 0, fmt.Errorf("%s never answered 200 (see %s)", url, logPath)
}

// scanForAddress copies the server's output to log and sends the first
// listening address it names.
func scanForAddress(r io.ReadCloser, log io.Writer, addrc chan<- string) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(log, line)
		if m := listenRE.FindStringSubmatch(line); m != nil && !sent {
			addrc <- m[1]
			sent = true
		}
	}
	_, _ = io.Copy(log, r)
}

// stopProcess sends TERM, then KILL after 5 s, and reaps the process.
func stopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// TimeCommand runs argv to completion with its output appended to
// logPath and returns how long it took; a non-zero exit is an error.
func TimeCommand(argv []string, logPath string) (time.Duration, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%v: %w (see %s)", argv, err, logPath)
	}
	return time.Since(start), nil
}
