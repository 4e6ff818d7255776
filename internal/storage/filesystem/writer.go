package filesystem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/octoserve/octoserve/internal/storage"
)

// Writer implements storage.Driver: the object is written to a temporary
// file and placed at Commit.
func (d *Driver) Writer(ctx context.Context, p string, mode storage.WriteMode) (storage.Writer, error) {
	fp, err := d.file(p)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(d.tmp, "w-")
	if err != nil {
		return nil, fmt.Errorf("creating temporary file: %w", classify(err))
	}
	return &writer{d: d, f: f, dst: fp, mode: mode, synced: storage.Synced(ctx)}, nil
}

type writer struct {
	d       *Driver
	f       *os.File
	dst     string
	mode    storage.WriteMode
	synced  bool  // fsync at Commit (storage.NoSync turns it off)
	size    int64 // bytes written
	flushed int64 // bytes whose writeback was started
	done    bool
}

func (w *writer) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("writing %s: %w", w.dst, classify(err))
	}
	w.startWriteback()
	return n, nil
}

// ReadFrom lets io.Copy from a file or socket use the kernel's copy.
func (w *writer) ReadFrom(r io.Reader) (int64, error) {
	n, err := w.f.ReadFrom(r)
	w.size += n
	if err != nil {
		return n, fmt.Errorf("writing %s: %w", w.dst, classify(err))
	}
	w.startWriteback()
	return n, nil
}

// writebackEvery is how much a durable writer lets the page cache hold
// before it asks the kernel to start writing it out.
const writebackEvery = 8 << 20

// startWriteback starts the disk writing what was written so far, without
// waiting for it, every writebackEvery bytes: the disk then works while
// the rest of a big object arrives, and Commit's fsync waits only for the
// tail instead of the whole object.
func (w *writer) startWriteback() {
	if !w.synced || w.size-w.flushed < writebackEvery {
		return
	}
	// Only a hint: an error here is the fsync's to report.
	_ = unix.SyncFileRange(int(w.f.Fd()), w.flushed, w.size-w.flushed, unix.SYNC_FILE_RANGE_WRITE)
	w.flushed = w.size
}

func (w *writer) Size() int64 { return w.size }

func (w *writer) Commit(context.Context) error {
	if w.done {
		return errors.New("commit of a finished writer")
	}
	w.done = true
	tmp := w.f.Name()
	defer os.Remove(tmp) // after a link, or when placing failed
	var err error
	if w.synced {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("committing %s: %w", w.dst, classify(err))
	}
	return w.d.place(tmp, w.dst, w.mode == storage.Create, w.synced)
}

func (w *writer) Cancel(context.Context) error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.f.Name())
}
