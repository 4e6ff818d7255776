// Package storagetest is the contract of storage.Driver as tests: every
// backend runs Run from a short test of its own, so that a sentence of
// storage.go that one backend does not honour fails there.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/storage"
)

// Run runs the contract against drivers made by newDriver, which returns
// an empty store (a fresh directory, bucket prefix, ...) for each test.
func Run(t *testing.T, newDriver func(t *testing.T) storage.Driver) {
	tests := []struct {
		name string
		fn   func(t *testing.T, d storage.Driver)
	}{
		{"PutGetContent", testPutGetContent},
		{"MissingObjects", testMissing},
		{"StatIsForObjectsOnly", testStatObjectsOnly},
		{"ModTimeNeverGoesBack", testModTimeOrder},
		{"TouchRefreshesTime", testTouch},
		{"PutIfCreatesOnce", testPutIfCreate},
		{"PutIfComparesVersions", testPutIfVersions},
		{"PutIfConcurrentExactlyOneWins", testPutIfConcurrent},
		{"ReaderSeeksAndReads", testReader},
		{"WriterInvisibleUntilCommit", testWriterInvisible},
		{"WriterCancelDiscards", testWriterCancel},
		{"WriterLargeObject", testWriterLarge},
		{"WriterCreateRefusesExisting", testWriterCreate},
		{"WriterCreateConcurrentExactlyOneWins", testWriterCreateConcurrent},
		{"ComposeConcatenates", testCompose},
		{"ComposeLargeParts", testComposeLarge},
		{"ComposeMissingSource", testComposeMissing},
		{"ListChildren", testList},
		{"ListAfterAndLimit", testListPage},
		{"ListEmptyAndRemovedDirectories", testListEmpty},
		{"WalkByteOrder", testWalk},
		{"WalkStopsOnError", testWalkStop},
		{"DeleteObject", testDelete},
		{"DeleteAllStaysInsidePrefix", testDeleteAll},
		{"RejectsNonCanonicalPaths", testBadPaths},
		{"ReplaceIsAtomicForReaders", testAtomicReplace},
		{"NoSyncWritesAreVisible", testNoSync},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newDriver(t)) })
	}
}

var ctx = context.Background()

func put(t *testing.T, d storage.Driver, p, content string) {
	t.Helper()
	if err := d.PutContent(ctx, p, []byte(content)); err != nil {
		t.Fatalf("PutContent(%s): %v", p, err)
	}
}

