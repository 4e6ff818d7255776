// Package storage is the small interface every storage backend implements.
// Paths are slash-separated keys relative to the backend's root; the
// registry package decides the layout. Backends never see HTTP, and the
// registry never sees files: a filesystem and an object store both fit.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) when a path does not exist.
var ErrNotFound = errors.New("not found")

// ErrNoSpace is returned (wrapped) when the backend is out of space or
// quota; whatever the failed call was writing has been discarded.
var ErrNoSpace = errors.New("no space left in storage")

// Info describes a stored object.
type Info struct {
	Size    int64
	ModTime time.Time
	IsDir   bool
}

// Driver stores objects by path. Every method is safe for concurrent use.
type Driver interface {
	// GetContent returns the whole (small) object at path.
	GetContent(ctx context.Context, path string) ([]byte, error)
	// PutContent durably and atomically replaces the object at path: a
	// reader sees the old content or the new, never a mix, and a crash
	// after PutContent returns keeps the new content.
	PutContent(ctx context.Context, path string, data []byte) error
	// Reader opens path for reading. Backends on local disks return an
	// *os.File so the HTTP layer can let the kernel copy it.
	Reader(ctx context.Context, path string) (io.ReadSeekCloser, Info, error)
	// Writer opens path for appending, creating it if needed. Nothing
	// written is guaranteed durable until Commit; Cancel drops everything
	// written through this writer.
	Writer(ctx context.Context, path string) (FileWriter, error)
	// Stat describes path, which may be an object or a directory prefix.
	Stat(ctx context.Context, path string) (Info, error)
	// List returns the names (not paths) of the direct children of the
	// directory path, in no particular order.
	List(ctx context.Context, path string) ([]string, error)
	// Move durably and atomically moves the object src to dst, replacing
	// dst if it exists.
	Move(ctx context.Context, src, dst string) error
	// Delete removes path and everything under it. Deleting a missing
	// path returns ErrNotFound.
	Delete(ctx context.Context, path string) error
	// Touch sets the modification time of the object at path to now, or
	// returns ErrNotFound. Garbage collection reads these times to see
	// what was used while it ran; see registry's gc.go.
	Touch(ctx context.Context, path string) error
}

// FileWriter appends to one object.
type FileWriter interface {
	io.Writer
	// Size is the object's size including what this writer appended.
	Size() int64
	// Commit makes the appended data durable and releases the writer.
	Commit() error
	// Cancel discards what this writer appended and releases the writer.
	Cancel() error
}
