package s3

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/memory"
)

// pattern returns n bytes that differ with seed and position.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7+i/4093)
	}
	return b
}

func writeAll(t *testing.T, w storage.Writer, data []byte) {
	t.Helper()
	for off := 0; off < len(data); {
		n := min(len(data)-off, 1<<20+333)
		if _, err := w.Write(data[off : off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
	}
}

func readAll(t *testing.T, d storage.Driver, p string) []byte {
	t.Helper()
	rc, _, err := d.Reader(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriterPartsAndSinglePut(t *testing.T) {
	c := newCounter()
	cfg := testConfig(t)
	cfg.PartSize = minPartSize
	d := newTestDriver(t, cfg, c.option)
	for _, tc := range []struct {
		size                 int
		parts, puts, creates int
	}{
		{size: 0, puts: 1},
		{size: smallBuffer - 1, puts: 1},
		{size: smallBuffer, puts: 1},
		{size: smallBuffer + 1, puts: 1}, // past the small first buffer
		{size: minPartSize - 1, puts: 1},
		{size: minPartSize, parts: 1, creates: 1}, // the buffer filled: a part went before Commit
		{size: 2*minPartSize + 12345, parts: 3, creates: 1},
	} {
		for _, how := range []string{"Write", "ReadFrom"} {
			t.Run(fmt.Sprint(tc.size, how), func(t *testing.T) {
				c.reset()
				data := pattern(byte(tc.size), tc.size)
				w, err := d.Writer(ctx, "obj", storage.Replace)
				if err != nil {
					t.Fatal(err)
				}
				if how == "Write" {
					writeAll(t, w, data)
				} else if _, err := w.(io.ReaderFrom).ReadFrom(iotest.HalfReader(bytes.NewReader(data))); err != nil {
					t.Fatal(err)
				}
				if err := w.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				got := map[string]int{"UploadPart": c.count("UploadPart"), "PutObject": c.count("PutObject"), "CreateMultipartUpload": c.count("CreateMultipartUpload")}
				want := map[string]int{"UploadPart": tc.parts, "PutObject": tc.puts, "CreateMultipartUpload": tc.creates}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("requests %v, want %v", got, want)
				}
				if !bytes.Equal(readAll(t, d, "obj"), data) {
					t.Fatal("the object is not what was written")
				}
			})
		}
	}
	if left := uploadsLeft(t, d); len(left) > 0 {
		t.Fatalf("uploads left in progress: %v", left)
	}
}

func TestWriterCancelAbortsUpload(t *testing.T) {
	cfg := testConfig(t)
	cfg.PartSize = minPartSize
	d := newTestDriver(t, cfg)
	w, err := d.Writer(ctx, "obj", storage.Replace)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, pattern(1, 2*minPartSize+1))
	if left := uploadsLeft(t, d); len(left) != 1 {
		t.Fatalf("uploads in progress after two parts: %v, want one", left)
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if left := uploadsLeft(t, d); len(left) > 0 {
		t.Fatalf("Cancel left uploads in progress: %v", left)
	}
	_, err = d.Stat(ctx, "obj")
	wantErr(t, "Stat after Cancel", err, storage.ErrNotFound)
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Cancel succeeded")
	}
}

func TestWriterCreateMultipartRefusesExisting(t *testing.T) {
	cfg := testConfig(t)
	cfg.PartSize = minPartSize
	d := newTestDriver(t, cfg)
	if err := d.PutContent(ctx, "obj", []byte("first")); err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(ctx, "obj", storage.Create)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, pattern(2, minPartSize+10))
	wantErr(t, "Create over an object", w.Commit(ctx), storage.ErrExists)
	if got, _ := d.GetContent(ctx, "obj"); string(got) != "first" {
		t.Fatalf("a refused Create changed the object to %d bytes", len(got))
	}
	if left := uploadsLeft(t, d); len(left) > 0 {
		t.Fatalf("a refused Create left uploads in progress: %v", left)
	}
	// And a Create of a new object by parts publishes it.
	data := pattern(3, minPartSize+10)
	w, err = d.Writer(ctx, "new", storage.Create)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, data)
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, d, "new"), data) {
		t.Fatal("created object differs")
	}
}

