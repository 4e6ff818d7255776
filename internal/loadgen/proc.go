package loadgen

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcRSS returns the resident set size of process pid in MiB.
func ProcRSS(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "VmRSS:" {
			kib, err := strconv.ParseFloat(fields[1], 64)
			if err != nil {
				return 0, fmt.Errorf("pid %d VmRSS %q: %w", pid, fields[1], err)
			}
			return kib / 1024, nil
		}
	}
	return 0, fmt.Errorf("pid %d: no VmRSS in /proc status", pid)
}

// ProcFDs returns how many descriptors process pid has open.
func ProcFDs(pid int) (int, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("listing descriptors of pid %d: %w", pid, err)
	}
	return len(entries), nil
}

// sampler records the peak RSS and descriptor count of a process.
type sampler struct {
	done   chan struct{}
	result chan sampled
}

type sampled struct {
	rss float64
	fds int
	err error
}

// startSampler samples pid every interval until stop (pid 0: nothing).
func startSampler(pid int, interval time.Duration) *sampler {
	s := &sampler{done: make(chan struct{}), result: make(chan sampled, 1)}
	go func() {
		var peak sampled
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if pid > 0 && peak.err == nil {
				rss, err := ProcRSS(pid)
				fds, ferr := ProcFDs(pid)
				peak.rss, peak.fds = max(peak.rss, rss), max(peak.fds, fds)
				peak.err = firstErr(err, ferr)
			}
			select {
			case <-s.done:
				s.result <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends sampling and returns the peaks.
func (s *sampler) stop() (float64, int, error) {
	close(s.done)
	r := <-s.result
	return r.rss, r.fds, r.err
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ: 100
// on every Linux architecture Go runs on).
const clockTick = 10 * time.Millisecond

// ProcCPU returns the CPU time (user and system, every thread) process
// pid has used so far.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading CPU time of pid %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces: the fields that follow
	// start after its closing parenthesis; utime and stime are fields 14
	// and 15.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("pid %d: short /proc stat %q", pid, s)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("pid %d: CPU time %q: %w", pid, f, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * clockTick, nil
}

// cpuOf is the CPU time processes pids used so far, together.
func cpuOf(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, pid := range pids {
		t, err := ProcCPU(pid)
		if err != nil {
			return 0, err
		}
		total += t
	}
	return total, nil
}

// cpuMeter measures the CPU time processes use during a measurement.
type cpuMeter struct {
	pids  []int
	start time.Duration
}

// startCPU starts a meter of pids (none: a meter that measures nothing).
func startCPU(pids []int) (*cpuMeter, error) {
	start, err := cpuOf(pids)
	return &cpuMeter{pids: pids, start: start}, err
}

// perRequest is the CPU time used since the start divided by n, in µs.
func (m *cpuMeter) perRequest(n int64) (float64, error) {
	now, err := cpuOf(m.pids)
	if err != nil || n == 0 {
		return 0, err
	}
	return float64(now-m.start) / float64(time.Microsecond) / float64(n), nil
}
