package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/octoserve/octoserve/internal/storage"
)

// The housekeeping protocol: how a collector removes what nothing uses
// while writers — in this process, in other processes, on other replicas
// over the same bucket — keep pushing, with nothing shared but the store.
// It needs of the store only what storage.go promises every backend:
// read-after-write consistency, ModTimes that never go back, and
// create-only / compare-and-swap writes of small objects. It uses no
// atomic move and no lock held in memory.
//
// One collector at a time. Housekeeping (garbage collection, upload
// expiry, quarantine) runs under a lease: the object _gc/lease, created
// only if absent and renewed or taken over only by compare-and-swap
// (storage.Driver.PutIf), so at most one process holds an unexpired
// lease. The holder renews it while it works and stops deleting when it
// cannot (a collector paused past its lease must not resume deleting: it
// checks its lease before each deletion).
//
// Age. "Young" means written or refreshed after the cutoff: the store's
// time when the collection starts (the ModTime of _gc/clock, written
// then) minus gc.minAge and the backend's clock skew allowance. Anything
// young is kept whatever the mark says: it may belong to a push in
// progress. Judging by the store's own clock, never this process's, lets
// replicas with skewed clocks share a bucket.
//
// Each side writes before it reads what the other writes:
//
//   - The collector, before it removes an object, marks it — writes
//     _gc/judging/<hash of path> — and only then looks again: at the object's
//     ModTime (young: keep) and at whatever else says it is used (a blob:
//     any link to it; a referrer entry: its manifest). If it removes the
//     object, it does so before it removes the mark.
//   - A writer first writes or refreshes (Touch) everything it relies on —
//     a new link, the blob, the links a manifest references, an upload's
//     session — and then settles: if a lease is held, it waits until no
//     mark names any of those paths; then it checks they are all there.
//     Something missing was removed by a collector that judged it before
//     the writer's refresh: the writer writes it again (its own blob, its
//     own links) or refuses the request (a blob a manifest references:
//     MANIFEST_BLOB_UNKNOWN, and the client pushes again).
//
// If the collector did not see the writer's write, its look came before
// that write, so its mark came before it too, and the writer's settle
// (after its write) sees the mark, or sees the removal it stood for. A
// writer that finds no lease at all knows no collector has looked at
// anything since before its writes, or that the last one finished. So a
// request is never acknowledged with something it relies on removed, and
// nothing is removed that a request acknowledged relies on.
//
// A crashed collector leaves its lease to expire and at most one mark;
// writers ignore marks once the lease has expired, and the next holder
// clears them. Marks, the lease and the removals themselves need not
// survive a crash (storage.NoSync): what matters is that each is visible
// before the next step, and a crash that undoes a removal leaves garbage
// for the next collection, nothing worse. Object by object, what "used"
// means is in gc.go.

const (
	leasePath  = "_gc/lease"
	judgingDir = "_gc/judging"
	clockPath  = "_gc/clock"
)

// judgingMark is the mark of path: one object directly in judgingDir,
// named by a hash of the path (paths are too long, and too deep, to mirror
// cheaply on a filesystem), holding the path itself for whoever looks.
func judgingMark(path string) string {
	sum := sha256.Sum256([]byte(path))
	return judgingDir + "/" + hex.EncodeToString(sum[:20])
}

// ErrBusy is returned when another process holds the housekeeping lease.
var ErrBusy = errors.New("another collection or housekeeping run holds the lease")

// errLeaseLost stops a collector that could not renew its lease in time.
var errLeaseLost = errors.New("the housekeeping lease was lost (expired or taken over); stopping")

// leaseRecord is the content of _gc/lease.
type leaseRecord struct {
	Owner   string    `json:"owner"`
	Expires time.Time `json:"expires"`
}

// leaseGrace is how long past a lease's expiry a writer still honours its
// marks: the allowance for clocks of different hosts disagreeing.
const leaseGrace = 10 * time.Second

// Lease is the housekeeping lease, held by this process.
type Lease struct {
	r       *Registry
	owner   string
	ttl     time.Duration
	mu      sync.Mutex
	version storage.Version
	expires time.Time // by this process's clock
	stop    chan struct{}
	done    chan struct{}
}

// AcquireLease takes the housekeeping lease for ttl, renewing it in the
// background every ttl/3 until Release. It returns ErrBusy while another
// process holds an unexpired lease.
func (r *Registry) AcquireLease(ctx context.Context, owner string, ttl time.Duration) (*Lease, error) {
	l := &Lease{r: r, owner: owner, ttl: ttl, stop: make(chan struct{}), done: make(chan struct{})}
	if err := l.take(ctx); err != nil {
		return nil, err
	}
	go l.renewLoop()
	if err := r.d.DeleteAll(storage.NoSync(ctx), judgingDir); err != nil {
		_ = l.Release(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("clearing marks of an earlier collection: %w", err)
	}
	return l, nil
}

func (l *Lease) record() ([]byte, time.Time) {
	expires := time.Now().Add(l.ttl)
	b, _ := json.Marshal(leaseRecord{Owner: l.owner, Expires: expires})
	return b, expires
}

// take creates the lease, or takes over an expired one.
func (l *Lease) take(ctx context.Context) error {
	b, expires := l.record()
	err := l.r.d.PutIf(storage.NoSync(ctx), leasePath, b, storage.Absent)
	if errors.Is(err, storage.ErrExists) {
		var cur []byte
		var v storage.Version
		cur, v, err = l.r.d.GetVersioned(ctx, leasePath)
		if isNotFound(err) {
			return ErrBusy // released just now: the caller may try again
		}
		if err != nil {
			return fmt.Errorf("reading the lease: %w", err)
		}
		var rec leaseRecord
		if json.Unmarshal(cur, &rec) == nil && time.Now().Before(rec.Expires.Add(leaseGrace)) {
			return fmt.Errorf("%w (%s, until %s)", ErrBusy, rec.Owner, rec.Expires.Format(time.RFC3339))
		}
		err = l.r.d.PutIf(storage.NoSync(ctx), leasePath, b, v)
	}
	if errors.Is(err, storage.ErrExists) || errors.Is(err, storage.ErrChanged) {
		return ErrBusy
	}
	if err != nil {
		return fmt.Errorf("taking the lease: %w", err)
	}
	_, v, err := l.r.d.GetVersioned(ctx, leasePath)
	if err != nil {
		return fmt.Errorf("reading the lease back: %w", err)
	}
	l.mu.Lock()
	l.version, l.expires = v, expires
	l.mu.Unlock()
	return nil
}

func (l *Lease) renewLoop() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if l.renew(context.Background()) != nil {
				return // Valid turns false once the old expiry passes
			}
		}
	}
}

