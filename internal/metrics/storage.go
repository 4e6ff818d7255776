package metrics

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octoserve/octoserve/internal/storage"
)

// action is one kind of storage call.
type action int

const (
	actGetContent action = iota
	actPutContent
	actGetVersioned
	actPutIf
	actReader
	actWriter
	actWrite
	actCommit
	actCancel
	actCompose
	actStat
	actList
	actWalk
	actTouch
	actDelete
	actDeleteAll
	actRedirectURL
	numActions
)

var actionNames = [numActions]string{
	"get_content", "put_content", "get_versioned", "put_if", "reader", "writer", "write", "commit", "cancel",
	"compose", "stat", "list", "walk", "touch", "delete", "delete_all", "redirect_url",
}

// errClass sorts a storage error for alerting: not_found and conflict are
// answers the registry expects (a Stat of a missing object, a create-only
// write that lost a race), canceled follows a client that went away;
// no_space and other are the store failing.
type errClass int

const (
	classNotFound errClass = iota
	classNoSpace
	classConflict
	classCanceled
	classOther
	numClasses
)

var classNames = [numClasses]string{"not_found", "no_space", "conflict", "canceled", "other"}

func classify(err error) errClass {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return classNotFound
	case errors.Is(err, storage.ErrNoSpace):
		return classNoSpace
	case errors.Is(err, storage.ErrExists), errors.Is(err, storage.ErrChanged):
		return classConflict
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return classCanceled
	}
	return classOther
}

type storageMetrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

func newStorageMetrics(reg prometheus.Registerer) *storageMetrics {
	s := &storageMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "storage_operation_duration_seconds",
			Help: "Storage driver calls, by backend and action. A walk includes the caller's work per object; " +
				"write is one Write of a stream, commit publishes it (fsync on a disk).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"backend", "action"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "storage_errors_total",
			Help: "Storage driver calls that failed, by backend, action and class: not_found and conflict are expected answers, " +
				"canceled follows a client gone, no_space is a full disk or quota, other is the store failing.",
		}, []string{"backend", "action", "class"}),
	}
	reg.MustRegister(s.duration, s.errors)
	return s
}

// op is the metrics of one action of one backend, looked up once.
type op struct {
	duration prometheus.Observer
	errors   [numClasses]prometheus.Counter
}

type ops [numActions]op

func (s *storageMetrics) forBackend(backend string) *ops {
	var o ops
	for a, name := range actionNames {
		o[a].duration = s.duration.WithLabelValues(backend, name)
		for c, class := range classNames {
			o[a].errors[c] = s.errors.WithLabelValues(backend, name, class)
		}
	}
	return &o
}

func (o *ops) done(a action, start time.Time, err error) {
	o[a].duration.Observe(time.Since(start).Seconds())
	if err != nil {
		o[a].errors[classify(err)].Inc()
	}
}

// InstrumentDriver returns d with every call timed and every error
// counted under backend's name. A backend that redirects clients
// (storage.Redirector) still does. Readers are returned as d made them,
// so that an *os.File still reaches the HTTP layer's fast copy: the open
// is measured, the reads are not.
func (m *Metrics) InstrumentDriver(d storage.Driver, backend string) storage.Driver {
	id := &driver{d: d, ops: m.storage.forBackend(backend)}
	if r, ok := d.(storage.Redirector); ok {
		return &redirectingDriver{driver: id, r: r}
	}
	return id
}

// driver implements every method of storage.Driver itself, so that a
// method added to the interface cannot pass through unmeasured.
type driver struct {
	d   storage.Driver
	ops *ops
}

func (d *driver) GetContent(ctx context.Context, path string) ([]byte, error) {
	start := time.Now()
	b, err := d.d.GetContent(ctx, path)
	d.ops.done(actGetContent, start, err)
	return b, err
}

func (d *driver) PutContent(ctx context.Context, path string, data []byte) error {
	start := time.Now()
	err := d.d.PutContent(ctx, path, data)
	d.ops.done(actPutContent, start, err)
	return err
}

func (d *driver) GetVersioned(ctx context.Context, path string) ([]byte, storage.Version, error) {
	start := time.Now()
	b, v, err := d.d.GetVersioned(ctx, path)
	d.ops.done(actGetVersioned, start, err)
	return b, v, err
}

