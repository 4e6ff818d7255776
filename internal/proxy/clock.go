package proxy

import (
	"sync"
	"time"
)

// clockLimit bounds the keys a clock remembers; forgetting them all only
// makes the next event for each happen sooner.
const clockLimit = 100_000

// clock remembers, per key, when something last happened.
type clock struct {
	now func() time.Time
	mu  sync.Mutex
	at  map[string]time.Time
}

func newClock(now func() time.Time) *clock { return &clock{now: now, at: map[string]time.Time{}} }

// within reports whether key happened less than every ago.
func (c *clock) within(key string, every time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.at[key]
	return ok && c.now().Sub(t) < every
}

// mark records that key happened now.
func (c *clock) mark(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.at) >= clockLimit {
		c.at = map[string]time.Time{}
	}
	c.at[key] = c.now()
}

// due reports whether key last happened every or more ago (or never), and
// if so records that it happens now: one caller in an interval gets true.
func (c *clock) due(key string, every time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.at[key]; ok && c.now().Sub(t) < every {
		return false
	}
	if len(c.at) >= clockLimit {
		c.at = map[string]time.Time{}
	}
	c.at[key] = c.now()
	return true
}
