package metrics_test

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/httplog"
	"github.com/octoserve/octoserve/internal/metrics"
	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/memory"
)

// The cost of the metrics: the same handler stack over httptest with
// metrics off (the request log only) and on (the observer in the request
// wrapper, the storage decorator). BenchmarkManifestGET and
// BenchmarkBlobPush run each mode on its own (allocations per request);
// BenchmarkMetricsCost alternates the two request by request, so that
// whatever else the machine does slows both alike, and reports the ratio:
//
//	go test -run '^$' -bench MetricsCost -count 5 ./internal/metrics/
//
// docs/operations.md has the ratio measured here.

var onOff = []struct {
	name string
	on   bool
}{{"metrics=off", false}, {"metrics=on", true}}

func BenchmarkManifestGET(b *testing.B) {
	for _, mode := range onOff {
		b.Run(mode.name, func(b *testing.B) {
			s := newStack(b, stackOptions{metrics: mode.on})
			cfg, layer := []byte(`{"bench":true}`), []byte("a small layer")
			s.pushBlob("bench/app", cfg)
			s.pushBlob("bench/app", layer)
			s.putManifest("bench/app", "latest", manifest(cfg, layer))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.must(http.StatusOK, "GET", "/v2/bench/app/manifests/latest", nil, map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"})
			}
		})
	}
}

// BenchmarkBlobPush pushes a new 4 KiB blob per iteration in one POST:
// stored, fsync'd and linked, as a client's small layer or config is.
func BenchmarkBlobPush(b *testing.B) {
	for _, mode := range onOff {
		b.Run(mode.name, func(b *testing.B) {
			s := newStack(b, stackOptions{metrics: mode.on})
			blob := make([]byte, 4096)
			b.SetBytes(int64(len(blob)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				binary.LittleEndian.PutUint64(blob, uint64(i)) // a new blob each time
				s.pushBlob("bench/app", blob)
			}
		})
	}
}

// BenchmarkMetricsCost sends each request once to a stack without metrics
// and once to one with them, in alternating order, and reports the median
// time per request of each and on/off, their ratio.
func BenchmarkMetricsCost(b *testing.B) {
	b.Run("manifest-get", func(b *testing.B) {
		pair(b, func(s *stack) func(int) {
			cfg, layer := []byte(`{"bench":true}`), []byte("a small layer")
			s.pushBlob("bench/app", cfg)
			s.pushBlob("bench/app", layer)
			s.putManifest("bench/app", "latest", manifest(cfg, layer))
			return func(int) {
				s.must(http.StatusOK, "GET", "/v2/bench/app/manifests/latest", nil, map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"})
			}
		})
	})
	b.Run("blob-push-4KiB", func(b *testing.B) {
		pair(b, func(s *stack) func(int) {
			blob := make([]byte, 4096)
			return func(i int) {
				binary.LittleEndian.PutUint64(blob, uint64(i))
				s.pushBlob("bench/app", blob)
			}
		})
	})
}

// pair times request (made by setup for each stack) on both stacks, and
// reports the median time per request of each and their ratio: medians,
// so that a request the busy machine happened to stall does not decide.
func pair(b *testing.B, setup func(*stack) func(i int)) {
	off, on := newStack(b, stackOptions{}), newStack(b, stackOptions{metrics: true})
	reqOff, reqOn := setup(off), setup(on)
	tOff, tOn := make([]time.Duration, b.N), make([]time.Duration, b.N)
	timed := func(req func(int), i int) time.Duration {
		start := time.Now()
		req(i)
		return time.Since(start)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			tOff[i] = timed(reqOff, i)
			tOn[i] = timed(reqOn, i)
		} else {
			tOn[i] = timed(reqOn, i)
			tOff[i] = timed(reqOff, i)
		}
	}
	b.StopTimer()
	mOff, mOn := median(tOff), median(tOn)
	b.ReportMetric(float64(mOff.Nanoseconds()), "off-ns/req")
	b.ReportMetric(float64(mOn.Nanoseconds()), "on-ns/req")
	b.ReportMetric(float64(mOn)/float64(mOff), "on/off")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkObserver is what the request wrapper adds per request with
// metrics on: route classification, the counters and histograms.
func BenchmarkObserver(b *testing.B) {
	obs := metrics.New("bench").HTTP()
	r := httptest.NewRequest("GET", "/v2/library/alpine/manifests/latest", nil)
	res := httplog.Result{Status: 200, BytesOut: 1024, Duration: 3 * time.Millisecond}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		obs.Started(r)
		obs.Finished(r, res)
	}
}

// BenchmarkStorageStat is one storage call, bare and through the
// decorator (in memory, so that only the decorator's cost differs).
func BenchmarkStorageStat(b *testing.B) {
	ctx := context.Background()
	bare := memory.New()
	if err := bare.PutContent(ctx, "a/b", []byte("x")); err != nil {
		b.Fatal(err)
	}
	for _, d := range []struct {
		name string
		d    storage.Driver
	}{{"bare", bare}, {"instrumented", metrics.New("bench").InstrumentDriver(bare, "memory")}} {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := d.d.Stat(ctx, "a/b"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