func (d *driver) PutIf(ctx context.Context, path string, data []byte, match storage.Version) error {
	start := time.Now()
	err := d.d.PutIf(ctx, path, data, match)
	d.ops.done(actPutIf, start, err)
	return err
}

func (d *driver) Reader(ctx context.Context, path string) (io.ReadSeekCloser, storage.Info, error) {
	start := time.Now()
	rc, info, err := d.d.Reader(ctx, path)
	d.ops.done(actReader, start, err)
	return rc, info, err
}

func (d *driver) Writer(ctx context.Context, path string, mode storage.WriteMode) (storage.Writer, error) {
	start := time.Now()
	w, err := d.d.Writer(ctx, path, mode)
	d.ops.done(actWriter, start, err)
	if err != nil {
		return nil, err
	}
	return &writer{w: w, ops: d.ops}, nil
}

func (d *driver) Compose(ctx context.Context, dst string, srcs []string) error {
	start := time.Now()
	err := d.d.Compose(ctx, dst, srcs)
	d.ops.done(actCompose, start, err)
	return err
}

func (d *driver) Stat(ctx context.Context, path string) (storage.Info, error) {
	start := time.Now()
	info, err := d.d.Stat(ctx, path)
	d.ops.done(actStat, start, err)
	return info, err
}

func (d *driver) List(ctx context.Context, dir, after string, limit int) ([]storage.Entry, error) {
	start := time.Now()
	entries, err := d.d.List(ctx, dir, after, limit)
	d.ops.done(actList, start, err)
	return entries, err
}

func (d *driver) Names(ctx context.Context, dir, after string, limit int) ([]storage.Entry, error) {
	start := time.Now()
	entries, err := d.d.Names(ctx, dir, after, limit)
	d.ops.done(actList, start, err)
	return entries, err
}

// Walk counts an error fn returned as the caller's, not the store's.
func (d *driver) Walk(ctx context.Context, prefix string, fn func(storage.Entry) error) error {
	start := time.Now()
	var fnErr error
	err := d.d.Walk(ctx, prefix, func(e storage.Entry) error {
		fnErr = fn(e)
		return fnErr
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		d.ops.done(actWalk, start, nil)
		return err
	}
	d.ops.done(actWalk, start, err)
	return err
}

func (d *driver) Touch(ctx context.Context, path string) error {
	start := time.Now()
	err := d.d.Touch(ctx, path)
	d.ops.done(actTouch, start, err)
	return err
}

func (d *driver) Delete(ctx context.Context, path string) error {
	start := time.Now()
	err := d.d.Delete(ctx, path)
	d.ops.done(actDelete, start, err)
	return err
}

func (d *driver) DeleteAll(ctx context.Context, prefix string) error {
	start := time.Now()
	err := d.d.DeleteAll(ctx, prefix)
	d.ops.done(actDeleteAll, start, err)
	return err
}

type redirectingDriver struct {
	*driver
	r storage.Redirector
}

func (d *redirectingDriver) RedirectURL(ctx context.Context, path string) (string, error) {
	start := time.Now()
	u, err := d.r.RedirectURL(ctx, path)
	d.ops.done(actRedirectURL, start, err)
	return u, err
}

// writer measures every call of a storage.Writer.
type writer struct {
	w   storage.Writer
	ops *ops
}

func (w *writer) Write(b []byte) (int, error) {
	start := time.Now()
	n, err := w.w.Write(b)
	w.ops.done(actWrite, start, err)
	return n, err
}

// ReadFrom keeps the backend's own ReadFrom (a kernel copy into a file)
// reachable through the wrapper; it counts as one write.
func (w *writer) ReadFrom(r io.Reader) (int64, error) {
	start := time.Now()
	var n int64
	var err error
	if rf, ok := w.w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.w}, r)
	}
	w.ops.done(actWrite, start, err)
	return n, err
}

func (w *writer) Size() int64 { return w.w.Size() }

func (w *writer) Commit(ctx context.Context) error {
	start := time.Now()
	err := w.w.Commit(ctx)
	w.ops.done(actCommit, start, err)
	return err
}

func (w *writer) Cancel(ctx context.Context) error {
	start := time.Now()
	err := w.w.Cancel(ctx)
	w.ops.done(actCancel, start, err)
	return err
}