func get(t *testing.T, d storage.Driver, p string) string {
	t.Helper()
	b, err := d.GetContent(ctx, p)
	if err != nil {
		t.Fatalf("GetContent(%s): %v", p, err)
	}
	return string(b)
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func testPutGetContent(t *testing.T, d storage.Driver) {
	put(t, d, "a/b/c", "one")
	put(t, d, "a/b/c", "two")
	put(t, d, "a/b/empty", "")
	if got := get(t, d, "a/b/c"); got != "two" {
		t.Fatalf("content %q, want the replacement", got)
	}
	if got := get(t, d, "a/b/empty"); got != "" {
		t.Fatalf("empty object reads %q", got)
	}
	info, err := d.Stat(ctx, "a/b/c")
	if err != nil || info.Size != 3 {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
	// Sizes on either side of the buffers a backend may read small
	// objects with.
	for _, n := range []int{1, 511, 512, 513, 4095, 4096, 4097, 1<<20 + 3} {
		want := strings.Repeat("x", n-1) + "y"
		put(t, d, "sized", want)
		if got := get(t, d, "sized"); got != want {
			t.Fatalf("an object of %d bytes reads %d bytes", n, len(got))
		}
	}
}

func testMissing(t *testing.T, d storage.Driver) {
	_, err := d.GetContent(ctx, "no/such")
	wantErr(t, "GetContent", err, storage.ErrNotFound)
	_, _, err = d.GetVersioned(ctx, "no/such")
	wantErr(t, "GetVersioned", err, storage.ErrNotFound)
	_, err = d.Stat(ctx, "no/such")
	wantErr(t, "Stat", err, storage.ErrNotFound)
	_, _, err = d.Reader(ctx, "no/such")
	wantErr(t, "Reader", err, storage.ErrNotFound)
	if err := d.Delete(ctx, "no/such"); err != nil {
		t.Fatalf("Delete of a missing object: %v", err)
	}
	if err := d.DeleteAll(ctx, "no"); err != nil {
		t.Fatalf("DeleteAll of an empty prefix: %v", err)
	}
	entries, err := d.List(ctx, "no", "", 0)
	if err != nil || len(entries) != 0 {
		t.Fatalf("List of an empty directory = %v, %v", entries, err)
	}
}

func testStatObjectsOnly(t *testing.T, d storage.Driver) {
	put(t, d, "dir/obj", "x")
	_, err := d.Stat(ctx, "dir")
	wantErr(t, "Stat of a prefix", err, storage.ErrNotFound)
	if err := d.Delete(ctx, "dir"); err != nil {
		t.Fatalf("Delete of a prefix: %v", err)
	}
	if got := get(t, d, "dir/obj"); got != "x" {
		t.Fatal("Delete of a prefix removed what is below it")
	}
}

// Garbage collection judges age against a probe object it writes when it
// starts: whatever is written after the probe must not look older.
func testModTimeOrder(t *testing.T, d storage.Driver) {
	var last storage.Info
	for i := 0; i < 20; i++ {
		p := fmt.Sprintf("t/%d", i%3)
		put(t, d, p, "v")
		info, err := d.Stat(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if info.ModTime.IsZero() || info.ModTime.Before(last.ModTime) {
			t.Fatalf("write %d stamped %v, before the previous write's %v", i, info.ModTime, last.ModTime)
		}
		last = info
	}
}

func testTouch(t *testing.T, d storage.Driver) {
	put(t, d, "touched", "content")
	before, err := d.Stat(ctx, "touched")
	if err != nil {
		t.Fatal(err)
	}
	// An object written after the store's clock has moved past the
	// object's time (a whole second on S3): a touch that kept the old
	// time shows only against such an object.
	probe := writeLater(t, d, "probe", before.ModTime)
	if err := d.Touch(ctx, "touched"); err != nil {
		t.Fatal(err)
	}
	after, err := d.Stat(ctx, "touched")
	if err != nil {
		t.Fatal(err)
	}
	if after.ModTime.Before(probe.ModTime) {
		t.Fatalf("touched object stamped %v, before an object written earlier (%v): the touch kept its time %v", after.ModTime, probe.ModTime, before.ModTime)
	}
	if listed := listInfo(t, d, "", "touched"); !listed.ModTime.Equal(after.ModTime) {
		t.Fatalf("touched object listed with time %v, stat gives %v", listed.ModTime, after.ModTime)
	}
	if got := get(t, d, "touched"); got != "content" || after.Size != before.Size {
		t.Fatalf("Touch changed the content to %q", got)
	}
	wantErr(t, "Touch of a missing object", d.Touch(ctx, "missing"), storage.ErrNotFound)
	if _, err := d.Stat(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("Touch created a missing object")
	}
}

// writeLater writes an empty object at p, again and again, until the
// store stamps it later than t, and returns its Info. On a store with a
// coarse clock (S3: whole seconds) that takes up to one tick.
func writeLater(t *testing.T, d storage.Driver, p string, after time.Time) storage.Info {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		put(t, d, p, "")
		info, err := d.Stat(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if info.ModTime.After(after) {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("objects written for 10s are still stamped %v, not after %v", info.ModTime, after)
		}
		time.Sleep(50 * time.Millisecond) // then write it again
	}
}

// listInfo is the Info List gives for the object name in dir.
func listInfo(t *testing.T, d storage.Driver, dir, name string) storage.Info {
	t.Helper()
	entries, err := d.List(ctx, dir, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name == name && !e.Dir {
			return e.Info
		}
	}
	t.Fatalf("List(%q) has no object %q", dir, name)
	return storage.Info{}
}

func testPutIfCreate(t *testing.T, d storage.Driver) {
	if err := d.PutIf(ctx, "lease", []byte("a"), storage.Absent); err != nil {
		t.Fatal(err)
	}
	err := d.PutIf(ctx, "lease", []byte("b"), storage.Absent)
	wantErr(t, "second create", err, storage.ErrExists)
	if got := get(t, d, "lease"); got != "a" {
		t.Fatalf("a refused create changed the object to %q", got)
	}
}

func testPutIfVersions(t *testing.T, d storage.Driver) {
	put(t, d, "v", "one")
	_, v1, err := d.GetVersioned(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.PutIf(ctx, "v", []byte("two"), v1); err != nil {
		t.Fatalf("replace at the current version: %v", err)
	}
	err = d.PutIf(ctx, "v", []byte("three"), v1)
	wantErr(t, "replace at a stale version", err, storage.ErrChanged)
	b, v2, err := d.GetVersioned(ctx, "v")
	if err != nil || string(b) != "two" || v2 == v1 {
		t.Fatalf("after a refused replace: %q %q %v (old version %q)", b, v2, err, v1)
	}
	// Another writer's write of different bytes changes the version.
	put(t, d, "v", "other")
	err = d.PutIf(ctx, "v", []byte("four"), v2)
	wantErr(t, "replace after another writer's write", err, storage.ErrChanged)
	if err := d.Delete(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	err = d.PutIf(ctx, "v", []byte("five"), v2)
	wantErr(t, "replace of a deleted object", err, storage.ErrChanged)
}

func testPutIfConcurrent(t *testing.T, d storage.Driver) {
	put(t, d, "cas", "start")
	_, v, err := d.GetVersioned(ctx, "cas")
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.PutIf(ctx, "cas", []byte(fmt.Sprintf("writer %d", i)), v)
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both replaced version %q", winner, i, v)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrChanged):
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer replaced the object")
	}
	if got := get(t, d, "cas"); got != fmt.Sprintf("writer %d", winner) {
		t.Fatalf("content %q, but writer %d won", got, winner)
	}
}

func testReader(t *testing.T, d storage.Driver) {
	data := []byte("0123456789abcdefghij")
	put(t, d, "r", string(data))
	rc, info, err := d.Reader(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if info.Size != int64(len(data)) || info.ModTime.IsZero() {
		t.Fatalf("Reader info %+v", info)
	}
	buf := make([]byte, 4)
	for _, off := range []int64{10, 0, 16} {
		if _, err := rc.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != string(data[off:off+4]) {
			t.Fatalf("at %d read %q, %v", off, buf, err)
		}
	}
	if end, err := rc.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
		t.Fatalf("Seek to end = %d, %v", end, err)
	}
	if n, err := rc.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read at the end = %d, %v", n, err)
	}
	if _, err := rc.Seek(5, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rc)
	if err != nil || string(rest) != string(data[5:]) {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func write(t *testing.T, d storage.Driver, p string, mode storage.WriteMode, parts ...[]byte) storage.Writer {
	t.Helper()
	w, err := d.Writer(ctx, p, mode)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range parts {
		if n, err := w.Write(b); err != nil || n != len(b) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	return w
}

func testWriterInvisible(t *testing.T, d storage.Driver) {
	w := write(t, d, "w/new", storage.Replace, []byte("hello "), []byte("world"))
	if w.Size() != 11 {
		t.Fatalf("Size %d", w.Size())
	}
	_, err := d.Stat(ctx, "w/new")
	wantErr(t, "Stat before Commit", err, storage.ErrNotFound)
	if entries, _ := d.List(ctx, "w", "", 0); len(entries) != 0 {
		t.Fatalf("List before Commit shows %v", entries)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "w/new"); got != "hello world" {
		t.Fatalf("committed %q", got)
	}
	put(t, d, "w/old", "old")
	w = write(t, d, "w/old", storage.Replace, []byte("new"))
	if got := get(t, d, "w/old"); got != "old" {
		t.Fatalf("replacement visible before Commit: %q", got)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "w/old"); got != "new" {
		t.Fatalf("after Commit %q", got)
	}
}

func testWriterCancel(t *testing.T, d storage.Driver) {
	put(t, d, "c/kept", "kept")
	for _, p := range []string{"c/kept", "c/never"} {
		w := write(t, d, p, storage.Replace, []byte("discarded"))
		if err := w.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := get(t, d, "c/kept"); got != "kept" {
		t.Fatalf("Cancel changed the object to %q", got)
	}
	_, err := d.Stat(ctx, "c/never")
	wantErr(t, "Stat after Cancel", err, storage.ErrNotFound)
}

// pattern returns n bytes that differ with seed and position, so a part
// out of place or written twice shows.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7+i/4099)
	}
	return b
}

func testWriterLarge(t *testing.T, d storage.Driver) {
	// Odd write sizes across several multipart-sized parts.
	data := pattern(1, 13<<20+12345)
	w, err := d.Writer(ctx, "big", storage.Replace)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); {
		n := min(len(data)-off, 1<<20+777)
		if _, err := w.Write(data[off : off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	checkObject(t, d, "big", data)
}

func checkObject(t *testing.T, d storage.Driver, p string, want []byte) {
	t.Helper()
	rc, info, err := d.Reader(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || info.Size != int64(len(want)) || !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes (info %d), %v; want %d bytes as written", p, len(got), info.Size, err, len(want))
	}
}

func testWriterCreate(t *testing.T, d storage.Driver) {
	put(t, d, "x", "first")
	w := write(t, d, "x", storage.Create, []byte("second"))
	wantErr(t, "Create over an object", w.Commit(ctx), storage.ErrExists)
	if got := get(t, d, "x"); got != "first" {
		t.Fatalf("a refused Create changed the object to %q", got)
	}
	w = write(t, d, "y", storage.Create, []byte("new"))
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "y"); got != "new" {
		t.Fatalf("created %q", got)
	}
}

// Upload sessions rely on this: two requests appending at the same offset
// must not both succeed, and the stored chunk is exactly one of them.
func testWriterCreateConcurrent(t *testing.T, d storage.Driver) {
	const n = 6
	writers := make([]storage.Writer, n)
	datas := make([][]byte, n)
	for i := range n {
		datas[i] = pattern(byte(i), 100_000+i)
		writers[i] = write(t, d, "chunk", storage.Create, datas[i])
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = writers[i].Commit(ctx) }()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both created the object", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrExists):
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created the object")
	}
	checkObject(t, d, "chunk", datas[winner])
}

func testCompose(t *testing.T, d storage.Driver) {
	put(t, d, "parts/1", "alpha-")
	put(t, d, "parts/2", "")
	put(t, d, "parts/3", "omega")
	put(t, d, "out/dst", "old content")
	if err := d.Compose(ctx, "out/dst", []string{"parts/1", "parts/2", "parts/3"}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "out/dst"); got != "alpha-omega" {
		t.Fatalf("composed %q", got)
	}
	if err := d.Compose(ctx, "out/single", []string{"parts/3"}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "out/single"); got != "omega" {
		t.Fatalf("composed one source into %q", got)
	}
	for p, want := range map[string]string{"parts/1": "alpha-", "parts/3": "omega"} {
		if got := get(t, d, p); got != want {
			t.Fatalf("source %s changed to %q", p, got)
		}
	}
	// The composed object is its own: replacing a source later leaves it.
	put(t, d, "parts/3", "changed")
	if got := get(t, d, "out/single"); got != "omega" {
		t.Fatalf("composed object follows its source: %q", got)
	}
}

// Object stores compose large parts inside the store and small ones by
// copying: both, mixed, must give the same bytes.
func testComposeLarge(t *testing.T, d storage.Driver) {
	var want []byte
	var srcs []string
	for i, n := range []int{6 << 20, 6<<20 + 1, 100, 5 << 20, 3} {
		b := pattern(byte(i), n)
		w := write(t, d, fmt.Sprintf("lp/%d", i), storage.Create, b)
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		want = append(want, b...)
		srcs = append(srcs, fmt.Sprintf("lp/%d", i))
	}
	if err := d.Compose(ctx, "lp/all", srcs); err != nil {
		t.Fatal(err)
	}
	checkObject(t, d, "lp/all", want)
	if err := d.Compose(ctx, "lp/first", srcs[:1]); err != nil {
		t.Fatal(err)
	}
	checkObject(t, d, "lp/first", want[:6<<20])
}

func testComposeMissing(t *testing.T, d storage.Driver) {
	put(t, d, "m/a", "a")
	put(t, d, "m/dst", "kept")
	err := d.Compose(ctx, "m/dst", []string{"m/a", "m/missing"})
	wantErr(t, "Compose with a missing source", err, storage.ErrNotFound)
	if got := get(t, d, "m/dst"); got != "kept" {
		t.Fatalf("a failed Compose changed the destination to %q", got)
	}
}

func names(entries []storage.Entry) string {
	var s []string
	for _, e := range entries {
		n := e.Name
		if e.Dir {
			n += "/"
		}
		s = append(s, n)
	}
	return strings.Join(s, " ")
}

func testList(t *testing.T, d storage.Driver) {
	for _, p := range []string{"l/b", "l/a", "l/c/deep/x", "l/c/y", "l/a.b", "l/a-b", "l2/not-a-child"} {
		put(t, d, p, p)
	}
	entries, err := d.List(ctx, "l", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(entries), "a a-b a.b b c/"; got != want {
		t.Fatalf("List = %q, want %q", got, want)
	}
	for _, e := range entries {
		if !e.Dir && (e.Size != int64(len("l/"+e.Name)) || e.ModTime.IsZero()) {
			t.Fatalf("entry %s has info %+v", e.Name, e.Info)
		}
	}
	named, err := d.Names(ctx, "l", "a", 3)
	if err != nil || names(named) != "a-b a.b b" {
		t.Fatalf("Names after a, 3 = %q, %v", names(named), err)
	}
	top, err := d.List(ctx, "", "", 0)
	if err != nil || names(top) != "l/ l2/" {
		t.Fatalf("List of the root = %q, %v", names(top), err)
	}
}

func testListPage(t *testing.T, d storage.Driver) {
	for i := range 12 {
		put(t, d, fmt.Sprintf("p/%02d", i), "x")
	}
	put(t, d, "p/sub/x", "x")
	var got []string
	after := ""
	for {
		page, err := d.List(ctx, "p", after, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 5 {
			t.Fatalf("limit 5 returned %d entries", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			got = append(got, e.Name)
		}
		after = page[len(page)-1].Name
	}
	if s := strings.Join(got, " "); s != "00 01 02 03 04 05 06 07 08 09 10 11 sub" {
		t.Fatalf("pages = %q", s)
	}
	page, err := d.List(ctx, "p", "05x", 2)
	if err != nil || names(page) != "06 07" {
		t.Fatalf("after a name not present: %q, %v", names(page), err)
	}
}

func testListEmpty(t *testing.T, d storage.Driver) {
	put(t, d, "e/gone/deeper/x", "x")
	put(t, d, "e/kept", "x")
	if err := d.Delete(ctx, "e/gone/deeper/x"); err != nil {
		t.Fatal(err)
	}
	entries, err := d.List(ctx, "e", "", 0)
	if err != nil || names(entries) != "kept" {
		t.Fatalf("after removing the only object below e/gone: %q, %v", names(entries), err)
	}
	put(t, d, "e/gone/again", "x") // the prefix can be used again at once
	if got := get(t, d, "e/gone/again"); got != "x" {
		t.Fatal(got)
	}
}

func testWalk(t *testing.T, d storage.Driver) {
	// Byte order of whole paths: "a-b" < "a.b" < "a/..." < "a0", which a
	// directory-by-directory walk gets wrong unless it sorts with care.
	paths := []string{"w/a0", "w/a/x", "w/a.b", "w/a-b", "w/a/y/z", "w/a!", "w/b", "x/other"}
	for _, p := range paths {
		put(t, d, p, p)
	}
	var got []string
	err := d.Walk(ctx, "w", func(e storage.Entry) error {
		if e.Dir || e.Size != int64(len("w/"+e.Name)) || e.ModTime.IsZero() {
			return fmt.Errorf("entry %+v", e)
		}
		got = append(got, e.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s, want := strings.Join(got, " "), "a! a-b a.b a/x a/y/z a0 b"; s != want {
		t.Fatalf("Walk = %q, want %q", s, want)
	}
	var all []string
	if err := d.Walk(ctx, "", func(e storage.Entry) error { all = append(all, e.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(all) != len(paths) || all[len(all)-1] != "x/other" {
		t.Fatalf("Walk of the whole store = %v", all)
	}
	if err := d.Walk(ctx, "nothing", func(storage.Entry) error { return errors.New("called") }); err != nil {
		t.Fatalf("Walk of an empty prefix: %v", err)
	}
}

func testWalkStop(t *testing.T, d storage.Driver) {
	for i := range 5 {
		put(t, d, fmt.Sprintf("s/%d", i), "x")
	}
	stop := errors.New("stop")
	calls := 0
	err := d.Walk(ctx, "s", func(storage.Entry) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Fatalf("Walk returned %v after %d calls", err, calls)
	}
}

func testDelete(t *testing.T, d storage.Driver) {
	put(t, d, "d/a", "a")
	put(t, d, "d/b", "b")
	if err := d.Delete(ctx, "d/a"); err != nil {
		t.Fatal(err)
	}
	_, err := d.Stat(ctx, "d/a")
	wantErr(t, "Stat after Delete", err, storage.ErrNotFound)
	if got := get(t, d, "d/b"); got != "b" {
		t.Fatal("Delete removed a sibling")
	}
	if err := d.Delete(ctx, "d/a"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

func testDeleteAll(t *testing.T, d storage.Driver) {
	for _, p := range []string{"u/1/info", "u/1/data/0", "u/1/data/5", "u/10/info", "u/1x"} {
		put(t, d, p, "x")
	}
	if err := d.DeleteAll(ctx, "u/1"); err != nil {
		t.Fatal(err)
	}
	var left []string
	if err := d.Walk(ctx, "u", func(e storage.Entry) error { left = append(left, e.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(left, " "); s != "10/info 1x" {
		t.Fatalf("left %q, want what is not below u/1/", s)
	}
}

func testBadPaths(t *testing.T, d storage.Driver) {
	for _, p := range []string{"", "/abs", "trail/", "a//b", "a/./b", "a/../../etc", "..", "a/\x00"} {
		if err := d.PutContent(ctx, p, []byte("x")); err == nil {
			t.Errorf("PutContent(%q) accepted", p)
		}
		if _, err := d.GetContent(ctx, p); err == nil {
			t.Errorf("GetContent(%q) accepted", p)
		}
		if _, err := d.Writer(ctx, p, storage.Replace); err == nil {
			t.Errorf("Writer(%q) accepted", p)
		}
		if err := d.Delete(ctx, p); err == nil {
			t.Errorf("Delete(%q) accepted", p)
		}
	}
	for _, p := range []string{"..", "/", "a/../.."} {
		if err := d.DeleteAll(ctx, p); err == nil {
			t.Errorf("DeleteAll(%q) accepted", p)
		}
		if _, err := d.List(ctx, p, "", 0); err == nil {
			t.Errorf("List(%q) accepted", p)
		}
	}
}

func testAtomicReplace(t *testing.T, d storage.Driver) {
	a, b := bytes.Repeat([]byte("a"), 64<<10), bytes.Repeat([]byte("b"), 64<<10)
	if err := d.PutContent(ctx, "atomic", a); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			next := a
			if i%2 == 0 {
				next = b
			}
			if err := d.PutContent(ctx, "atomic", next); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 200 {
		got, err := d.GetContent(ctx, "atomic")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
			close(done)
			wg.Wait()
			t.Fatalf("a reader saw a mix of two writes (%d bytes)", len(got))
		}
	}
	close(done)
	wg.Wait()
}

// Writes and deletes that need not be durable are visible at once all the
// same: the protocol's marks rely on it.
func testNoSync(t *testing.T, d storage.Driver) {
	ns := storage.NoSync(ctx)
	if storage.Synced(ns) || !storage.Synced(ctx) {
		t.Fatal("NoSync does not mark its context")
	}
	if err := d.PutContent(ns, "ns/a/b", []byte("mark")); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "ns/a/b"); got != "mark" {
		t.Fatalf("a NoSync put reads %q", got)
	}
	w := write(t, d, "ns/c", storage.Create, []byte("chunk"))
	if err := w.Commit(ns); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d, "ns/c"); got != "chunk" {
		t.Fatalf("a NoSync writer's object reads %q", got)
	}
	if err := d.Delete(ns, "ns/a/b"); err != nil {
		t.Fatal(err)
	}
	_, err := d.Stat(ctx, "ns/a/b")
	wantErr(t, "Stat after a NoSync delete", err, storage.ErrNotFound)
	if err := d.DeleteAll(ns, "ns"); err != nil {
		t.Fatal(err)
	}
	if entries, _ := d.List(ctx, "ns", "", 0); len(entries) != 0 {
		t.Fatalf("after a NoSync DeleteAll: %v", names(entries))
	}
}
