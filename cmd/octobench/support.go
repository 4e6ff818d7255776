package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/octoserve/octoserve/internal/loadgen"
)

// startTrivial runs `octobench trivial-serve` with the same size flags as
// the current command (a separate process, as a registry is) and returns
// its URL and a function that stops it by PID.
func startTrivial(args []string, c *common) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "trivial-serve", fmt.Sprintf("-quick=%t", *c.quick))
	cmd.Args = append(cmd.Args, sizeArgs(args[1:])...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("trivial server gave no address: %w", err)
	}
	return "http://" + strings.TrimSpace(line), stop, nil
}

// sizeArgs keeps the size flags of args (the ones trivial-serve accepts).
func sizeArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-")
		if !slices.Contains([]string{"big-mib", "pull-reps", "tags", "duration"}, name) {
			continue
		}
		out = append(out, a)
		if !strings.Contains(a, "=") && i+1 < len(args) {
			out = append(out, args[i+1])
			i++
		}
	}
	return out
}

// parsePIDs reads a comma-separated list of PIDs.
func parsePIDs(list string) ([]int, error) {
	var pids []int
	for f := range strings.SplitSeq(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("bad PID %q in %q", f, list)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// writeReport aggregates the samples into markdown (also printed) and the
// chart.
func writeReport(samplesPath, headerPath, mdPath, pngPath string) error {
	f, err := os.Open(samplesPath)
	if err != nil {
		return err
	}
	samples, err := loadgen.ReadSamples(f)
	f.Close()
	if err != nil {
		return err
	}
	rep := loadgen.Aggregate(samples)
	var b strings.Builder
	if headerPath != "" {
		h, err := os.ReadFile(headerPath)
		if err != nil {
			return err
		}
		b.Write(h)
		b.WriteString("\n")
	}
	rep.Markdown(&b)
	fmt.Print(b.String())
	var errs []error
	if mdPath != "" {
		errs = append(errs, os.WriteFile(mdPath, []byte(b.String()), 0o644))
	}
	if pngPath != "" {
		out, err := os.Create(pngPath)
		if err != nil {
			return err
		}
		title := "make bench, " + time.Now().Format("2006-01-02 15:04")
		errs = append(errs, rep.WriteChart(out, title), out.Close())
	}
	return errors.Join(errs...)
}

// startCPUProfile profiles this process into path until the returned
// function runs: where the client's time goes (e.g. hashing vs reading).
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
