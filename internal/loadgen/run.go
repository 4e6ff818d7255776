package loadgen

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Runner drives the registry scenarios against one server.
type Runner struct {
	URL string // the registry's base URL
	PID int    // the server's process, for memory and descriptors (0: not sampled)
	// CPUPIDs are the processes whose CPU time per request is measured:
	// every process that serves (a balancer and a storage server too);
	// none: not measured.
	CPUPIDs []int
	Target  string // target name written into samples
	Round   int    // round number written into samples
	Cfg     Config // sizes
	Emit    func(Sample)
	Log     io.Writer // progress lines
}

// step is one part of a run; it emits one or more figures.
type step struct {
	name string
	run  func(r *Runner, ctx context.Context) error
}

// steps are the registry scenarios in the order they run on one server.
var steps = []step{
	{"big", (*Runner).big},
	{"small", (*Runner).small},
	{"meta", (*Runner).meta},
	{"latency", (*Runner).latency},
	{"tags", (*Runner).manyTags},
	{"catalog", (*Runner).catalog},
	{"image", (*Runner).image},
	{"chunked", (*Runner).chunked},
	{"conns", (*Runner).conns},
}

// StepNames lists the steps Run accepts.
func StepNames() []string {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.name
	}
	return names
}

// Run runs the named steps (all when only is empty), then records the
// server's RSS after a full run (a partial run's figure compares with
// nothing).
func (r *Runner) Run(ctx context.Context, only map[string]bool) error {
	for _, s := range steps {
		if len(only) > 0 && !only[s.name] {
			continue
		}
		start := time.Now()
		if err := s.run(r, ctx); err != nil {
			return fmt.Errorf("%s against %s: %w", s.name, r.Target, err)
		}
		r.logf("%s: %s done in %.1fs", r.Target, s.name, time.Since(start).Seconds())
	}
	if r.PID > 0 && len(only) == 0 {
		rss, err := ProcRSS(r.PID)
		if err != nil {
			return err
		}
		r.emit(RSSAfter, rss)
	}
	return nil
}

func (r *Runner) emit(id string, v float64) {
	r.Emit(Sample{Scenario: id, Target: r.Target, Round: r.Round, Value: v})
	if s, ok := Lookup(id); ok {
		r.logf("%s round %d: %-55s %12.1f %s", r.Target, r.Round, s.Title, v, s.Unit)
	}
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, format+"\n", args...)
	}
}

func (r *Runner) client(conns int) (*Client, error) { return NewClient(r.URL, conns) }

func mibPerSec(bytes int64, d time.Duration) float64 { return float64(bytes) / mib / d.Seconds() }

func perSec(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }
