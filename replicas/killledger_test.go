//go:build replicas

package replicas

import (
	"fmt"
	"sync"
	"time"
)

// pushedImage is an image acknowledged (201 for its manifest) as repo:tag.
type pushedImage struct {
	repo, tag string
	img       image
	afterDown bool // started once the victim was marked down
}

// killLedger records what was acknowledged and which requests failed.
type killLedger struct {
	mu      sync.Mutex
	acked   []pushedImage
	downAt  time.Time     // zero until HAProxy marked the victim down
	before  []string      // failed requests sent before that
	late    []string      // failed requests sent after it: none may be
	changed chan struct{} // closed and replaced at each acknowledgement
	nAfter  int
}

func (l *killLedger) markDown(at time.Time) {
	l.mu.Lock()
	l.downAt = at
	l.mu.Unlock()
}

// down reports whether the victim was marked down before t.
func (l *killLedger) down(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.downAt.IsZero() && t.After(l.downAt)
}

func (l *killLedger) ack(p pushedImage) {
	l.mu.Lock()
	l.acked = append(l.acked, p)
	if p.afterDown {
		l.nAfter++
	}
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *killLedger) fail(sent time.Time, what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.downAt.IsZero() && sent.After(l.downAt) {
		l.late = append(l.late, what)
	} else {
		l.before = append(l.before, what)
	}
}

func (l *killLedger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *killLedger) all() []pushedImage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]pushedImage(nil), l.acked...)
}

func (l *killLedger) failures() (before, late []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.before...), append([]string(nil), l.late...)
}

// waitAcked returns once ok(acknowledged, acknowledged after down) holds.
func (l *killLedger) waitAcked(ok func(n, after int) bool, within time.Duration) error {
	deadline := time.After(within)
	for {
		l.mu.Lock()
		n, after, ch := len(l.acked), l.nAfter, l.changed
		l.mu.Unlock()
		if ok(n, after) {
			return nil
		}
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("%d images acknowledged (%d after the replica was marked down) in %v: not enough", n, after, within)
		}
	}
}
