// Package filesystem implements storage.Driver on a local directory. Every
// write lands in a temporary file that is fsync'd and renamed into place,
// and the parent directory is fsync'd after the rename, so a crash at any
// instant leaves the old state or the new one.
package filesystem

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/octoserve/octoserve/internal/storage"
)

// tmpDir holds in-flight PutContent files and trees being deleted.
const tmpDir = "_tmp"

// staleTmpAge is the age after which New removes a temporary file: one a
// crash left behind. Younger ones may be another process's in-flight
// writes (`octoserve gc` beside a serving registry).
const staleTmpAge = 10 * time.Minute

// Driver stores objects as files under Root.
type Driver struct {
	root string
}

// New returns a driver rooted at dir, creating it if needed, and removes
// temporary files a crash left behind.
func New(dir string) (*Driver, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage root %q: %w", dir, err)
	}
	tmp := filepath.Join(abs, tmpDir)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("creating storage root: %w", err)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("reading temporary files: %w", err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTmpAge {
			if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil {
				return nil, fmt.Errorf("clearing temporary files: %w", err)
			}
		}
	}
	return &Driver{root: abs}, nil
}

// Root returns the absolute directory the driver stores under.
func (d *Driver) Root() string { return d.root }

// full maps a storage path to a file path, refusing anything that would
// leave the root even though the registry only builds validated paths.
func (d *Driver) full(p string) (string, error) {
	clean := path.Clean("/" + p)
	if clean != "/"+strings.TrimSuffix(p, "/") && p != "" {
		return "", fmt.Errorf("storage path %q is not canonical", p)
	}
	return filepath.Join(d.root, filepath.FromSlash(clean)), nil
}

// classify wraps the operating system's errors that callers act on in the
// storage package's sentinel errors.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %v", storage.ErrNotFound, err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %v", storage.ErrNoSpace, err)
	}
	return err
}

// GetContent implements storage.Driver.
func (d *Driver) GetContent(_ context.Context, p string) ([]byte, error) {
	fp, err := d.full(p)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(fp)
	return b, classify(err)
}

// PutContent implements storage.Driver.
func (d *Driver) PutContent(_ context.Context, p string, data []byte) error {
	fp, err := d.full(p)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Join(d.root, tmpDir), "put-")
	if err != nil {
		return fmt.Errorf("creating temporary file: %w", classify(err))
	}
	if err := writeSync(tmp, data); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := d.rename(tmp.Name(), fp); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func writeSync(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", f.Name(), classify(err))
	}
	return nil
}

// rename moves src over dst, creating dst's directory, and fsyncs the
// directory so the rename itself survives a crash.
func (d *Driver) rename(src, dst string) error {
	dir := filepath.Dir(dst)
	if err := d.mkdirAll(dir); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("renaming into place: %w", classify(err))
	}
	return syncDir(dir)
}

// mkdirAll creates dir and fsyncs each new directory's parent, so that a
// file renamed into a new directory is reachable after a crash.
func (d *Driver) mkdirAll(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir && len(parent) >= len(d.root) {
		if err := d.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating directory: %w", classify(err))
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory for sync: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, classify(err))
	}
	return nil
}

// Reader implements storage.Driver; the reader is an *os.File.
func (d *Driver) Reader(_ context.Context, p string) (io.ReadSeekCloser, storage.Info, error) {
	fp, err := d.full(p)
	if err != nil {
		return nil, storage.Info{}, err
	}
	f, err := os.Open(fp)
	if err != nil {
		return nil, storage.Info{}, classify(err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, storage.Info{}, fmt.Errorf("stat %s: %w", p, err)
	}
	return f, info(st), nil
}

func info(st fs.FileInfo) storage.Info {
	return storage.Info{Size: st.Size(), ModTime: st.ModTime(), IsDir: st.IsDir()}
}

// Stat implements storage.Driver.
func (d *Driver) Stat(_ context.Context, p string) (storage.Info, error) {
	fp, err := d.full(p)
	if err != nil {
		return storage.Info{}, err
	}
	st, err := os.Stat(fp)
	if err != nil {
		return storage.Info{}, classify(err)
	}
	return info(st), nil
}

// List implements storage.Driver.
func (d *Driver) List(_ context.Context, p string) ([]string, error) {
	fp, err := d.full(p)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(fp)
	if err != nil {
		return nil, classify(err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

// Move implements storage.Driver.
func (d *Driver) Move(_ context.Context, src, dst string) error {
	fs, err := d.full(src)
	if err != nil {
		return err
	}
	fd, err := d.full(dst)
	if err != nil {
		return err
	}
	return d.rename(fs, fd)
}

// Delete implements storage.Driver. The object is first renamed into the
// temporary directory so that a crash never leaves half a tree visible.
func (d *Driver) Delete(_ context.Context, p string) error {
	fp, err := d.full(p)
	if err != nil {
		return err
	}
	if fp == d.root {
		return fmt.Errorf("refusing to delete the storage root")
	}
	grave := filepath.Join(d.root, tmpDir, "del-"+randomHex())
	if err := os.Rename(fp, grave); err != nil {
		return classify(err)
	}
	if err := syncDir(filepath.Dir(fp)); err != nil {
		return err
	}
	return os.RemoveAll(grave)
}

// Touch implements storage.Driver.
func (d *Driver) Touch(_ context.Context, p string) error {
	fp, err := d.full(p)
	if err != nil {
		return err
	}
	now := time.Now()
	return classify(os.Chtimes(fp, now, now))
}

func randomHex() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Writer implements storage.Driver.
func (d *Driver) Writer(_ context.Context, p string) (storage.FileWriter, error) {
	fp, err := d.full(p)
	if err != nil {
		return nil, err
	}
	if err := d.mkdirAll(filepath.Dir(fp)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(fp, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s for append: %w", p, classify(err))
	}
	start, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("seeking %s: %w", p, err)
	}
	return &fileWriter{f: f, start: start, size: start}, nil
}

type fileWriter struct {
	f           *os.File
	start, size int64
}

func (w *fileWriter) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	w.size += int64(n)
	return n, classify(err)
}

func (w *fileWriter) Size() int64 { return w.size }

func (w *fileWriter) Commit() error {
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("committing %s: %w", w.f.Name(), classify(err))
	}
	return nil
}

func (w *fileWriter) Cancel() error {
	err := w.f.Truncate(w.start)
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("rolling back %s: %w", w.f.Name(), err)
	}
	return nil
}
