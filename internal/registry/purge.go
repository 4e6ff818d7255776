package registry

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/octoserve/octoserve/internal/storage"
)

// PurgeUploads removes upload sessions with no activity (no chunk
// received) for longer than maxIdle, with their data, and returns how many
// it removed (or, in a dry run, would remove). It takes the housekeeping
// lease and returns ErrBusy (wrapped) while a collection holds it.
func (r *Registry) PurgeUploads(ctx context.Context, maxIdle time.Duration, dryRun bool) (int, error) {
	owner, ttl := GCOptions{}.lease()
	l, err := r.AcquireLease(ctx, owner, ttl)
	if err != nil {
		return 0, err
	}
	defer l.Release(context.WithoutCancel(ctx))
	now, err := r.storeNow(ctx)
	if err != nil {
		return 0, err
	}
	return r.purgeUploads(ctx, l, now.Add(-maxIdle), dryRun)
}

// purgeUploads removes the sessions whose newest object is older than
// cutoff. A session is judged by its "started" object's mark, which a
// request that wrote a chunk settles on (uploadstate.go's checkAlive).
func (r *Registry) purgeUploads(ctx context.Context, l *Lease, cutoff time.Time, dryRun bool) (int, error) {
	idle, err := r.idleSessions(ctx, cutoff)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, s := range idle {
		if !dryRun {
			ok, err := r.expireSession(ctx, l, s.name, s.id, cutoff)
			if err != nil {
				return removed, err
			}
			if !ok {
				continue
			}
		}
		removed++
	}
	return removed, nil
}

// idleSessions lists every session, started or not (a crash can leave
// chunks of a monolithic upload), whose objects are all older than cutoff.
func (r *Registry) idleSessions(ctx context.Context, cutoff time.Time) ([]*session, error) {
	var out []*session
	var cur *session
	done := func() {
		if cur != nil && cur.newest.Before(cutoff) {
			out = append(out, cur)
		}
	}
	err := r.d.Walk(ctx, "uploads", func(e storage.Entry) error {
		parts := strings.SplitN(e.Name, "/", 3)
		if len(parts) < 3 {
			return nil
		}
		name, id := repoName(parts[0]), parts[1]
		if cur == nil || cur.name != name || cur.id != id {
			done()
			cur = &session{name: name, id: id}
		}
		if e.ModTime.After(cur.newest) {
			cur.newest = e.ModTime
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing uploads: %w", err)
	}
	done()
	return out, nil
}

// expireSession removes session id of name if, once marked, it is still
// idle: the collector's half of the protocol (protocol.go) for a session.
func (r *Registry) expireSession(ctx context.Context, l *Lease, name, id string, cutoff time.Time) (removed bool, err error) {
	unmark, err := r.mark(ctx, sessionStarted(name, id))
	if err != nil {
		return false, err
	}
	defer func() {
		if uerr := unmark(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	s, err := r.readSession(ctx, name, id)
	if err != nil || !s.newest.Before(cutoff) {
		return false, err
	}
	if !l.Valid() {
		return false, errLeaseLost
	}
	if err := r.dropSession(ctx, s); err != nil {
		return false, err
	}
	return true, nil
}
