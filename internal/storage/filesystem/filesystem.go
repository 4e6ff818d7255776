// Package filesystem implements storage.Driver on a local directory. Every
// write lands in a temporary file that is fsync'd and renamed (or, for a
// create-only write, hard-linked) into place, and the directory is
// fsync'd after, so a crash at any instant leaves the old state or the
// new one. No object's bytes are ever changed in place: a write makes a
// new file, so an object may share its file with another (Compose links
// instead of copying) and a reader keeps the bytes it opened.
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
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/octoserve/octoserve/internal/storage"
)

// internalDir holds the driver's own files (temporary files, locks) and
// is hidden from List and Walk.
const internalDir = "_fs"

// staleTmpAge is the age after which New removes a temporary file: one a
// crash left behind. Younger ones may be another process's in-flight
// writes (`octoserve gc` beside a serving registry).
const staleTmpAge = 10 * time.Minute

// Driver stores objects as files under a root directory.
type Driver struct {
	root string
	tmp  string
}

// New returns a driver rooted at dir, creating it if needed, and removes
// temporary files a crash left behind.
func New(dir string) (*Driver, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage root %q: %w", dir, err)
	}
	d := &Driver{root: abs, tmp: filepath.Join(abs, internalDir, "tmp")}
	for _, sub := range []string{d.tmp, filepath.Join(abs, internalDir, "locks")} {
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return nil, fmt.Errorf("creating storage root: %w", classify(err))
		}
	}
	entries, err := os.ReadDir(d.tmp)
	if err != nil {
		return nil, fmt.Errorf("reading temporary files: %w", err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTmpAge {
			if err := os.RemoveAll(filepath.Join(d.tmp, e.Name())); err != nil {
				return nil, fmt.Errorf("clearing temporary files: %w", err)
			}
		}
	}
	return d, nil
}

// Root returns the absolute directory the driver stores under.
func (d *Driver) Root() string { return d.root }

// file maps an object path to its file.
func (d *Driver) file(p string) (string, error) {
	if err := storage.CheckPath(p); err != nil {
		return "", err
	}
	if p == internalDir || strings.HasPrefix(p, internalDir+"/") {
		return "", fmt.Errorf("storage path %q is reserved", p)
	}
	return filepath.Join(d.root, filepath.FromSlash(p)), nil
}

// dir maps a directory argument ("" is the root) to its directory.
func (d *Driver) dir(p string) (string, error) {
	if p == "" {
		return d.root, nil
	}
	return d.file(p)
}

// classify wraps the operating system's errors that callers act on in the
// storage package's sentinel errors.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w: %v", storage.ErrNotFound, err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %v", storage.ErrNoSpace, err)
	}
	return err
}

func randomName(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// GetContent implements storage.Driver.
func (d *Driver) GetContent(_ context.Context, p string) ([]byte, error) {
	fp, err := d.file(p)
	if err != nil {
		return nil, err
	}
	b, err := readFile(fp)
	if err != nil {
		return nil, classify(err)
	}
	return b, nil
}

// smallRead is a size most objects read whole fit in: tags, links, media
// types, session records.
const smallRead = 512

// readFile reads a file with one read when it is small: open, read,
// close, where os.ReadFile adds a stat and a second read to find the end.
// A manifest GET reads two such files. No object is ever written in
// place, so a short read of one is its end.
func readFile(fp string) ([]byte, error) {
	f, err := os.Open(fp)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	buf := make([]byte, smallRead)
	n, err := f.Read(buf)
	switch {
	case err == io.EOF:
		return buf[:0], nil
	case err != nil:
		return nil, err
	case n < len(buf):
		return buf[:n:n], nil
	}
	// A bigger object (a manifest): one allocation of its size, as
	// os.ReadFile makes.
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	whole := make([]byte, n, max(info.Size(), int64(n))+1)
	copy(whole, buf[:n])
	for {
		m, err := f.Read(whole[len(whole):cap(whole)])
		whole = whole[:len(whole)+m]
		if err == io.EOF {
			return whole, nil
		}
		if err != nil {
			return nil, err
		}
		if len(whole) == cap(whole) {
			whole = append(whole, 0)[:len(whole)] // grew meanwhile
		}
	}
}

// PutContent implements storage.Driver.
func (d *Driver) PutContent(ctx context.Context, p string, data []byte) error {
	if len(data) == 0 {
		if done, err := d.createEmpty(p, storage.Synced(ctx)); done || err != nil {
			return err
		}
	}
	w, err := d.Writer(ctx, p, storage.Replace)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		_ = w.Cancel(ctx)
		return err
	}
	return w.Commit(ctx)
}

// Reader implements storage.Driver; the reader is an *os.File.
func (d *Driver) Reader(_ context.Context, p string) (io.ReadSeekCloser, storage.Info, error) {
	fp, err := d.file(p)
	if err != nil {
		return nil, storage.Info{}, err
	}
	f, err := os.Open(fp)
	if err != nil {
		return nil, storage.Info{}, classify(err)
	}
	st, err := f.Stat()
	if err == nil && st.IsDir() {
		err = fmt.Errorf("%w: %s is a directory", storage.ErrNotFound, p)
	}
	if err != nil {
		f.Close()
		return nil, storage.Info{}, fmt.Errorf("stat %s: %w", p, err)
	}
	return f, info(st), nil
}

func info(st fs.FileInfo) storage.Info {
	return storage.Info{Size: st.Size(), ModTime: st.ModTime()}
}