// renew extends the lease if it is still the version this process wrote.
func (l *Lease) renew(ctx context.Context) error {
	l.mu.Lock()
	v := l.version
	l.mu.Unlock()
	b, expires := l.record()
	if err := l.r.d.PutIf(storage.NoSync(ctx), leasePath, b, v); err != nil {
		return err
	}
	_, nv, err := l.r.d.GetVersioned(ctx, leasePath)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.version, l.expires = nv, expires
	l.mu.Unlock()
	return nil
}

// Valid reports whether the lease is safely held: its expiry is more than
// a third of its term away.
func (l *Lease) Valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Until(l.expires) > l.ttl/3
}

// Release stops renewing and removes the lease if it is still ours.
func (l *Lease) Release(ctx context.Context) error {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	v := l.version
	l.mu.Unlock()
	_, cur, err := l.r.d.GetVersioned(ctx, leasePath)
	if isNotFound(err) || err == nil && cur != v {
		return nil // taken over after it expired
	}
	if err != nil {
		return fmt.Errorf("reading the lease: %w", err)
	}
	if err := l.r.d.Delete(storage.NoSync(ctx), leasePath); err != nil {
		return fmt.Errorf("releasing the lease: %w", err)
	}
	return nil
}

// activeLease returns the lease record when one is held and not expired
// beyond leaseGrace.
func (r *Registry) activeLease(ctx context.Context) (*leaseRecord, error) {
	b, err := r.d.GetContent(ctx, leasePath)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the housekeeping lease: %w", err)
	}
	var rec leaseRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("housekeeping lease is not a lease record: %w", err)
	}
	if time.Now().After(rec.Expires.Add(leaseGrace)) {
		return nil, nil
	}
	return &rec, nil
}

// settleWait bounds how long a writer waits for a collector to finish
// judging what it relies on; a judgement takes a few storage calls.
const settleWait = time.Minute

// settle is the writer's half of the protocol: call it after writing or
// refreshing every path given, then check they are all there. It returns
// once no collector is judging any of them.
func (r *Registry) settle(ctx context.Context, paths ...string) error {
	rec, err := r.activeLease(ctx)
	if err != nil || rec == nil {
		return err
	}
	deadline := time.Now().Add(settleWait)
	for _, p := range paths {
		for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
			marked, err := r.exists(ctx, judgingMark(p))
			if err != nil {
				return err
			}
			if !marked {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("garbage collection (%s) has judged %s for over %s", rec.Owner, p, settleWait)
			}
			if rec, err = r.activeLease(ctx); err != nil || rec == nil {
				return err // the lease expired: its marks are stale
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(delay):
			}
		}
	}
	return nil
}

// storeNow is the store's current time: the ModTime of an object written
// now.
func (r *Registry) storeNow(ctx context.Context) (time.Time, error) {
	if err := r.d.PutContent(storage.NoSync(ctx), clockPath, nil); err != nil {
		return time.Time{}, fmt.Errorf("reading the store's clock: %w", err)
	}
	info, err := r.d.Stat(ctx, clockPath)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the store's clock: %w", err)
	}
	return info.ModTime, nil
}

// judge is the collector's half: it removes the object at path unless,
// once marked, it turns out young or stillUsed says it is used. It
// reports whether it removed the object.
func (r *Registry) judge(ctx context.Context, l *Lease, cutoff time.Time, path string, stillUsed func() (bool, error)) (removed bool, err error) {
	unmark, err := r.mark(ctx, path)
	if err != nil {
		return false, err
	}
	defer func() {
		if uerr := unmark(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	info, err := r.d.Stat(ctx, path)
	if isNotFound(err) {
		return false, nil // removed by someone else
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
	if !info.ModTime.Before(cutoff) {
		return false, nil
	}
	if stillUsed != nil {
		used, err := stillUsed()
		if err != nil || used {
			return false, err
		}
	}
	if !l.Valid() {
		return false, errLeaseLost
	}
	// Garbage need not stay removed: a crash that brings it back leaves
	// it to the next collection.
	if err := r.d.Delete(storage.NoSync(ctx), path); err != nil {
		return false, fmt.Errorf("removing %s: %w", path, err)
	}
	return true, nil
}

// mark tells writers that the collector is judging path; the returned
// function removes the mark.
func (r *Registry) mark(ctx context.Context, path string) (func() error, error) {
	mark := judgingMark(path)
	if err := r.d.PutContent(storage.NoSync(ctx), mark, []byte(path)); err != nil {
		return nil, fmt.Errorf("marking %s: %w", path, err)
	}
	return func() error {
		if err := r.d.Delete(storage.NoSync(context.WithoutCancel(ctx)), mark); err != nil {
			return fmt.Errorf("unmarking %s: %w", path, err)
		}
		return nil
	}, nil
}
