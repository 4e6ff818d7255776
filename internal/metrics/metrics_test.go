package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/octoserve/octoserve/internal/gc"
	"github.com/octoserve/octoserve/internal/registry"
)

// workload is what runWorkload did, for exact checks.
type workload struct {
	uploadBytes   int // request body bytes of upload requests
	blobBytesSent int // response body bytes of blob GETs
	gc            *registry.GCReport
	freed         int64   // bytes of the blobs only the deleted image used
	stored        []int64 // sizes of the blobs left after gc
}

// runWorkload drives s (metrics and auth on) through pushes — monolithic,
// chunked, cancelled, abandoned, mounted — pulls, a failed login, a 404, a
// probe, a manifest delete, a collection that another process's lease
// makes skip, one that runs, and a usage scan.
func runWorkload(t *testing.T, s *stack) workload {
	t.Helper()
	ctx := context.Background()
	var w workload
	cfg1, layer1 := []byte(`{"image":1}`), bytes.Repeat([]byte("layer one "), 500)
	cfg2, layer2 := []byte(`{"image":2}`), bytes.Repeat([]byte("layer two "), 300)
	abandoned := []byte("half a blob nobody finishes")

	s.pushBlob("app", cfg1)
	s.pushBlob("app", layer1)
	m1 := manifest(cfg1, layer1)
	s.putManifest("app", "v1", m1)

	loc := s.must(http.StatusAccepted, "POST", "/v2/app/blobs/uploads/", nil, nil).Header.Get("Location")
	loc = s.must(http.StatusAccepted, "PATCH", loc, cfg2, map[string]string{"Content-Type": "application/octet-stream"}).Header.Get("Location")
	s.must(http.StatusCreated, "PUT", loc+"?digest="+digestOf(cfg2), nil, nil)
	s.pushBlob("app", layer2)
	m2 := manifest(cfg2, layer2)
	d2 := s.putManifest("app", "v2", m2)

	loc = s.must(http.StatusAccepted, "POST", "/v2/app/blobs/uploads/", nil, nil).Header.Get("Location")
	s.must(http.StatusNoContent, "DELETE", loc, nil, nil)
	loc = s.must(http.StatusAccepted, "POST", "/v2/app/blobs/uploads/", nil, nil).Header.Get("Location")
	s.must(http.StatusAccepted, "PATCH", loc, abandoned, map[string]string{"Content-Type": "application/octet-stream"})
	s.must(http.StatusCreated, "POST", "/v2/other/blobs/uploads/?mount="+digestOf(layer1)+"&from=app", nil, nil)
	w.uploadBytes = len(cfg1) + len(layer1) + len(cfg2) + len(layer2) + len(abandoned)

	for i := 0; i < 3; i++ {
		s.must(http.StatusOK, "GET", "/v2/app/manifests/v1", nil, nil)
	}
	for i := 0; i < 2; i++ {
		s.must(http.StatusOK, "GET", "/v2/app/blobs/"+digestOf(layer1), nil, nil)
	}
	s.must(http.StatusOK, "HEAD", "/v2/app/blobs/"+digestOf(layer1), nil, nil)
	w.blobBytesSent = 2 * len(layer1)
	if resp, body := s.doAs(s.user, "wrong password", "GET", "/v2/", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("failed login answered %d: %s", resp.StatusCode, body)
	}
	s.must(http.StatusNotFound, "GET", "/v2/app/manifests/nope", nil, nil)
	s.must(http.StatusOK, "GET", "/readyz", nil, nil)
	s.must(http.StatusAccepted, "DELETE", "/v2/app/manifests/"+d2, nil, nil)

	// Everything is two hours old, so the collection (minAge 1h) removes
	// what the deleted image alone used, and the abandoned upload.
	backdate(t, s.root, 2*time.Hour)
	obs := s.m.Housekeeping(time.Hour)
	log := slog.New(slog.DiscardHandler)
	opts := registry.GCOptions{MinAge: time.Hour, UploadMaxIdle: time.Hour}
	lease, err := s.reg.AcquireLease(ctx, "another replica", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gc.Collect(ctx, log, s.reg, opts, obs); !errors.Is(err, registry.ErrBusy) {
		t.Fatalf("collection beside another's lease: %v, want ErrBusy", err)
	}
	gc.ExpireUploads(ctx, log, s.reg, time.Hour, obs)
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if w.gc, err = gc.Collect(ctx, log, s.reg, opts, obs); err != nil {
		t.Fatal(err)
	}
	w.freed = int64(len(cfg2) + len(layer2) + len(m2))
	if w.gc.BytesFreed != w.freed || len(w.gc.Blobs) != 3 || w.gc.Uploads != 1 {
		t.Fatalf("collection removed %d blobs (%d bytes) and %d uploads; want 3 (%d bytes) and 1", len(w.gc.Blobs), w.gc.BytesFreed, w.gc.Uploads, w.freed)
	}
	if err := s.m.ScanUsage(ctx, s.reg); err != nil {
		t.Fatal(err)
	}
	w.stored = []int64{int64(len(cfg1)), int64(len(layer1)), int64(len(m1))}
	return w
}

func backdate(t *testing.T, root string, by time.Duration) {
	t.Helper()
	old := time.Now().Add(-by)
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			err = os.Chtimes(p, old, old)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// families parses the text exposition with the Prometheus parser.
func families(t *testing.T, exposition []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(exposition))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, exposition)
	}
	return fams
}

