package loadgen

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// SHA256Rate hashes data again and again for about d on one goroutine and
// returns MiB/s.
func SHA256Rate(data []byte, d time.Duration) float64 {
	var n int64
	start := time.Now()
	for n == 0 || time.Since(start) < d {
		sum := sha256.Sum256(data)
		_ = sum
		n += int64(len(data))
	}
	return mibPerSec(n, time.Since(start))
}

// FdatasyncRate writes data to a new file in dir in 1 MiB writes, makes
// it durable with fdatasync and returns MiB/s; the file is removed.
func FdatasyncRate(dir string, data []byte) (float64, error) {
	path := filepath.Join(dir, "fdatasync-probe")
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer os.Remove(path)
	defer f.Close()
	start := time.Now()
	for off := 0; off < len(data); off += mib {
		if _, err := f.Write(data[off:min(off+mib, len(data))]); err != nil {
			return 0, fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := fdatasync(f); err != nil {
		return 0, fmt.Errorf("fdatasync %s: %w", path, err)
	}
	return mibPerSec(int64(len(data)), time.Since(start)), nil
}

// TrivialHandler is the physical-limit server: the least a Go HTTP server
// can do to send the big blob (/bytes, one Write from memory) and the
// manifest and tag-list bodies (/manifest, /taglist, constants).
func TrivialHandler(cfg Config) http.Handler {
	big := RandomBytes(1, cfg.BigBytes)
	manifest := MetaManifest()
	tags := TagListBody(MetaRepo, cfg.Tags)
	constant := func(body []byte, contentType string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h.Set("Content-Type", contentType)
			h.Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/bytes", constant(big, "application/octet-stream"))
	mux.Handle("/manifest", constant(manifest, MediaTypeOCIManifest))
	mux.Handle("/taglist", constant(tags, "application/json"))
	return mux
}

// ServeTrivial serves TrivialHandler on ln until ctx ends.
func ServeTrivial(ctx context.Context, ln net.Listener, cfg Config) error {
	return Serve(ctx, ln, TrivialHandler(cfg))
}

// MeasureTrivial drives the trivial server at url the way the registry
// scenarios drive a registry and emits the limit figures.
func MeasureTrivial(ctx context.Context, url string, cfg Config, emit func(id string, v float64)) error {
	c, err := NewClient(url, 64)
	if err != nil {
		return err
	}
	defer c.Close()
	digest := Digest(RandomBytes(1, cfg.BigBytes))
	var total int64
	start := time.Now()
	for range cfg.PullReps {
		resp, err := c.do(ctx, "GET", "/bytes", nil, 0, nil, http.StatusOK)
		if err != nil {
			return err
		}
		n, err := verifyBody(resp.Body, digest)
		_ = resp.Body.Close()
		if err != nil {
			return err
		}
		total += n
	}
	emit(LimitPull, mibPerSec(total, time.Since(start)))
	for _, run := range []struct {
		id, path string
		clients  int
	}{{LimitConst8, "/manifest", 8}, {LimitConst64, "/manifest", 64}, {LimitTagConst8, "/taglist", 8}} {
		n, d, err := forDuration(ctx, run.clients, cfg.Duration, func(ctx context.Context) error {
			_, _, err := c.get(ctx, run.path)
			return err
		})
		if err != nil {
			return err
		}
		emit(run.id, perSec(n, d))
	}
	return nil
}