// http.ServeContent seeks to the end for the size, then to the range
// start, then reads: one GET, none for the seeks.
func TestReaderGetsLazily(t *testing.T) {
	c := newCounter()
	d := newTestDriver(t, testConfig(t), c.option)
	data := pattern(4, 100_000)
	if err := d.PutContent(ctx, "obj", data); err != nil {
		t.Fatal(err)
	}
	c.reset()
	rc, info, err := d.Reader(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if info.Size != int64(len(data)) {
		t.Fatalf("size %d", info.Size)
	}
	if end, err := rc.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
		t.Fatalf("Seek to end = %d, %v", end, err)
	}
	if _, err := rc.Seek(1000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if c.count("GetObject") != 0 {
		t.Fatalf("seeks sent %d GETs", c.count("GetObject"))
	}
	got, err := io.ReadAll(io.LimitReader(rc, 5000))
	if err != nil || !bytes.Equal(got, data[1000:6000]) {
		t.Fatalf("range read %d bytes, %v", len(got), err)
	}
	got, err = io.ReadAll(rc) // continues the same GET
	if err != nil || !bytes.Equal(got, data[6000:]) {
		t.Fatalf("rest read %d bytes, %v", len(got), err)
	}
	if n := c.count("GetObject"); n != 1 {
		t.Fatalf("%d GETs, want 1", n)
	}
	if n := c.count("HeadObject"); n != 1 {
		t.Fatalf("%d HEADs, want 1", n)
	}
}

func TestReaderRefusesReplacedObject(t *testing.T) {
	d := newTestDriver(t, testConfig(t))
	if err := d.PutContent(ctx, "obj", []byte("old content")); err != nil {
		t.Fatal(err)
	}
	rc, _, err := d.Reader(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := d.PutContent(ctx, "obj", []byte("new content!")); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(rc); err == nil {
		t.Fatalf("read %q from an object replaced after it was opened", b)
	}
}

func putObjects(t *testing.T, d storage.Driver, sizes ...int) ([]string, []byte) {
	t.Helper()
	var paths []string
	var all []byte
	for i, n := range sizes {
		p := fmt.Sprintf("src/%d", i)
		data := pattern(byte(10+i), n)
		w, err := d.Writer(ctx, p, storage.Replace)
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, w, data)
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		all = append(all, data...)
	}
	return paths, all
}

func TestComposeCopiesInsideTheStore(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name               string
		sizes              []int
		copyObjectMax      int64 // 0: the driver's
		copies, partCopies int
		getBytes           bool // some bytes pass through the driver
	}{
		{name: "one source", sizes: []int{6 * mib}, copies: 1},
		{name: "all large but the last", sizes: []int{6 * mib, 5 * mib, 3}, partCopies: 3},
		{name: "large source past the copy limit", sizes: []int{13 * mib}, copyObjectMax: 5 * mib, partCopies: 3},
		// 5 MiB - 100 bytes read to fill the first part, the rest copied in
		// two parts (the limit is 6 MiB here).
		{name: "small first, then topped up", sizes: []int{100, 12 * mib}, partCopies: 2, getBytes: true},
		{name: "all small", sizes: []int{10, 20, 30}, getBytes: true},
	}
	testConfig(t) // skip or fail here, not in every subtest
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCounter()
			d := newTestDriver(t, testConfig(t), c.option)
			d.copyPartMax = 6 * mib
			if tc.copyObjectMax > 0 {
				d.copyObjectMax = tc.copyObjectMax
			}
			srcs, want := putObjects(t, d, tc.sizes...)
			c.reset()
			if err := d.Compose(ctx, "dst", srcs); err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("CopyObject %d, UploadPartCopy %d, some GETs %v",
				c.count("CopyObject"), c.count("UploadPartCopy"), c.count("GetObject") > 0)
			if wantOps := fmt.Sprintf("CopyObject %d, UploadPartCopy %d, some GETs %v", tc.copies, tc.partCopies, tc.getBytes); got != wantOps {
				t.Errorf("requests: %s; want %s", got, wantOps)
			}
			if !bytes.Equal(readAll(t, d, "dst"), want) {
				t.Fatal("composed object differs from the concatenation")
			}
			if left := uploadsLeft(t, d); len(left) > 0 {
				t.Fatalf("uploads left in progress: %v", left)
			}
		})
	}
}

