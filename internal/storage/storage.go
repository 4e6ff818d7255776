// Package storage is the small interface every storage backend implements,
// stated so that a local filesystem and an S3-compatible object store can
// both honour every sentence of it; storagetest turns each sentence into a
// test that every backend runs.
//
// Paths are slash-separated keys relative to the backend's root, never
// starting or ending with a slash; the registry package decides the
// layout. There are no directories: a "directory" is only the prefix its
// objects share, and it exists while an object exists below it. Backends
// never see HTTP, and the registry never sees files.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) when an object does not exist.
var ErrNotFound = errors.New("not found")

// ErrNoSpace is returned (wrapped) when the backend is out of space or
// quota; whatever the failed call was writing has been discarded.
var ErrNoSpace = errors.New("no space left in storage")

// ErrExists is returned (wrapped) by a create-only write that found the
// object already there; the object is unchanged.
var ErrExists = errors.New("already exists")

// ErrChanged is returned (wrapped) by PutIf when the object's version is no
// longer the one the caller read; the object is unchanged.
var ErrChanged = errors.New("changed since it was read")

// Info describes a stored object.
type Info struct {
	Size int64
	// ModTime is when the object was last written, by the store's clock
	// (an object store's, not this process's), at the store's resolution
	// (a filesystem's clock tick; one second on S3). Objects written
	// later never carry an earlier time than objects written before them
	// on the same store.
	ModTime time.Time
}

// Entry is one result of List or Walk.
type Entry struct {
	// Name is the entry's name relative to the listed directory (List:
	// one path element) or to the walked prefix (Walk: may hold slashes).
	Name string
	// Dir marks a List entry that is a prefix with objects below it,
	// not an object; its Info is zero.
	Dir bool
	Info
}

// Version identifies the content of a small object, for PutIf. It is
// opaque: compare it only with versions of the same path. A write of
// different bytes always makes a new version; a write of the same bytes
// may keep it (on S3 a version is the ETag, the MD5 of the content), so
// a caller that needs every write to change the version — a lease
// renewal — writes bytes that differ each time (an expiry, a counter).
type Version string

// Absent is the version of a missing object: PutIf with Absent creates.
const Absent Version = ""

// WriteMode says what a Writer's Commit does to an existing object.
type WriteMode int

const (
	// Replace publishes over whatever is at the path.
	Replace WriteMode = iota
	// Create publishes only if nothing is at the path, else Commit
	// returns ErrExists and discards what was written.
	Create
)

// Driver stores objects by path. Every method is safe for concurrent use,
// from any number of processes sharing the backend, and every completed
// write is durable and visible to every later call from any process
// (read-after-write and list-after-write consistency).
type Driver interface {
	// GetContent returns the whole (small) object at path.
	GetContent(ctx context.Context, path string) ([]byte, error)
	// PutContent atomically replaces the object at path: a reader sees the
	// old content or the new, never a mix, and once PutContent returns the
	// new content survives a crash.
	PutContent(ctx context.Context, path string, data []byte) error
	// GetVersioned is GetContent with the version PutIf compares against.
	GetVersioned(ctx context.Context, path string) ([]byte, Version, error)
	// PutIf is PutContent that happens only if the object is still at
	// version match: with Absent, only if there is no object (else
	// ErrExists); otherwise only if its version is match (else
	// ErrChanged, also when it is missing). Concurrent PutIfs of one
	// version: exactly one succeeds.
	PutIf(ctx context.Context, path string, data []byte, match Version) error

	// Reader opens path for reading. Backends on local disks return an
	// *os.File so the HTTP layer can let the kernel copy it; others read
	// lazily from where the last Seek put them.
	Reader(ctx context.Context, path string) (io.ReadSeekCloser, Info, error)
	// Writer starts a new object at path. Nothing written is visible at
	// path before Commit, which publishes all of it at once, durably, as
	// mode says; Cancel discards it. A writer is used by one goroutine.
	Writer(ctx context.Context, path string, mode WriteMode) (Writer, error)
	// Compose publishes at dst, as Replace does, the concatenation of the
	// objects srcs (at least one), which stay as they are. Backends copy
	// inside the store where they can (a hard link, a server-side copy).
	Compose(ctx context.Context, dst string, srcs []string) error

	// Stat describes the object at path; a prefix is not an object.
	Stat(ctx context.Context, path string) (Info, error)
	// List returns the direct children of directory dir in byte order of
	// their names: objects with their Info, and prefixes (Dir) with
	// objects below them. It starts after the name after ("" = from the
	// start) and returns at most limit entries (0 = all). A directory
	// with nothing below it lists as empty, without error.
	List(ctx context.Context, dir, after string, limit int) ([]Entry, error)
	// Names is List without the objects' Info (left zero): on a
	// filesystem it reads the directory alone, not each entry's inode.
	Names(ctx context.Context, dir, after string, limit int) ([]Entry, error)
	// Walk calls fn for every object below prefix (a directory; "" is
	// the whole store), in byte order of their paths, with Name relative
	// to prefix. Objects created or removed during the walk may or may
	// not be seen. An error from fn stops the walk and is returned.
	Walk(ctx context.Context, prefix string, fn func(Entry) error) error

	// Touch sets the object's ModTime to the store's now without changing
	// its content, or returns ErrNotFound. It is for garbage collection's
	// benefit only (a writer refreshing what it relies on, see the
	// registry's protocol.go) and need not survive a crash. On an object
	// store it writes the object's bytes again: keep touched objects
	// small.
	Touch(ctx context.Context, path string) error

	// Delete removes the object at path; a missing object is not an
	// error. Once it returns, the removal survives a crash.
	Delete(ctx context.Context, path string) error
	// DeleteAll removes every object below directory prefix. It is not
	// atomic: a crash may leave some of them.
	DeleteAll(ctx context.Context, prefix string) error
}

// Writer writes one new object; see Driver.Writer.
type Writer interface {
	io.Writer
	// Size is the number of bytes written so far.
	Size() int64
	// Commit publishes the object (see Driver.Writer) and releases the
	// writer; on error nothing was published.
	Commit(ctx context.Context) error
	// Cancel discards the object and releases the writer.
	Cancel(ctx context.Context) error
}

// Redirector is implemented by backends that can hand a client a URL to
// fetch an object from directly (a presigned URL), so that its bytes do
// not pass through the registry.
type Redirector interface {
	// RedirectURL returns a URL serving the object at path for a while,
	// or "" when this object should be served directly.
	RedirectURL(ctx context.Context, path string) (string, error)
}

// syncKey marks a context whose writes and deletes need not be durable.
type syncKey struct{}

// NoSync returns ctx for writes and deletes whose effect may be lost in a
// crash: they are atomic and visible to every later call like any other,
// but a backend may skip what makes them durable (a filesystem skips its
// fsyncs). The registry uses it for what a crash may lose without losing
// anything acknowledged: garbage collection's marks and removals, upload
// sessions' bookkeeping, cached hash states. A directory such a write
// creates is not durable either, so durable writes must not be placed
// below directories only NoSync writes create.
func NoSync(ctx context.Context) context.Context { return context.WithValue(ctx, syncKey{}, true) }

// Synced reports whether writes and deletes made with ctx must be durable
// (the default).
func Synced(ctx context.Context) bool {
	noSync, _ := ctx.Value(syncKey{}).(bool)
	return !noSync
}
