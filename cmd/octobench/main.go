// Command octobench is the load generator of `make bench`
// (scripts/bench.sh): it drives the scenarios of internal/loadgen against
// a registry, measures the machine's physical limits, times server start
// and garbage collection, and writes the report. Samples are JSON lines
// appended to the file given with -samples.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/octoserve/octoserve/internal/loadgen"
)

const usage = `usage: octobench COMMAND [flags]

  run       -url URL -target NAME [-pid PID] [-steps a,b]   registry scenarios
  pair      -url URL -target NAME -url-b URL -target-b NAME  the same requests to two servers, alternating
  cache     -upstream URL -url URL -prefix P [-paced]       big blobs pulled directly and through a pull-through cache
  pace      -to URL -rate BYTES/S                           a reverse proxy pacing response bodies (prints its address)
  fill      -url URL                                        the garbage-collection root
  limits    -dir DIR                                        sha256, fdatasync, trivial-server lines
  start     -target NAME -log FILE -- SERVER ARGS...        start time until GET ` + loadgen.GCProbe + ` answers
  time      -scenario ID -target NAME -log FILE -- CMD...   wall time of a command (gc)
  report    -md FILE -png FILE                              aggregate the samples
  sizes                                                     print the sizes the flags select
  trivial-serve                                             (internal) the physical-limit server

Common flags: -samples FILE -round N -quick, and size overrides (octobench run -h).`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := dispatch(ctx, os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "octobench:", err)
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "run":
		return runCmd(ctx, args)
	case "pair":
		return pairCmd(ctx, args)
	case "cache":
		return cacheCmd(ctx, args)
	case "fill":
		return fillCmd(ctx, args)
	case "limits":
		return limitsCmd(ctx, args)
	case "start":
		return startCmd(ctx, args)
	case "time":
		return timeCmd(args)
	case "report":
		return reportCmd(args)
	case "pace":
		return paceCmd(ctx, args)
	case "trivial-serve":
		return trivialCmd(ctx, args)
	case "sizes":
		fs := flag.NewFlagSet("sizes", flag.ContinueOnError)
		c := addCommon(fs)
		if err := fs.Parse(args); err != nil {
			return err
		}
		fmt.Println(c.config().Describe())
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// common are the flags every command shares.
type common struct {
	samples *string
	round   *int
	target  *string
	quick   *bool
	sizes   sizeFlags
}

func addCommon(fs *flag.FlagSet) *common {
	c := &common{
		samples: fs.String("samples", "", "append samples (JSON lines) to this file"),
		round:   fs.Int("round", 1, "round number recorded in the samples"),
		target:  fs.String("target", loadgen.TargetOctoserve, "target name recorded in the samples"),
		quick:   fs.Bool("quick", false, "the one-minute sizes"),
	}
	c.sizes = addSizeFlags(fs)
	return c
}

func (c *common) config() loadgen.Config {
	cfg := loadgen.DefaultConfig()
	if *c.quick {
		cfg = loadgen.QuickConfig()
	}
	c.sizes.apply(&cfg)
	return cfg
}

