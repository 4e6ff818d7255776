package server

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// perClientListener bounds the connections one client address holds at
// once. A connection past the bound is closed as soon as it is accepted,
// before a byte is read, so one client cannot take every file descriptor
// (slow bodies, idle keep-alives) and lock everyone else out.
// IPv6 clients are counted per /64, the block one host usually holds.
type perClientListener struct {
	net.Listener
	max int
	log *slog.Logger

	mu      sync.Mutex
	open    map[string]int // connections held per client
	refused int            // connections refused since the last log line
	logged  time.Time      // when that line was written
}

// refusalLogInterval spaces the log lines about refused connections: a
// flood must not flood the log.
const refusalLogInterval = 10 * time.Second

func limitPerClient(ln net.Listener, max int, log *slog.Logger) net.Listener {
	if max <= 0 {
		return ln
	}
	return &perClientListener{Listener: ln, max: max, log: log, open: map[string]int{}}
}

func (l *perClientListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := clientKey(c.RemoteAddr())
		if l.admit(client) {
			return &countedConn{Conn: c, release: func() { l.release(client) }}, nil
		}
		_ = c.Close()
	}
}

func (l *perClientListener) admit(client string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.open[client]; n < l.max {
		l.open[client] = n + 1
		return true
	}
	l.refused++
	if now := time.Now(); now.Sub(l.logged) >= refusalLogInterval {
		// refused counts every client's refusals since the previous line.
		l.log.Warn("too many connections from one client: connections past the limit closed",
			"client", client, "limit", l.max, "refused", l.refused)
		l.refused, l.logged = 0, now
	}
	return false
}

func (l *perClientListener) release(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.open[client]; n > 1 {
		l.open[client] = n - 1
	} else {
		delete(l.open, client)
	}
}

// clientKey is the address connections are counted under: the IPv4
// address, or the /64 of an IPv6 one.
func clientKey(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ip4 := tcp.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return tcp.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// countedConn gives its slot back when closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// ReadFrom keeps the kernel's sendfile path: net/http uses it when the
// connection has it, which a wrapper would otherwise hide.
func (c *countedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

// CloseWrite lets net/http half-close the connection after an error
// answer, so the client reads the answer before the close.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type writerOnly struct{ io.Writer }