func TestComposeRefusesReplacedSource(t *testing.T) {
	c := newCounter()
	d := newTestDriver(t, testConfig(t), c.option)
	srcs, _ := putObjects(t, d, 6<<20, 10)
	// Replace the second source between the HEADs and its copy.
	c.fail = func(op string, req *http.Request) error {
		if op == "UploadPartCopy" {
			c.fail = nil
			if err := d.PutContent(ctx, srcs[1], pattern(99, 10)); err != nil { // same size, other bytes
				t.Error(err)
			}
		}
		return nil
	}
	if err := d.PutContent(ctx, "dst", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := d.Compose(ctx, "dst", srcs); err == nil {
		t.Fatal("Compose succeeded although a source was replaced during it")
	}
	if got, _ := d.GetContent(ctx, "dst"); string(got) != "kept" {
		t.Fatalf("a failed Compose changed the destination to %d bytes", len(got))
	}
	if left := uploadsLeft(t, d); len(left) > 0 {
		t.Fatalf("uploads left in progress: %v", left)
	}
}

// S3 orders a prefix "a/" after "a-1" and "a.3", yet List orders by name:
// every page of every size, from every start, must match the memory
// backend's answer.
func TestListPagesInNameOrder(t *testing.T) {
	d := newTestDriver(t, testConfig(t))
	m := memory.New()
	for _, p := range []string{"l/a/x", "l/a-1", "l/a-2", "l/a.3", "l/a.3x/y", "l/a0", "l/b", "l/b-c/d", "l/b-c-e", "l/c"} {
		for _, drv := range []storage.Driver{d, m} {
			if err := drv.PutContent(ctx, p, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	full, _ := m.List(ctx, "l", "", 0)
	afters := []string{"", "a", "a-", "a-1", "a.3", "a.3x", "a0", "b", "b-c", "bz"}
	for _, after := range afters {
		for limit := 1; limit <= len(full)+1; limit++ {
			want, err := m.List(ctx, "l", after, limit)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.List(ctx, "l", after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if listNames(got) != listNames(want) {
				t.Errorf("List(after %q, limit %d) = %q, want %q", after, limit, listNames(got), listNames(want))
			}
		}
	}
}

func listNames(entries []storage.Entry) string {
	var s []string
	for _, e := range entries {
		if e.Dir {
			s = append(s, e.Name+"/")
		} else {
			s = append(s, e.Name)
		}
	}
	return strings.Join(s, " ")
}

// A conditional write whose answer is lost is retried by the SDK; the
// retry then fails its own condition. The write landed all the same, and
// must be reported as done, not as lost to another writer.
func TestConditionalWriteWithLostAnswer(t *testing.T) {
	cfg := testConfig(t)
	cfg.PartSize = minPartSize
	c := newCounter()
	d := newTestDriver(t, cfg, c.option)
	dropFirst := func(opName string) {
		c.fail = func(op string, req *http.Request) error {
			if op != opName {
				return nil
			}
			c.fail = nil
			return &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
		}
	}

	var v storage.Version
	t.Run("create", func(t *testing.T) {
		dropFirst("PutObject")
		if err := d.PutIf(ctx, "lease", []byte("mine"), storage.Absent); err != nil {
			t.Fatalf("create whose answer was lost: %v", err)
		}
	})
	t.Run("replace", func(t *testing.T) {
		var err error
		if _, v, err = d.GetVersioned(ctx, "lease"); err != nil {
			t.Fatal(err)
		}
		dropFirst("PutObject")
		if err := d.PutIf(ctx, "lease", []byte("mine, renewed"), v); err != nil {
			t.Fatalf("replace whose answer was lost: %v", err)
		}
	})
	t.Run("multipart create", func(t *testing.T) {
		dropFirst("CompleteMultipartUpload")
		w, err := d.Writer(ctx, "chunk", storage.Create)
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, w, pattern(5, minPartSize+1))
		if err := w.Commit(ctx); err != nil {
			t.Fatalf("multipart create whose answer was lost: %v", err)
		}
	})
	if c.fail != nil {
		t.Fatal("no answer was dropped: the test tested nothing")
	}
	// Someone else's object still refuses them.
	err := d.PutIf(ctx, "lease", []byte("theirs"), storage.Absent)
	wantErr(t, "create over another's object", err, storage.ErrExists)
	err = d.PutIf(ctx, "lease", []byte("theirs"), v)
	wantErr(t, "replace at a stale version", err, storage.ErrChanged)
}

func TestRedirectURL(t *testing.T) {
	cfg := testConfig(t)
	off := newTestDriver(t, cfg)
	if err := off.PutContent(ctx, "blob", []byte("redirected bytes")); err != nil {
		t.Fatal(err)
	}
	if u, err := off.RedirectURL(ctx, "blob"); err != nil || u != "" {
		t.Fatalf("RedirectURL with redirects off = %q, %v", u, err)
	}
	cfg.Redirect, cfg.RedirectExpiry = true, 90*time.Second
	on, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	u, err := on.RedirectURL(ctx, "blob")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "X-Amz-Expires=90") {
		t.Errorf("URL %s does not expire in 90s", u)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "redirected bytes" {
		t.Fatalf("GET of the presigned URL: %d %q", resp.StatusCode, body)
	}
	if _, err := on.RedirectURL(ctx, "../x"); err == nil {
		t.Fatal("RedirectURL accepted a non-canonical path")
	}
}

// A missing bucket is a configuration error, never "no such object": the
// registry would otherwise answer 404 for everything. A HEAD cannot tell
// (its 404 has no body), so CheckBucket is there for startup.
func TestMissingBucketIsNotNotFound(t *testing.T) {
	cfg := testConfig(t)
	good := newTestDriver(t, cfg)
	if err := good.CheckBucket(ctx); err != nil {
		t.Fatalf("CheckBucket of the test bucket: %v", err)
	}
	cfg.Bucket = "no-such-bucket-" + newToken()[:8]
	d, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CheckBucket(ctx); err == nil || !strings.Contains(err.Error(), cfg.Bucket) {
		t.Fatalf("CheckBucket of a missing bucket: %v", err)
	}
	_, err = d.GetContent(ctx, "x")
	if err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetContent in a missing bucket: %v", err)
	}
	cfg = testConfig(t)
	cfg.SecretKey = "wrong"
	d, err = New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CheckBucket(ctx); err == nil {
		t.Fatal("CheckBucket with a wrong secret key succeeded")
	}
}

// The prefix keeps the driver inside its part of the bucket.
func TestPrefixIsolates(t *testing.T) {
	cfg := testConfig(t)
	outer := newTestDriver(t, Config{Endpoint: cfg.Endpoint, Region: cfg.Region, Bucket: cfg.Bucket,
		AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, PathStyle: true, Prefix: cfg.Prefix})
	cfg.Prefix += "/inner"
	inner := newTestDriver(t, cfg)
	if err := outer.PutContent(ctx, "beside", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := inner.PutContent(ctx, "a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := inner.DeleteAll(ctx, ""); err != nil {
		t.Fatal(err)
	}
	var left []string
	if err := outer.Walk(ctx, "", func(e storage.Entry) error { left = append(left, e.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(left, " ") != "beside" {
		t.Fatalf("after the inner driver's DeleteAll the outer prefix holds %v", left)
	}
}

// Keys are URL-encoded in x-amz-copy-source; the server must find them.
func TestComposeOddKeys(t *testing.T) {
	d := newTestDriver(t, testConfig(t))
	var srcs []string
	var want []byte
	for i, p := range []string{"odd/a b+c%d:e", "odd/caf\u00e9!*'()", "odd/x&y=z?w#v"} {
		data := pattern(byte(i), 6<<20)
		if err := d.PutContent(ctx, p, data); err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, p)
		want = append(want, data...)
	}
	if err := d.Compose(ctx, "odd/one", srcs[:1]); err != nil { // CopyObject
		t.Fatal(err)
	}
	if err := d.Compose(ctx, "odd/all", srcs); err != nil { // UploadPartCopy
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, d, "odd/one"), want[:6<<20]) || !bytes.Equal(readAll(t, d, "odd/all"), want) {
		t.Fatal("composed objects differ")
	}
}