// emitter appends samples to the -samples file.
func (c *common) emitter() (func(loadgen.Sample), func() error, error) {
	if *c.samples == "" {
		return nil, nil, errors.New("-samples is required")
	}
	f, err := os.OpenFile(*c.samples, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	var werr error
	enc := json.NewEncoder(f)
	emit := func(s loadgen.Sample) {
		if err := enc.Encode(s); err != nil && werr == nil {
			werr = err
		}
	}
	closer := func() error { return errors.Join(werr, f.Close()) }
	return emit, closer, nil
}

func (c *common) emitValue(emit func(loadgen.Sample), id string, v float64) {
	emit(loadgen.Sample{Scenario: id, Target: *c.target, Round: *c.round, Value: v})
	s, _ := loadgen.Lookup(id)
	fmt.Printf("%s round %d: %-55s %12.1f %s\n", *c.target, *c.round, s.Title, v, s.Unit)
}

func runCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	c := addCommon(fs)
	url := fs.String("url", "", "registry base URL")
	pid := fs.Int("pid", 0, "server PID, for RSS and descriptors (0: not sampled)")
	cpuPIDs := fs.String("cpu-pids", "", "comma-separated PIDs whose CPU time per request is measured (default: -pid)")
	only := fs.String("steps", "", "comma-separated steps to run (default all: "+strings.Join(loadgen.StepNames(), ",")+")")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's own CPU profile (pprof) here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	emit, closer, err := c.emitter()
	if err != nil {
		return err
	}
	steps := map[string]bool{}
	for s := range strings.SplitSeq(*only, ",") {
		if s != "" {
			steps[s] = true
		}
	}
	r := &loadgen.Runner{URL: *url, PID: *pid, Target: *c.target, Round: *c.round, Cfg: c.config(), Emit: emit, Log: os.Stdout}
	if r.CPUPIDs, err = parsePIDs(*cpuPIDs); err != nil {
		return errors.Join(err, closer())
	}
	if len(r.CPUPIDs) == 0 && *pid > 0 {
		r.CPUPIDs = []int{*pid}
	}
	return errors.Join(r.Run(ctx, steps), closer())
}

func pairCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pair", flag.ContinueOnError)
	c := addCommon(fs)
	urlA := fs.String("url", "", "side A's base URL (its target name: -target)")
	pidA := fs.Int("pid", 0, "side A's PID, for its CPU time per request (0: not measured)")
	urlB := fs.String("url-b", "", "side B's base URL")
	targetB := fs.String("target-b", "", "side B's target name")
	pidB := fs.Int("pid-b", 0, "side B's PID")
	slices := fs.Int("slices", 10, "slices each figure alternates between the sides")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *urlA == "" || *urlB == "" || *targetB == "" {
		return errors.New("pair needs -url, -url-b and -target-b")
	}
	emit, closer, err := c.emitter()
	if err != nil {
		return err
	}
	p := &loadgen.Pair{
		A: loadgen.Side{URL: *urlA, Target: *c.target, PID: *pidA}, B: loadgen.Side{URL: *urlB, Target: *targetB, PID: *pidB},
		Round: *c.round, Cfg: c.config(), Slices: *slices, Emit: emit, Log: os.Stdout,
	}
	return errors.Join(p.Run(ctx), closer())
}

func cacheCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cache", flag.ContinueOnError)
	c := addCommon(fs)
	upstream := fs.String("upstream", "", "the upstream registry's base URL")
	cache := fs.String("url", "", "the base URL of the octoserve that mirrors it")
	prefix := fs.String("prefix", "", "the repository prefix octoserve mirrors the upstream under")
	origin := fs.String("origin", "", "where to push the blobs (default: -upstream)")
	paced := fs.Bool("paced", false, "the upstream is behind a paced link: record the -1g targets")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *upstream == "" || *cache == "" || *prefix == "" {
		return errors.New("cache needs -upstream, -url and -prefix")
	}
	emit, closer, err := c.emitter()
	if err != nil {
		return err
	}
	r := &loadgen.CacheRun{Upstream: *upstream, Origin: *origin, Cache: *cache, Prefix: *prefix, Round: *c.round, Cfg: c.config(), Emit: emit, Log: os.Stdout}
	if *paced {
		r.Targets = [3]string{loadgen.TargetCacheUpstream1G, loadgen.TargetCacheFirst1G, loadgen.TargetCacheHit1G}
		r.Seed = 1 << 40 // other blobs than the loopback run's, which the same cache may hold
	}
	return errors.Join(r.Run(ctx), closer())
}

