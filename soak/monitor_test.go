//go:build soak

package soak

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// monitor samples the server's open descriptors (/proc/<pid>/fd) every
// 100 ms; its peak memory is the kernel's own high-water mark (VmHWM in
// /proc/<pid>/status), which no sampling interval can miss.
type monitor struct {
	t       *testing.T
	pid     int
	maxFDs  int
	samples int
	stopc   chan struct{}
	done    chan struct{}
}

func startMonitor(t *testing.T, pid int) *monitor {
	t.Helper()
	m := &monitor{t: t, pid: pid, stopc: make(chan struct{}), done: make(chan struct{})}
	if _, err := m.fds(); err != nil {
		t.Fatalf("cannot read the server's descriptors: %v", err)
	}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if n, err := m.fds(); err == nil {
				m.maxFDs = max(m.maxFDs, n)
				m.samples++
			}
			select {
			case <-m.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *monitor) fds() (int, error) {
	d, err := os.Open(fmt.Sprintf("/proc/%d/fd", m.pid))
	if err != nil {
		return 0, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	return len(names), err
}

// stop ends sampling and returns the peak RSS in bytes and the peak
// number of open descriptors.
func (m *monitor) stop() (int64, int) {
	close(m.stopc)
	<-m.done
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", m.pid))
	if err != nil {
		m.t.Fatalf("reading the server's status (did it die?): %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				m.t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10, m.maxFDs
		}
	}
	m.t.Fatal("no VmHWM in the server's status")
	return 0, 0
}
