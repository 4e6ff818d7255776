package auth

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per client address for failed logins: each
// failure takes a token, tokens come back at a steady rate, and a client
// with no token left is refused before its password is even checked. The
// map is bounded: when full, buckets that have refilled are dropped, and
// if none has, the least recently used one is.
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
	seen   time.Time // last failure
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

// blocked reports whether client has no failure left, and how long until
// it has one.
func (l *limiter) blocked(client string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[client]
	if !ok {
		return false, 0
	}
	if t := l.refill(b, l.now()); t < 1 {
		return true, time.Duration((1 - t) / l.perSec * float64(time.Second))
	}
	return false, 0
}

// fail takes a token from client's bucket.
func (l *limiter) fail(client string) {
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
	l.refill(b, now)
	b.tokens = max(0, b.tokens-1)
	b.seen = now
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
