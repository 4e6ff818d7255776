package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/httplog"
)

// Route kinds are the API's (api.Kind, in its order) and "other": paths
// outside the API, and paths the router refuses.
var kindNames = [...]string{
	api.KindBase: "base", api.KindCatalog: "catalog", api.KindBlob: "blob", api.KindUpload: "upload",
	api.KindManifest: "manifest", api.KindTags: "tags", api.KindReferrers: "referrers",
}

const kindOther = len(kindNames)

// Methods are the API's and "other", so that a client inventing methods
// cannot invent series.
var methodNames = [...]string{"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "other"}

const methodOther = len(methodNames) - 1

func methodIndex(m string) int {
	for i, name := range methodNames[:methodOther] {
		if m == name {
			return i
		}
	}
	return methodOther
}

// kindIndex classifies path as the API's router does, by its shape (a
// request with an invalid repository name keeps its route's kind).
func kindIndex(path string) int {
	kind, ok := api.KindOf(path)
	if !ok {
		return kindOther
	}
	return int(kind)
}

// Latency buckets, in seconds: from a cached manifest (a millisecond) to a
// large blob over a slow link (minutes).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// Size buckets, in bytes: 256 B to 4 GiB by powers of 4.
var sizeBuckets = prometheus.ExponentialBuckets(256, 4, 13)

// httpMetrics is the httplog.Observer: the metrics of every request.
// The series of a (kind, method, code) and of a (kind, method) are looked
// up once, on first use, so that a request costs a few atomic additions,
// and a route never used exports no empty histogram.
type httpMetrics struct {
	requests    *prometheus.CounterVec
	byCode      sync.Map // requestKey -> prometheus.Counter
	durationVec *prometheus.HistogramVec
	duration    [kindOther + 1][len(methodNames)]atomic.Pointer[prometheus.Observer]
	reqSize     [kindOther + 1]prometheus.Observer
	respSize    [kindOther + 1]prometheus.Observer
	inFlight    prometheus.Gauge

	uploadsStarted, uploadsFinished, uploadsCancelled, mounts prometheus.Counter
}

var _ httplog.Observer = (*httpMetrics)(nil)

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	h := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "Requests answered, by route kind, method and status code.",
		}, []string{"kind", "method", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "http_requests_in_flight",
			Help: "Requests being served now.",
		}),
		uploadsStarted:   counter("uploads_started_total", "Upload sessions opened (POST answered 202), and monolithic uploads (POST with digest answered 201)."),
		uploadsFinished:  counter("uploads_finished_total", "Blobs stored by an upload: the PUT closing a session, or a monolithic POST, answered 201."),
		uploadsCancelled: counter("uploads_cancelled_total", "Upload sessions cancelled by the client (DELETE answered 204)."),
		mounts:           counter("blob_mounts_total", "Blobs mounted from another repository instead of uploaded (POST with mount answered 201)."),
	}
	h.durationVec = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "http_request_duration_seconds",
		Help:    "Time from the request's headers to the end of its response, by route kind and method.",
		Buckets: latencyBuckets,
	}, []string{"kind", "method"})
	reqSize := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "http_request_size_bytes",
		Help:    "Request body bytes read, by route kind; the sum is the bytes received.",
		Buckets: sizeBuckets,
	}, []string{"kind"})
	respSize := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "http_response_size_bytes",
		Help:    "Response body bytes written, by route kind; the sum is the bytes sent.",
		Buckets: sizeBuckets,
	}, []string{"kind"})
	for k := 0; k <= kindOther; k++ {
		h.reqSize[k] = reqSize.WithLabelValues(kindName(k))
		h.respSize[k] = respSize.WithLabelValues(kindName(k))
	}
	reg.MustRegister(h.requests, h.inFlight, h.durationVec, reqSize, respSize,
		h.uploadsStarted, h.uploadsFinished, h.uploadsCancelled, h.mounts)
	return h
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
}

func kindName(k int) string {
	if k == kindOther {
		return "other"
	}
	return kindNames[k]
}

// HTTP returns the observer to give httplog.Handler.
func (m *Metrics) HTTP() httplog.Observer { return m.http }

func (h *httpMetrics) Started(*http.Request) { h.inFlight.Inc() }

func (h *httpMetrics) Finished(r *http.Request, res httplog.Result) {
	h.inFlight.Dec()
	k, m := kindIndex(r.URL.Path), methodIndex(r.Method)
	h.requestCounter(k, m, res.Status).Inc()
	h.durationOf(k, m).Observe(res.Duration.Seconds())
	h.reqSize[k].Observe(float64(res.BytesIn))
	h.respSize[k].Observe(float64(res.BytesOut))
	if k == int(api.KindUpload) {
		h.countUpload(r, res.Status)
	}
}

type requestKey struct{ kind, method, code int }

func (h *httpMetrics) requestCounter(k, m, code int) prometheus.Counter {
	key := requestKey{k, m, code}
	if c, ok := h.byCode.Load(key); ok {
		return c.(prometheus.Counter)
	}
	c := h.requests.WithLabelValues(kindName(k), methodNames[m], strconv.Itoa(code))
	h.byCode.Store(key, c)
	return c
}

func (h *httpMetrics) durationOf(k, m int) prometheus.Observer {
	if o := h.duration[k][m].Load(); o != nil {
		return *o
	}
	o := h.durationVec.WithLabelValues(kindName(k), methodNames[m])
	h.duration[k][m].Store(&o)
	return o
}

// countUpload counts an upload request's outcome from its method and
// status, as the API answers them (internal/api/upload.go).
func (h *httpMetrics) countUpload(r *http.Request, status int) {
	switch {
	case r.Method == http.MethodPost && status == http.StatusAccepted:
		h.uploadsStarted.Inc()
	case r.Method == http.MethodPost && status == http.StatusCreated:
		if r.URL.Query().Get("mount") != "" {
			h.mounts.Inc()
			return
		}
		h.uploadsStarted.Inc()
		h.uploadsFinished.Inc()
	case r.Method == http.MethodPut && status == http.StatusCreated:
		h.uploadsFinished.Inc()
	case r.Method == http.MethodDelete && status == http.StatusNoContent:
		h.uploadsCancelled.Inc()
	}
}
