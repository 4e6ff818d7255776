package loadgen

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Pair drives the same requests against two servers running at the same
// time, in short slices that alternate A B B A A B ..., and records each
// side's figures. Both sides see the same machine: on a shared machine
// two runs a minute apart can drift by more than the few per cent such an
// A/B looks for (the cost of metrics).
type Pair struct {
	A, B   Side
	Round  int
	Cfg    Config
	Slices int // alternations per figure (at least 2)
	Emit   func(Sample)
	Log    io.Writer
}

// Side is one server of a Pair.
type Side struct {
	URL    string
	Target string // target name written into its samples
	PID    int    // the server's process, for its CPU time per request (0: not measured)
}

// pairSide is a side with its client.
type pairSide struct {
	Side
	c *Client
}

// pids are the processes whose CPU time the side's figures count.
func (s *pairSide) pids() []int {
	if s.PID == 0 {
		return nil
	}
	return []int{s.PID}
}

// cpuDuring runs fn and adds the side's CPU time meanwhile to *sum.
func (s *pairSide) cpuDuring(sum *float64, fn func() error) error {
	m, err := startCPU(s.pids())
	if err != nil {
		return err
	}
	if err := fn(); err != nil {
		return err
	}
	v, err := m.perRequest(1)
	*sum += v
	return err
}

// emitCPU emits the side's CPU time per request, when it is measured.
func (p *Pair) emitCPU(s *pairSide, id string, sumMicros float64, n int64) {
	if s.PID != 0 && n > 0 {
		p.emit(s, id, sumMicros/float64(n))
	}
}

// Run sets up the manifest of the GET scenarios on both sides, then
// measures, slice by slice: manifest GETs by tag from 8 and 64 clients,
// small blob pushes from SmallClients clients, and the single-client
// latencies of both.
func (p *Pair) Run(ctx context.Context) error {
	if p.Slices < 2 {
		p.Slices = 2
	}
	var sides [2]*pairSide
	for i, s := range []Side{p.A, p.B} {
		c, err := NewClient(s.URL, 64)
		if err != nil {
			return err
		}
		defer c.Close()
		sides[i] = &pairSide{Side: s, c: c}
		if _, err := pushImage(ctx, c, MetaRepo, "latest", metaLayer); err != nil {
			return fmt.Errorf("%s: %w", s.Target, err)
		}
	}
	for _, m := range []func(context.Context, [2]*pairSide) error{p.gets, p.pushes, p.latencies} {
		if err := m(ctx, sides); err != nil {
			return err
		}
	}
	return nil
}

// order is the sides' order in slice k: A B, then B A, and so on.
func order(k int) [2]int {
	if k%2 == 0 {
		return [2]int{0, 1}
	}
	return [2]int{1, 0}
}

func (p *Pair) emit(s *pairSide, id string, v float64) {
	p.Emit(Sample{Scenario: id, Target: s.Target, Round: p.Round, Value: v})
	if sc, ok := Lookup(id); ok && p.Log != nil {
		fmt.Fprintf(p.Log, "%s round %d: %-55s %12.1f %s\n", s.Target, p.Round, sc.Title, v, sc.Unit)
	}
}

func (p *Pair) gets(ctx context.Context, sides [2]*pairSide) error {
	slice := p.Cfg.Duration / time.Duration(p.Slices)
	for _, run := range []struct {
		id      string
		clients int
	}{{ManifestGet8, 8}, {ManifestGet64, 64}} {
		var n [2]int64
		var d [2]time.Duration
		var cpu [2]float64
		for k := range p.Slices {
			for _, i := range order(k) {
				c := sides[i].c
				err := sides[i].cpuDuring(&cpu[i], func() error {
					nk, dk, err := forDuration(ctx, run.clients, slice, func(ctx context.Context) error {
						_, err := c.GetManifest(ctx, MetaRepo, "latest")
						return err
					})
					n[i], d[i] = n[i]+nk, d[i]+dk
					return err
				})
				if err != nil {
					return fmt.Errorf("%s: %w", sides[i].Target, err)
				}
			}
		}
		for i, s := range sides {
			p.emit(s, run.id, perSec(n[i], d[i]))
			if run.id == ManifestGet8 {
				p.emitCPU(s, ManifestCPU, cpu[i], n[i])
			}
		}
	}
	return nil
}

// pushes sends the same SmallBlobs blobs to each side, SmallBlobs/Slices
// per slice.
func (p *Pair) pushes(ctx context.Context, sides [2]*pairSide) error {
	size := p.Cfg.SmallBytes
	batch := max(1, p.Cfg.SmallBlobs/p.Slices)
	data := RandomBytes(uint64(100+p.Round), batch*p.Slices*size)
	var d [2]time.Duration
	var cpu [2]float64
	for k := range p.Slices {
		for _, i := range order(k) {
			c := sides[i].c
			start := time.Now()
			err := sides[i].cpuDuring(&cpu[i], func() error {
				return forEach(ctx, p.Cfg.SmallClients, batch, func(ctx context.Context, j int) error {
					b := (k*batch + j) * size
					_, err := c.PushTwoStep(ctx, repoSmall, data[b:b+size])
					return err
				})
			})
			if err != nil {
				return fmt.Errorf("%s: %w", sides[i].Target, err)
			}
			d[i] += time.Since(start)
		}
	}
	for i, s := range sides {
		n := int64(batch * p.Slices)
		p.emit(s, PushSmall, perSec(n, d[i]))
		p.emitCPU(s, PushSmallCPU, cpu[i], n)
	}
	return nil
}

// latencies times single requests from one client, slice by slice.
func (p *Pair) latencies(ctx context.Context, sides [2]*pairSide) error {
	slice := p.Cfg.Duration / time.Duration(p.Slices)
	var get, push [2][]time.Duration
	var pushed [2]int
	seed := latencySeed(p.Round)
	for k := range p.Slices {
		for _, i := range order(k) {
			c := sides[i].c
			ts, err := timeEach(ctx, slice, func(ctx context.Context, _ int) error {
				_, err := c.GetManifest(ctx, MetaRepo, "latest")
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", sides[i].Target, err)
			}
			get[i] = append(get[i], ts...)
			ts, err = timeEach(ctx, slice, func(ctx context.Context, _ int) error {
				pushed[i]++
				_, err := c.PushTwoStep(ctx, repoLatency, RandomBytes(seed+uint64(pushed[i]), p.Cfg.SmallBytes))
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", sides[i].Target, err)
			}
			push[i] = append(push[i], ts...)
		}
	}
	for i, s := range sides {
		p.emit(s, ManifestGet1, medianOf(get[i]).Seconds()*1e6)
		p.emit(s, PushSmall1, medianOf(push[i]).Seconds()*1e3)
	}
	return nil
}
