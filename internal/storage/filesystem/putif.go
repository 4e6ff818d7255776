package filesystem

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/octoserve/octoserve/internal/storage"
)

// GetVersioned implements storage.Driver. A version names the file the
// object is (inode, change time, size) and its content, so a rewrite —
// which always makes a new file — changes it.
func (d *Driver) GetVersioned(_ context.Context, p string) ([]byte, storage.Version, error) {
	fp, err := d.file(p)
	if err != nil {
		return nil, storage.Absent, err
	}
	return readVersioned(fp)
}

func readVersioned(fp string) ([]byte, storage.Version, error) {
	f, err := os.Open(fp)
	if err != nil {
		return nil, storage.Absent, classify(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, storage.Absent, classify(err)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, storage.Absent, fmt.Errorf("reading %s: %w", fp, err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, storage.Absent, fmt.Errorf("no inode for %s", fp)
	}
	sum := sha256.Sum256(b)
	v := fmt.Sprintf("%d.%d.%d.%d.%s", sys.Ino, sys.Ctim.Sec, sys.Ctim.Nsec, st.Size(), hex.EncodeToString(sum[:8]))
	return b, storage.Version(v), nil
}

// PutIf implements storage.Driver. The compare and the write happen under
// an exclusive flock on a lock file of the path's own, which every PutIf
// of that path takes, in this process or another on the same host.
func (d *Driver) PutIf(ctx context.Context, p string, data []byte, match storage.Version) error {
	fp, err := d.file(p)
	if err != nil {
		return err
	}
	unlock, err := d.lock(p)
	if err != nil {
		return err
	}
	defer unlock()
	_, current, err := readVersioned(fp)
	switch {
	case err != nil && !isNotFound(err):
		return err
	case match == storage.Absent && err == nil:
		return fmt.Errorf("%w: %s", storage.ErrExists, p)
	case match != storage.Absent && current != match:
		return fmt.Errorf("%w: %s", storage.ErrChanged, p)
	}
	return d.PutContent(ctx, p, data)
}

// lock takes the flock of path p's lock file.
func (d *Driver) lock(p string) (func(), error) {
	sum := sha256.Sum256([]byte(p))
	lf := filepath.Join(d.root, internalDir, "locks", hex.EncodeToString(sum[:16]))
	f, err := os.OpenFile(lf, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock of %s: %w", p, classify(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}
