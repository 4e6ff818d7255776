package gc

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// The schedule inside serve collects an unreferenced blob and an idle
// upload session on its own.
func TestRunCollectsOnSchedule(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := filesystem.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(d, registry.Options{})
	b := []byte("blob no manifest references")
	dg := reference.FromBytes("sha256", b)
	if err := reg.PutBlob(ctx, "r", dg, registry.Chunk{Body: bytes.NewReader(b), Start: -1, Length: int64(len(b))}); err != nil {
		t.Fatal(err)
	}
	id, err := reg.StartUpload(ctx, "r", "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		Run(ctx, slog.New(slog.DiscardHandler), reg,
			config.GC{Interval: 10 * time.Millisecond},
			config.Uploads{MaxIdle: time.Nanosecond, PurgeInterval: 10 * time.Millisecond}, config.Proxy{}, nil)
		close(done)
	}()
	// Polled: the first runs keep the blob (it is younger than the store's
	// timestamp slack); a later one removes it. The deadline only stops a
	// schedule that never runs, with room for a loaded machine.
	deadline := time.Now().Add(time.Minute)
	for {
		_, blobErr := reg.StatBlob(ctx, "r", dg)
		_, uploadErr := reg.UploadSize(ctx, "r", id)
		if blobErr != nil && uploadErr != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: blob %v, upload %v; want both gone", blobErr, uploadErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}
