package auth

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per client address for failed logins: each
// password check takes a token before it runs and a verified one gives it
// back, so each failure costs a token; tokens come back at a steady rate,
// and a client with no token left is refused before its password is even
// checked. The map is bounded: when full, buckets that have refilled are
// dropped, and if none has, the least recently used one is.
type limiter struct {
	mu      sync.Mutex
	burst   float64
	perSec  float64
	max     int
	buckets map[string]*bucket
	now     func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time // tokens is as of last
	seen   time.Time // last token taken
}

func newLimiter(burst int, perMinute float64, maxClients int) *limiter {
	if burst <= 0 {
		burst = 10
	}
	if perMinute <= 0 {
		perMinute = 10
	}
	if maxClients <= 0 {
		maxClients = 10000
	}
	return &limiter{burst: float64(burst), perSec: perMinute / 60, max: maxClients,
		buckets: map[string]*bucket{}, now: time.Now}
}

// refill brings b up to date and returns its tokens.
func (l *limiter) refill(b *bucket, now time.Time) float64 {
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.perSec)
	b.last = now
	return b.tokens
}

// take takes a token from client's bucket for a password check about to
// run, or reports that it has none and how long until it has one. The
// token is taken before the check, so that checks in progress count
// against the bucket: concurrent guesses cannot outrun it. A check that
// verifies gives its token back (refund); a failure keeps it.
func (l *limiter) take(client string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[client]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[client] = b
	}
	if t := l.refill(b, now); t < 1 {
		return false, time.Duration((1 - t) / l.perSec * float64(time.Second))
	}
	b.tokens--
	b.seen = now
	return true, 0
}

// refund gives back the token of a check that did not fail. A bucket full
// again is forgotten.
func (l *limiter) refund(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[client]
	if !ok {
		return // evicted meanwhile: full as far as anyone knows
	}
	if l.refill(b, l.now())+1 >= l.burst {
		delete(l.buckets, client)
		return
	}
	b.tokens++
}

func (l *limiter) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, b := range l.buckets {
		if l.refill(b, now) >= l.burst {
			delete(l.buckets, k)
			continue
		}
		if oldest == "" || b.seen.Before(oldestAt) {
			oldest, oldestAt = k, b.seen
		}
	}
	if len(l.buckets) >= l.max && oldest != "" {
		delete(l.buckets, oldest)
	}
}

// clientKey is the rate-limiting key of a remote address: the IP, with an
// IPv6 address reduced to its /64, which one client usually owns whole.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