// Stat implements storage.Driver.
func (d *Driver) Stat(_ context.Context, p string) (storage.Info, error) {
	fp, err := d.file(p)
	if err != nil {
		return storage.Info{}, err
	}
	st, err := os.Stat(fp)
	if err != nil {
		return storage.Info{}, classify(err)
	}
	if st.IsDir() {
		return storage.Info{}, fmt.Errorf("%w: %s is a directory", storage.ErrNotFound, p)
	}
	return info(st), nil
}

// utimeNow asks utimensat for the kernel's current time, the clock that
// stamps every write, so a touched object never looks newer than one
// written after it.
const utimeNow = 1<<30 - 1

// Touch implements storage.Driver.
func (d *Driver) Touch(_ context.Context, p string) error {
	fp, err := d.file(p)
	if err != nil {
		return err
	}
	now := []syscall.Timespec{{Nsec: utimeNow}, {Nsec: utimeNow}}
	if err := syscall.UtimesNano(fp, now); err != nil {
		return fmt.Errorf("touching %s: %w", p, classify(err))
	}
	return nil
}

// Delete implements storage.Driver.
func (d *Driver) Delete(ctx context.Context, p string) error {
	fp, err := d.file(p)
	if err != nil {
		return err
	}
	st, err := os.Lstat(fp)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || err == nil && st.IsDir() {
		return nil
	}
	if err != nil {
		return classify(err)
	}
	if err := os.Remove(fp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", p, classify(err))
	}
	if err := d.syncNearest(ctx, filepath.Dir(fp)); err != nil {
		return err
	}
	d.prune(filepath.Dir(fp))
	return nil
}

// syncNearest fsyncs dir or, when another Delete pruned it meanwhile, the
// nearest ancestor left, whose entry for the pruned one is what changed;
// nothing when ctx asks for no durability.
func (d *Driver) syncNearest(ctx context.Context, dir string) error {
	if !storage.Synced(ctx) {
		return nil
	}
	for {
		err := syncDir(dir)
		if err == nil || !isNotFound(err) || dir == d.root {
			return err
		}
		dir = filepath.Dir(dir)
	}
}

// DeleteAll implements storage.Driver. The tree is first renamed into the
// temporary directory, so that it disappears at once.
func (d *Driver) DeleteAll(ctx context.Context, p string) error {
	fp, err := d.file(p)
	if err != nil {
		return err
	}
	st, err := os.Lstat(fp)
	if err != nil || !st.IsDir() {
		return nil // nothing below a missing path or an object
	}
	grave := filepath.Join(d.tmp, randomName("del-"))
	if err := os.Rename(fp, grave); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("removing %s: %w", p, classify(err))
	}
	if err := d.syncNearest(ctx, filepath.Dir(fp)); err != nil {
		return err
	}
	d.prune(filepath.Dir(fp))
	return os.RemoveAll(grave)
}

// prune removes dir and its parents while they are empty, as an object
// store forgets a prefix with nothing below it. A writer racing it retries
// (see place).
func (d *Driver) prune(dir string) {
	for dir != d.root && strings.HasPrefix(dir, d.root+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %s for sync: %w", dir, classify(err))
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, classify(err))
	}
	return nil
}

// mkdirAll creates dir and, with synced, fsyncs each new directory's
// parent, so that a file renamed into a new directory is reachable after
// a crash.
func (d *Driver) mkdirAll(dir string, synced bool) error {
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir && len(parent) > len(d.root) {
		if err := d.mkdirAll(parent, synced); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating directory: %w", classify(err))
	}
	if !synced {
		return nil
	}
	return syncDir(parent)
}

// place moves the temporary file tmp to dst — by rename, or with
// exclusive set by hard link, which fails if dst exists — and, with
// synced, fsyncs dst's directory. A directory pruned between creating it and placing
// the file is created again.
func (d *Driver) place(tmp, dst string, exclusive, synced bool) error {
	dir := filepath.Dir(dst)
	for try := 0; ; try++ {
		err := d.mkdirAll(dir, synced)
		if err == nil && exclusive {
			err = os.Link(tmp, dst)
		} else if err == nil {
			err = os.Rename(tmp, dst)
		}
		switch {
		case err == nil && !synced:
			return nil
		case err == nil:
			return syncDir(dir)
		case exclusive && errors.Is(err, fs.ErrExist):
			return fmt.Errorf("%w: %v", storage.ErrExists, err)
		case (errors.Is(err, fs.ErrNotExist) || isNotFound(err)) && try < 10:
			continue // a directory was pruned under us
		}
		return fmt.Errorf("placing %s: %w", dst, classify(err))
	}
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// createEmpty creates the empty object p where there is none: creating an
// empty file is atomic by itself, so it needs no temporary file, and a
// link — the registry's commonest object — costs one create and, with
// synced, one directory fsync. It reports false when p exists (the caller
// replaces it, which gives it a new time).
func (d *Driver) createEmpty(p string, synced bool) (bool, error) {
	fp, err := d.file(p)
	if err != nil {
		return false, err
	}
	dir := filepath.Dir(fp)
	for try := 0; ; try++ {
		err := d.mkdirAll(dir, synced)
		var f *os.File
		if err == nil {
			f, err = os.OpenFile(fp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		}
		switch {
		case err == nil:
			if err := f.Close(); err != nil {
				return false, fmt.Errorf("creating %s: %w", p, classify(err))
			}
			if !synced {
				return true, nil
			}
			return true, syncDir(dir)
		case errors.Is(err, fs.ErrExist):
			return false, nil
		case (errors.Is(err, fs.ErrNotExist) || isNotFound(err)) && try < 10:
			continue // a directory was pruned under us
		}
		return false, fmt.Errorf("creating %s: %w", p, classify(err))
	}
}
