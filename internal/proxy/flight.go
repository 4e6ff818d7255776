package proxy

import (
	"context"
	"sync"
)

// flight runs one call per key at a time: callers with a key whose call
// is running wait for it and share its result instead of calling again.
type flight[T any] struct {
	mu    sync.Mutex
	calls map[string]*flightCall[T]
}

type flightCall[T any] struct {
	done chan struct{}
	v    T
	err  error
}

// do runs fn for key unless a call for key is running, in which case it
// waits for that call's result (or for ctx to end). fn runs on the first
// caller's goroutine and must not depend on that caller's context: the
// others rely on it finishing.
func (f *flight[T]) do(ctx context.Context, key string, fn func() (T, error)) (T, error) {
	v, _, err := f.doShared(ctx, key, fn)
	return v, err
}

// doShared is do, also reporting whether the result came from another
// caller's call.
func (f *flight[T]) doShared(ctx context.Context, key string, fn func() (T, error)) (T, bool, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]*flightCall[T]{}
	}
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.v, true, c.err
		case <-ctx.Done():
			var zero T
			return zero, true, ctx.Err()
		}
	}
	c := &flightCall[T]{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
	}()
	c.v, c.err = fn()
	return c.v, false, c.err
}
