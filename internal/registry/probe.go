package registry

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// probePath is the object ProbeStorage writes. _health/ is reserved for it:
// nothing else in the layout lives there, and gc and verify never look.
const probePath = "_health/probe"

// ProbeStorage proves the store reachable and writable: it replaces a tiny
// object under _health/ (durably, as every write) and reads it back. It
// fails while the disk is full (storage.ErrNoSpace) or the store cannot be
// reached. Replicas sharing a store all write the same object, so probes
// leave nothing behind.
func (r *Registry) ProbeStorage(ctx context.Context) error {
	stamp := []byte(strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := r.d.PutContent(ctx, probePath, stamp); err != nil {
		return fmt.Errorf("writing the storage probe: %w", err)
	}
	if _, err := r.d.Stat(ctx, probePath); err != nil {
		return fmt.Errorf("reading the storage probe back: %w", err)
	}
	return nil
}
