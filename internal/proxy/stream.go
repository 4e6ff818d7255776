package proxy

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// A fetch's bytes reach the client whose request started it through a
// stream, as they arrive from upstream, while the fetch writes them to
// the store; the client's first byte does not wait for the last. The
// stream holds at most streamWindow bytes the client has not taken: a
// client that falls behind slows the fetch down (the upstream's TCP
// window does the rest) for up to streamStall, after which the fetch
// leaves it behind and the client reads the rest from the stored copy,
// once stored. The last byte goes out only once the whole blob has been
// hashed and matches its digest (release): a blob that does not verify
// is cut short, so the client sees a failed transfer, never a complete
// one with wrong bytes.

const (
	streamWindow = 8 << 20
	streamStall  = 5 * time.Second
	// chunkSize is the size of the buffers a fetch reads into.
	chunkSize = 256 << 10
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// buffer is a pooled buffer shared by the stream and the store's writer:
// it goes back to the pool when both are done with it.
type buffer struct {
	b    *[]byte
	refs atomic.Int32
}

func newBuffer(owners int32) *buffer {
	buf := &buffer{b: chunkPool.Get().(*[]byte)}
	buf.refs.Store(owners)
	return buf
}

// release gives up one owner's hold.
func (b *buffer) release() {
	if b.refs.Add(-1) == 0 {
		chunkPool.Put(b.b)
	}
}

// errDetached tells the stream's reader to read on from the stored copy.
var errDetached = errors.New("the stream was left behind; read from the stored copy")

// chunk is bytes of a fetch: b lies in buf.
type chunk struct {
	buf *buffer
	b   []byte
}

// stream carries a fetch's bytes to one reader, from byte 0.
type stream struct {
	size int64 // the blob's size

	mu       sync.Mutex
	changed  chan struct{} // closed (and replaced) at every change
	queue    []chunk
	queued   int64 // bytes in queue
	taken    int64 // bytes the reader has taken: the offset of queue[0]
	released bool  // the blob verified: its last byte may go
	err      error // the fetch failed
	detached bool  // no more bytes come: read from the stored copy
}

func newStream(size int64) *stream { return &stream{size: size, changed: make(chan struct{})} }

// signal wakes everyone waiting; the caller holds mu.
func (s *stream) signal() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// push hands c to the reader, waiting while the window is full. It
// reports false, keeping c, once the stream is detached: the reader left,
// or took nothing for streamStall.
func (s *stream) push(c chunk) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.detached && s.queued >= streamWindow {
		ch := s.changed
		s.mu.Unlock()
		timer := time.NewTimer(streamStall)
		select {
		case <-ch:
			timer.Stop()
			s.mu.Lock()
		case <-timer.C:
			s.mu.Lock()
			s.detachLocked()
		}
	}
	if s.detached {
		return false
	}
	s.queue = append(s.queue, c)
	s.queued += int64(len(c.b))
	s.signal()
	return true
}

// release lets the last byte go: the blob verified.
func (s *stream) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released = true
	s.signal()
}

// fail ends the stream with err: the reader's transfer is aborted.
func (s *stream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	s.signal()
}

// detach stops the stream: the reader is gone, or reads elsewhere.
func (s *stream) detach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.detachLocked()
}

func (s *stream) detachLocked() {
	if s.detached {
		return
	}
	s.detached = true
	for _, c := range s.queue {
		c.buf.release()
	}
	s.queue, s.queued = nil, 0
	s.signal()
}

// read copies the next bytes into p, waiting for them. It returns
// errDetached once the stream is left behind, and the fetch's error if it
// failed.
func (s *stream) read(ctx context.Context, p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.err != nil {
			return 0, s.err
		}
		limit := s.size - 1
		if s.released {
			limit = s.size
		}
		if avail := min(s.queued, limit-s.taken); avail > 0 {
			return s.take(p[:min(int64(len(p)), avail)]), nil
		}
		if s.detached {
			return 0, errDetached
		}
		if s.taken >= s.size {
			return 0, io.EOF
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
			s.mu.Lock()
		case <-ctx.Done():
			s.mu.Lock()
			return 0, ctx.Err()
		}
	}
}

// take moves len(p) queued bytes into p; the caller holds mu.
func (s *stream) take(p []byte) int {
	n := 0
	for n < len(p) {
		c := &s.queue[0]
		k := copy(p[n:], c.b)
		c.b = c.b[k:]
		n += k
		if len(c.b) == 0 {
			c.buf.release()
			s.queue[0] = chunk{}
			s.queue = s.queue[1:]
		}
	}
	s.queued -= int64(n)
	s.taken += int64(n)
	s.signal()
	return n
}
