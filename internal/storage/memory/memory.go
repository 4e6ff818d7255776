// Package memory implements storage.Driver in process memory: the
// reference reading of the contract, run by the same suite as every other
// backend, and a fast store for the registry's own tests. Nothing survives
// the process, so "durable" means "visible to every later call".
package memory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/octoserve/octoserve/internal/storage"
)

// Driver is an in-memory store. The zero value is not usable; call New.
type Driver struct {
	mu      sync.Mutex
	objects map[string]object
	last    time.Time // latest ModTime handed out: times never go back
	version uint64
}

type object struct {
	data    []byte // never modified once stored
	modTime time.Time
	version uint64
}

// New returns an empty store.
func New() *Driver { return &Driver{objects: map[string]object{}} }

func notFound(p string) error { return fmt.Errorf("%w: %s", storage.ErrNotFound, p) }

// put stores data at p; the caller holds mu.
func (d *Driver) put(p string, data []byte) {
	now := time.Now()
	if now.Before(d.last) {
		now = d.last
	}
	d.last = now
	d.version++
	d.objects[p] = object{data: data, modTime: now, version: d.version}
}

func (d *Driver) get(p string) (object, error) {
	if err := storage.CheckPath(p); err != nil {
		return object{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.objects[p]
	if !ok {
		return object{}, notFound(p)
	}
	return o, nil
}

// GetContent implements storage.Driver.
func (d *Driver) GetContent(_ context.Context, p string) ([]byte, error) {
	o, err := d.get(p)
	return bytes.Clone(o.data), err
}

// PutContent implements storage.Driver.
func (d *Driver) PutContent(_ context.Context, p string, data []byte) error {
	if err := storage.CheckPath(p); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.put(p, bytes.Clone(data))
	return nil
}

// GetVersioned implements storage.Driver.
func (d *Driver) GetVersioned(_ context.Context, p string) ([]byte, storage.Version, error) {
	o, err := d.get(p)
	if err != nil {
		return nil, storage.Absent, err
	}
	return bytes.Clone(o.data), storage.Version(strconv.FormatUint(o.version, 10)), nil
}

// PutIf implements storage.Driver.
func (d *Driver) PutIf(_ context.Context, p string, data []byte, match storage.Version) error {
	if err := storage.CheckPath(p); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.objects[p]
	switch {
	case match == storage.Absent && ok:
		return fmt.Errorf("%w: %s", storage.ErrExists, p)
	case match != storage.Absent && (!ok || strconv.FormatUint(o.version, 10) != string(match)):
		return fmt.Errorf("%w: %s", storage.ErrChanged, p)
	}
	d.put(p, bytes.Clone(data))
	return nil
}

type reader struct {
	*bytes.Reader
}

func (reader) Close() error { return nil }

// Reader implements storage.Driver.
func (d *Driver) Reader(_ context.Context, p string) (io.ReadSeekCloser, storage.Info, error) {
	o, err := d.get(p)
	if err != nil {
		return nil, storage.Info{}, err
	}
	return reader{bytes.NewReader(o.data)}, o.info(), nil
}

func (o object) info() storage.Info {
	return storage.Info{Size: int64(len(o.data)), ModTime: o.modTime}
}

// Writer implements storage.Driver.
func (d *Driver) Writer(_ context.Context, p string, mode storage.WriteMode) (storage.Writer, error) {
	if err := storage.CheckPath(p); err != nil {
		return nil, err
	}
	return &writer{d: d, path: p, mode: mode}, nil
}

type writer struct {
	d    *Driver
	path string
	mode storage.WriteMode
	buf  bytes.Buffer
	done bool
}

func (w *writer) Write(b []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write to a finished writer for %s", w.path)
	}
	return w.buf.Write(b)
}

func (w *writer) Size() int64 { return int64(w.buf.Len()) }

func (w *writer) Commit(context.Context) error {
	if w.done {
		return fmt.Errorf("commit of a finished writer for %s", w.path)
	}
	w.done = true
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	if _, ok := w.d.objects[w.path]; ok && w.mode == storage.Create {
		return fmt.Errorf("%w: %s", storage.ErrExists, w.path)
	}
	w.d.put(w.path, w.buf.Bytes())
	return nil
}

func (w *writer) Cancel(context.Context) error {
	w.done = true
	w.buf = bytes.Buffer{}
	return nil
}

// Compose implements storage.Driver.
func (d *Driver) Compose(_ context.Context, dst string, srcs []string) error {
	if err := storage.CheckPath(dst); err != nil {
		return err
	}
	if len(srcs) == 0 {
		return fmt.Errorf("compose %s: no sources", dst)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var buf []byte
	for _, s := range srcs {
		o, ok := d.objects[s]
		if !ok {
			return notFound(s)
		}
		buf = append(buf, o.data...)
	}
	d.put(dst, buf)
	return nil
}

// Stat implements storage.Driver.
func (d *Driver) Stat(_ context.Context, p string) (storage.Info, error) {
	o, err := d.get(p)
	return o.info(), err
}

// Names implements storage.Driver.
func (d *Driver) Names(ctx context.Context, dir, after string, limit int) ([]storage.Entry, error) {
	entries, err := d.List(ctx, dir, after, limit)
	for i := range entries {
		entries[i].Info = storage.Info{}
	}
	return entries, err
}

// List implements storage.Driver.
func (d *Driver) List(_ context.Context, dir, after string, limit int) ([]storage.Entry, error) {
	if err := storage.CheckDir(dir); err != nil {
		return nil, err
	}
	prefix := storage.Join(dir, "")
	d.mu.Lock()
	children := map[string]storage.Entry{}
	for p, o := range d.objects {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok {
			continue
		}
		if name, _, isDir := strings.Cut(rest, "/"); isDir {
			children[name] = storage.Entry{Name: name, Dir: true}
		} else {
			children[name] = storage.Entry{Name: name, Info: o.info()}
		}
	}
	d.mu.Unlock()
	out := make([]storage.Entry, 0, len(children))
	for name, e := range children {
		if name > after {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Walk implements storage.Driver.
func (d *Driver) Walk(ctx context.Context, prefix string, fn func(storage.Entry) error) error {
	if err := storage.CheckDir(prefix); err != nil {
		return err
	}
	var entries []storage.Entry
	d.mu.Lock()
	for p, o := range d.objects {
		if rel, ok := strings.CutPrefix(p, storage.Join(prefix, "")); ok {
			entries = append(entries, storage.Entry{Name: rel, Info: o.info()})
		}
	}
	d.mu.Unlock()
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// Touch implements storage.Driver.
func (d *Driver) Touch(_ context.Context, p string) error {
	if err := storage.CheckPath(p); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.objects[p]
	if !ok {
		return notFound(p)
	}
	d.put(p, o.data)
	return nil
}

// Delete implements storage.Driver.
func (d *Driver) Delete(_ context.Context, p string) error {
	if err := storage.CheckPath(p); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.objects, p)
	return nil
}

// DeleteAll implements storage.Driver.
func (d *Driver) DeleteAll(_ context.Context, prefix string) error {
	if err := storage.CheckPath(prefix); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for p := range d.objects {
		if strings.HasPrefix(p, prefix+"/") {
			delete(d.objects, p)
		}
	}
	return nil
}