// sum adds the values of the samples of family name whose labels include
// labels; for a histogram, the value is its count (field "count") or sum
// ("sum").
func sum(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string, field ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	var total float64
	for _, m := range f.Metric {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil && len(field) > 0 && field[0] == "sum":
			total += m.Histogram.GetSampleSum()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range m.Label {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(want)
}

func TestWorkloadMetrics(t *testing.T) {
	var requestLog bytes.Buffer
	s := newStack(t, stackOptions{metrics: true, auth: true, log: &requestLog})
	w := runWorkload(t, s)
	fams := families(t, scrape(t, s.m))

	type L = map[string]string
	for _, c := range []struct {
		name   string
		labels L
		want   float64
		field  string
	}{
		{"octoserve_http_requests_total", L{"kind": "manifest", "method": "GET", "code": "200"}, 3, ""},
		{"octoserve_http_requests_total", L{"kind": "manifest", "method": "GET", "code": "404"}, 1, ""},
		{"octoserve_http_requests_total", L{"kind": "manifest", "method": "PUT", "code": "201"}, 2, ""},
		{"octoserve_http_requests_total", L{"kind": "manifest", "method": "DELETE", "code": "202"}, 1, ""},
		{"octoserve_http_requests_total", L{"kind": "blob", "method": "GET", "code": "200"}, 2, ""},
		{"octoserve_http_requests_total", L{"kind": "blob", "method": "HEAD", "code": "200"}, 1, ""},
		{"octoserve_http_requests_total", L{"kind": "upload", "method": "POST", "code": "201"}, 4, ""}, // 3 monolithic, 1 mount
		{"octoserve_http_requests_total", L{"kind": "upload", "method": "POST", "code": "202"}, 3, ""},
		{"octoserve_http_requests_total", L{"kind": "upload", "method": "PATCH", "code": "202"}, 2, ""},
		{"octoserve_http_requests_total", L{"kind": "upload", "method": "PUT", "code": "201"}, 1, ""},
		{"octoserve_http_requests_total", L{"kind": "upload", "method": "DELETE", "code": "204"}, 1, ""},
		{"octoserve_http_requests_total", L{"kind": "base", "method": "GET", "code": "401"}, 1, ""},
		{"octoserve_http_requests_total", L{"kind": "other", "method": "GET", "code": "200"}, 1, ""},
		{"octoserve_http_requests_total", L{}, 23, ""},
		{"octoserve_http_request_duration_seconds", L{"kind": "manifest", "method": "GET"}, 4, "count"},
		{"octoserve_http_request_duration_seconds", L{}, 23, "count"},
		{"octoserve_http_request_size_bytes", L{"kind": "upload"}, float64(w.uploadBytes), "sum"},
		{"octoserve_http_response_size_bytes", L{"kind": "blob"}, float64(w.blobBytesSent), "sum"},
		{"octoserve_http_requests_in_flight", L{}, 0, ""},
		{"octoserve_uploads_started_total", L{}, 6, ""}, // 3 monolithic, 3 sessions
		{"octoserve_uploads_finished_total", L{}, 4, ""},
		{"octoserve_uploads_cancelled_total", L{}, 1, ""},
		{"octoserve_uploads_expired_total", L{}, 1, ""},
		{"octoserve_blob_mounts_total", L{}, 1, ""},
		{"octoserve_auth_failed_logins_total", L{}, 1, ""},
		{"octoserve_auth_rate_limited_total", L{}, 0, ""},
		{"octoserve_gc_runs_total", L{"result": "success"}, 1, ""},
		{"octoserve_gc_runs_total", L{"result": "skipped"}, 1, ""},
		{"octoserve_gc_runs_total", L{"result": "failure"}, 0, ""},
		{"octoserve_upload_expiry_runs_total", L{"result": "skipped"}, 1, ""},
		{"octoserve_gc_duration_seconds", L{}, 1, "count"},
		{"octoserve_gc_blobs_removed_total", L{}, 3, ""},
		{"octoserve_gc_manifests_removed_total", L{}, 0, ""},
		{"octoserve_gc_freed_bytes_total", L{}, float64(w.freed), ""},
		{"octoserve_gc_interval_seconds", L{}, 3600, ""},
		{"octoserve_storage_errors_total", L{"class": "no_space"}, 0, ""},
		{"octoserve_storage_errors_total", L{"class": "other"}, 0, ""},
		{"octoserve_storage_bytes", L{}, float64(w.stored[0] + w.stored[1] + w.stored[2]), ""},
		{"octoserve_storage_blobs", L{}, 3, ""},
		{"octoserve_storage_unlinked_bytes", L{}, 0, ""},
		{"octoserve_repositories", L{}, 1, ""},
		{"octoserve_repository_bytes", L{"repository": "app"}, float64(w.stored[0] + w.stored[1] + w.stored[2]), ""},
		{"octoserve_repository_blobs", L{"repository": "app"}, 3, ""},
		{"octoserve_uploads_in_progress", L{}, 0, ""},
		{"octoserve_usage_scans_total", L{"result": "success"}, 1, ""},
		{"octoserve_build_info", L{"version": "test"}, 1, ""},
	} {
		if got := sum(t, fams, c.name, c.labels, c.field); got != c.want {
			t.Errorf("%s%v %s = %v, want %v", c.name, c.labels, c.field, got, c.want)
		}
	}
	for _, positive := range []string{
		"octoserve_gc_last_success_timestamp_seconds", "octoserve_storage_filesystem_avail_bytes",
		"octoserve_storage_filesystem_size_bytes", "octoserve_storage_filesystem_files_free", "process_resident_memory_bytes",
	} {
		if got := sum(t, fams, positive, nil); got <= 0 {
			t.Errorf("%s = %v, want > 0", positive, got)
		}
	}
	// Every storage call of the workload went through the decorator:
	// among them the probe's write and the upload chunks' commits.
	for _, action := range []string{"put_content", "stat", "writer", "write", "commit", "walk", "put_if", "delete_all"} {
		if got := sum(t, fams, "octoserve_storage_operation_duration_seconds", map[string]string{"backend": "filesystem", "action": action}, "count"); got == 0 {
			t.Errorf("no %s call measured", action)
		}
	}
	if sum(t, fams, "octoserve_storage_errors_total", map[string]string{"class": "not_found"}) == 0 {
		t.Error("no not_found error counted, though the 404 needed one")
	}
	if !strings.Contains(requestLog.String(), " user=alice ") || !strings.Contains(requestLog.String(), "query=\"from=app&mount=sha256") {
		t.Errorf("the request log lacks the user or the mount's query:\n%s", requestLog.String())
	}
}

// Without metrics the stack serves the same workload's requests, and the
// request log still has every line.
func TestNoMetricsNoObserver(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.pushBlob("app", []byte("x"))
	if resp, _ := s.do("GET", "/metrics", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/metrics on the public listener: %d", resp.StatusCode)
	}
}

// The names a scrape exports, with the series names a histogram's family
// stands for.
func exportedNames(fams map[string]*dto.MetricFamily) map[string]bool {
	names := map[string]bool{}
	for name, f := range fams {
		names[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[name+suffix] = true
			}
		}
	}
	return names
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
