package filesystem

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/octoserve/octoserve/internal/storage"
)

// children reads directory fp in the byte order of the keys below it: a
// subdirectory sorts as its name plus "/", as its objects' paths do.
func (d *Driver) children(fp string) ([]fs.DirEntry, error) {
	entries, err := os.ReadDir(fp)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, classify(err)
	}
	if fp == d.root {
		entries = without(entries, internalDir)
	}
	key := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	return entries, nil
}

func without(entries []fs.DirEntry, name string) []fs.DirEntry {
	out := entries[:0]
	for _, e := range entries {
		if e.Name() != name {
			out = append(out, e)
		}
	}
	return out
}

// List implements storage.Driver.
func (d *Driver) List(_ context.Context, dir, after string, limit int) ([]storage.Entry, error) {
	return d.list(dir, after, limit, true)
}

// Names implements storage.Driver.
func (d *Driver) Names(_ context.Context, dir, after string, limit int) ([]storage.Entry, error) {
	return d.list(dir, after, limit, false)
}

func (d *Driver) list(dir, after string, limit int, withInfo bool) ([]storage.Entry, error) {
	fp, err := d.dir(dir)
	if err != nil {
		return nil, err
	}
	entries, err := d.children(fp)
	if err != nil {
		return nil, err
	}
	// Names, not keys, decide the order of a listing.
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var out []storage.Entry
	for _, e := range entries {
		if e.Name() <= after {
			continue
		}
		if limit > 0 && len(out) == limit {
			break
		}
		if e.IsDir() {
			out = append(out, storage.Entry{Name: e.Name(), Dir: true})
			continue
		}
		if !withInfo {
			out = append(out, storage.Entry{Name: e.Name()})
			continue
		}
		st, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while listing
		}
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, storage.Entry{Name: e.Name(), Info: info(st)})
	}
	return out, nil
}

// Walk implements storage.Driver.
func (d *Driver) Walk(ctx context.Context, prefix string, fn func(storage.Entry) error) error {
	fp, err := d.dir(prefix)
	if err != nil {
		return err
	}
	return d.walk(ctx, fp, "", fn)
}

func (d *Driver) walk(ctx context.Context, fp, rel string, fn func(storage.Entry) error) error {
	entries, err := d.children(fp)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := e.Name()
		if rel != "" {
			name = rel + "/" + name
		}
		if e.IsDir() {
			if err := d.walk(ctx, filepath.Join(fp, e.Name()), name, fn); err != nil {
				return err
			}
			continue
		}
		st, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return classify(err)
		}
		if err := fn(storage.Entry{Name: name, Info: info(st)}); err != nil {
			return err
		}
	}
	return nil
}
