package filesystem

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/octoserve/octoserve/internal/storage"
)

// Compose implements storage.Driver. One source is hard-linked, not
// copied: no object is changed in place, so sharing its file is safe.
// Several are copied into a new file (copy_file_range, inside the kernel).
func (d *Driver) Compose(ctx context.Context, dst string, srcs []string) error {
	fdst, err := d.file(dst)
	if err != nil {
		return err
	}
	if len(srcs) == 0 {
		return fmt.Errorf("compose %s: no sources", dst)
	}
	if len(srcs) == 1 {
		return d.link(srcs[0], fdst, storage.Synced(ctx))
	}
	w, err := d.Writer(ctx, dst, storage.Replace)
	if err != nil {
		return err
	}
	for _, src := range srcs {
		if err := d.appendFile(w.(*writer), src); err != nil {
			_ = w.Cancel(ctx)
			return err
		}
	}
	return w.Commit(ctx)
}

func (d *Driver) appendFile(w *writer, src string) error {
	fsrc, err := d.file(src)
	if err != nil {
		return err
	}
	f, err := os.Open(fsrc)
	if err != nil {
		return fmt.Errorf("compose: %w", classify(err))
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("compose: copying %s: %w", src, err)
	}
	return nil
}

// link places a second name for src's file at fdst, replacing fdst.
func (d *Driver) link(src, fdst string, synced bool) error {
	fsrc, err := d.file(src)
	if err != nil {
		return err
	}
	if st, err := os.Stat(fsrc); err != nil || st.IsDir() {
		if err == nil {
			err = os.ErrNotExist
		}
		return fmt.Errorf("compose: %s: %w", src, classify(err))
	}
	tmp := filepath.Join(d.tmp, randomName("l-"))
	if err := os.Link(fsrc, tmp); err != nil {
		return fmt.Errorf("compose: linking %s: %w", src, classify(err))
	}
	if err := d.place(tmp, fdst, false, synced); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
