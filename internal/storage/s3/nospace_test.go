package s3

import (
	"testing"

	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/s3/s3test"
)

// On a server whose disk fills, every kind of write fails with
// ErrNoSpace, leaves nothing behind, and the space comes back.
func TestNoSpace(t *testing.T) {
	capacity := int(s3test.RequireSmall(t))
	cfg := testConfig(t)
	cfg.PartSize = minPartSize
	d := newTestDriver(t, cfg)

	t.Run("writer", func(t *testing.T) {
		w, err := d.Writer(ctx, "big", storage.Replace)
		if err != nil {
			t.Fatal(err)
		}
		data := pattern(1, 2*capacity)
		_, err = w.Write(data)
		if err == nil {
			err = w.Commit(ctx)
		} else {
			_ = w.Cancel(ctx)
		}
		wantErr(t, "writing twice the disk", err, storage.ErrNoSpace)
		_, err = d.Stat(ctx, "big")
		wantErr(t, "Stat after the failed write", err, storage.ErrNotFound)
		if left := uploadsLeft(t, d); len(left) > 0 {
			t.Fatalf("uploads left in progress: %v", left)
		}
	})
	t.Run("put", func(t *testing.T) {
		err := d.PutContent(ctx, "big", pattern(2, capacity+1<<20))
		wantErr(t, "PutContent of more than the disk", err, storage.ErrNoSpace)
		_, err = d.Stat(ctx, "big")
		wantErr(t, "Stat after the failed put", err, storage.ErrNotFound)
	})
	t.Run("compose", func(t *testing.T) {
		srcs, _ := putObjects(t, d, capacity/4, capacity/4) // each over 5 MiB: copied as parts
		err := d.Compose(ctx, "dst", srcs)
		wantErr(t, "Compose past the disk", err, storage.ErrNoSpace)
		_, err = d.Stat(ctx, "dst")
		wantErr(t, "Stat after the failed compose", err, storage.ErrNotFound)
		if left := uploadsLeft(t, d); len(left) > 0 {
			t.Fatalf("uploads left in progress: %v", left)
		}
		for _, p := range srcs {
			if err := d.Delete(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
	})
	// What the failures took is free again.
	if err := d.PutContent(ctx, "after", pattern(3, capacity/2)); err != nil {
		t.Fatalf("writing half the disk after the failures: %v", err)
	}
}
