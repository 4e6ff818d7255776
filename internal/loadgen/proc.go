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