// paceCmd serves a paced reverse proxy on a kernel-chosen loopback port
// and prints its address; it stops on SIGTERM.
func paceCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pace", flag.ContinueOnError)
	to := fs.String("to", "", "the base URL requests are forwarded to")
	rate := fs.Float64("rate", 125e6, "response body bytes per second (125e6: 1 Gbit/s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	h, err := loadgen.PacedProxy(*to, *rate)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return loadgen.Serve(ctx, ln, h)
}

func fillCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fill", flag.ContinueOnError)
	c := addCommon(fs)
	url := fs.String("url", "", "registry base URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Now()
	cfg := c.config()
	if err := loadgen.Fill(ctx, *url, cfg, os.Stdout); err != nil {
		return err
	}
	fmt.Printf("fill: %d blobs in %.0fs\n", cfg.GCBlobs, time.Since(start).Seconds())
	return nil
}

func limitsCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("limits", flag.ContinueOnError)
	c := addCommon(fs)
	dir := fs.String("dir", os.TempDir(), "directory on the disk the registries store to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	*c.target = loadgen.TargetLimit
	emit, closer, err := c.emitter()
	if err != nil {
		return err
	}
	err = measureLimits(ctx, c, *dir, emit)
	return errors.Join(err, closer())
}

func measureLimits(ctx context.Context, c *common, dir string, emit func(loadgen.Sample)) error {
	cfg := c.config()
	data := loadgen.RandomBytes(1, cfg.BigBytes)
	sha := loadgen.SHA256Rate(data, time.Second)
	c.emitValue(emit, loadgen.LimitSHA256, sha)
	disk, err := loadgen.FdatasyncRate(dir, data)
	if err != nil {
		return err
	}
	c.emitValue(emit, loadgen.LimitFdatasync, disk)
	c.emitValue(emit, loadgen.LimitPush, min(sha, disk))
	url, stop, err := startTrivial(os.Args[1:], c)
	if err != nil {
		return err
	}
	defer stop()
	return loadgen.MeasureTrivial(ctx, url, cfg, func(id string, v float64) { c.emitValue(emit, id, v) })
}

func startCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	c := addCommon(fs)
	logPath := fs.String("log", "", "append the server's output to this file")
	reps := fs.Int("reps", 3, "starts; the median is recorded")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 || *logPath == "" {
		return errors.New("start needs -log FILE -- SERVER ARGS")
	}
	emit, closer, err := c.emitter()
	if err != nil {
		return err
	}
	var times []float64
	for range *reps {
		d, err := loadgen.MeasureStart(ctx, fs.Args(), loadgen.GCProbe, *logPath)
		if err != nil {
			return errors.Join(err, closer())
		}
		times = append(times, float64(d.Microseconds())/1000)
	}
	c.emitValue(emit, loadgen.StartTime, median(times))
	return closer()
}

func timeCmd(args []string) error {
	fs := flag.NewFlagSet("time", flag.ContinueOnError)
	c := addCommon(fs)
	logPath := fs.String("log", "", "append the command's output to this file")
	scenario := fs.String("scenario", loadgen.GC, "scenario ID recorded")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 || *logPath == "" {
		return errors.New("time needs -log FILE -- CMD ARGS")
	}
	emit, closer, err := c.emitter()
	if err != nil {
		return err
	}
	d, err := loadgen.TimeCommand(fs.Args(), *logPath)
	if err != nil {
		return errors.Join(err, closer())
	}
	c.emitValue(emit, *scenario, d.Seconds())
	return closer()
}

func reportCmd(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	samples := fs.String("samples", "", "the samples file")
	md := fs.String("md", "", "write the markdown report here")
	pngPath := fs.String("png", "", "draw the ratio chart here")
	header := fs.String("header", "", "markdown put before the tables (a file)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return writeReport(*samples, *header, *md, *pngPath)
}

func trivialCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("trivial-serve", flag.ContinueOnError)
	c := addCommon(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return loadgen.ServeTrivial(ctx, ln, c.config())
}
