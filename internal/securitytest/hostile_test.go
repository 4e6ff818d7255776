package securitytest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// hostileEnv is an open registry (no auth) with small body limits, seeded
// with library/app: a config, a 100-byte layer, a manifest tagged v1 and an
// upload session holding 5 bytes.
type hostileEnv struct {
	t    *testing.T
	root string
	url  string
	x    content
}

const (
	testMaxChunk    = 8 << 10
	testMaxBlob     = 32 << 10
	testMaxManifest = 256 << 10
)

func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	root := t.TempDir()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(d, registry.Options{MaxManifestBytes: testMaxManifest, MaxChunkBytes: testMaxChunk, MaxBlobBytes: testMaxBlob})
	srv := httptest.NewServer(api.New(reg))
	t.Cleanup(srv.Close)
	e := &hostileEnv{t: t, root: root, url: srv.URL}
	c := &client{t: t, base: srv.URL}
	e.x = seed(t, c, "library/app")
	if st, _, b := c.do("PATCH", "/v2/library/app/blobs/uploads/"+e.x.upload, []byte("12345"), nil); st != 202 {
		t.Fatalf("seeding upload: %d %s", st, b)
	}
	return e
}

// raw sends target exactly as written (no client-side cleaning or
// escaping), with an optional body; chunked sends it without a length.
func (e *hostileEnv) raw(t testing.TB, method, target string, body []byte, h map[string]string, chunked bool) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+"/", rd)
	if err != nil {
		t.Fatal(err)
	}
	path, query, _ := strings.Cut(target, "?")
	req.URL.Opaque, req.URL.RawQuery = path, query
	if chunked {
		req.ContentLength = -1
		req.Body = io.NopCloser(rd)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// nest returns depth levels of open then close brackets.
func nest(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

func manifestWith(extra string) []byte {
	return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1},` +
		`"layers":[]` + extra + `}`)
}

// TestHostileRequests sends malformed and malicious requests and checks
// each gets the spec's status and error code and leaves the data
// directory exactly as it was.
func TestHostileRequests(t *testing.T) {
	e := newHostileEnv(t)
	x := e.x
	up := "/v2/library/app/blobs/uploads/" + x.upload
	mt := map[string]string{"Content-Type": registry.MediaTypeOCIManifest}
	hex64 := strings.Repeat("0", 64)
	big := bytes.Repeat([]byte("x"), testMaxChunk+1)
	layers := make([]string, 0, 20000)
	for i := 0; i < cap(layers); i++ {
		layers = append(layers, `{"mediaType":"x","digest":"sha256:`+hex64+`","size":1}`)
	}
	type tc struct {
		name    string
		method  string
		target  string
		body    []byte
		h       map[string]string
		chunked bool
		status  int
		code    string // "" for no OCI body (HEAD, or a response net/http writes)
	}
	cases := []tc{
		// Path traversal, encoded and not.
		{"dotdot encoded slash", "GET", "/v2/..%2f..%2fetc/manifests/v1", nil, nil, false, 400, "NAME_INVALID"},
		{"dotdot encoded dots", "GET", "/v2/%2e%2e/%2e%2e/etc/manifests/v1", nil, nil, false, 400, "NAME_INVALID"},
		{"dotdot plain", "GET", "/v2/library/../../etc/manifests/v1", nil, nil, false, 400, "NAME_INVALID"},
		{"dotdot in blob push", "POST", "/v2/..%2f..%2ftmp/blobs/uploads/", nil, nil, false, 400, "NAME_INVALID"},
		{"dotdot as tag", "PUT", "/v2/library/app/manifests/..", x.manifest, mt, false, 400, "TAG_INVALID"},
		{"dotdot tag encoded", "PUT", "/v2/library/app/manifests/..%2f..%2f..%2fblobs", x.manifest, mt, false, 404, "UNSUPPORTED"},
		{"dotdot digest", "GET", "/v2/library/app/blobs/sha256:..%2f..%2f" + hex64[:58], nil, nil, false, 404, "UNSUPPORTED"},
		{"dotdot digest hex", "GET", "/v2/library/app/blobs/sha256:.." + hex64[:62], nil, nil, false, 400, "DIGEST_INVALID"},
		{"dotdot upload id", "PATCH", "/v2/library/app/blobs/uploads/..", []byte("x"), nil, false, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"dotdot upload id encoded", "PUT", "/v2/library/app/blobs/uploads/..%2f..%2f..%2fblobs?digest=" + x.layerD, nil, nil, false, 404, "UNSUPPORTED"},
		{"encoded slash in name", "GET", "/v2/library%2fapp/tags/list", nil, nil, false, 200, ""},
		{"absolute name", "GET", "/v2//etc/passwd/manifests/v1", nil, nil, false, 400, "NAME_INVALID"},
		{"backslash name", "GET", "/v2/library%5c..%5capp/manifests/v1", nil, nil, false, 400, "NAME_INVALID"},
		{"upper-case name", "POST", "/v2/Library/App/blobs/uploads/", nil, nil, false, 400, "NAME_INVALID"},
		{"reserved component", "POST", "/v2/library/_uploads/blobs/uploads/", nil, nil, false, 400, "NAME_INVALID"},
		{"mount from traversal", "POST", "/v2/library/app/blobs/uploads/?mount=" + x.layerD + "&from=..%2f..%2fx", nil, nil, false, 400, "NAME_INVALID"},
		// NUL and control bytes.
		{"NUL in name", "GET", "/v2/library%00/app/manifests/v1", nil, nil, false, 400, "NAME_INVALID"},
		{"NUL in tag get", "GET", "/v2/library/app/manifests/v1%00", nil, nil, false, 404, "MANIFEST_UNKNOWN"},
		{"NUL in tag put", "PUT", "/v2/library/app/manifests/v1%00x", x.manifest, mt, false, 400, "TAG_INVALID"},
		{"NUL in digest", "GET", "/v2/library/app/blobs/sha256:%00" + hex64[:63], nil, nil, false, 400, "DIGEST_INVALID"},
		{"NUL in upload id", "GET", up + "%00", nil, nil, false, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"newline in tag", "PUT", "/v2/library/app/manifests/v1%0d%0aX-Evil", x.manifest, mt, false, 400, "TAG_INVALID"},
		// Overlong identifiers.
		{"overlong name", "GET", "/v2/" + strings.Repeat("a", 256) + "/tags/list", nil, nil, false, 400, "NAME_INVALID"},
		{"overlong nested name", "POST", "/v2/" + strings.Repeat("a/", 200) + "b/blobs/uploads/", nil, nil, false, 400, "NAME_INVALID"},
		{"overlong tag", "PUT", "/v2/library/app/manifests/" + strings.Repeat("t", 129), x.manifest, mt, false, 400, "TAG_INVALID"},
		{"overlong digest", "GET", "/v2/library/app/blobs/sha256:" + strings.Repeat("a", 65), nil, nil, false, 400, "DIGEST_INVALID"},
		{"overlong tag query", "PUT", "/v2/library/app/manifests/" + x.manifestD + "?tag=" + strings.Repeat("t", 200), x.manifest, mt, false, 400, "TAG_INVALID"},
		// Invalid digests.
		{"short digest", "GET", "/v2/library/app/blobs/sha256:abc", nil, nil, false, 400, "DIGEST_INVALID"},
		{"unknown algorithm", "HEAD", "/v2/library/app/blobs/md5:" + hex64[:32], nil, nil, false, 400, ""},
		{"upper-case hex", "DELETE", "/v2/library/app/blobs/sha256:" + strings.ToUpper(x.layerD[7:]), nil, nil, false, 400, "DIGEST_INVALID"},
		{"no algorithm", "GET", "/v2/library/app/blobs/" + hex64, nil, nil, false, 400, "DIGEST_INVALID"},
		{"bad digest on monolithic", "POST", "/v2/library/app/blobs/uploads/?digest=sha256:zz", []byte("data"), nil, false, 400, "DIGEST_INVALID"},
		{"bad digest on finish", "PUT", up + "?digest=sha256%3A" + hex64[:10], nil, nil, false, 400, "DIGEST_INVALID"},
		{"missing digest on finish", "PUT", up, nil, nil, false, 400, "DIGEST_INVALID"},
		{"wrong digest on finish", "PUT", up + "?digest=sha256:" + hex64, nil, nil, false, 400, "DIGEST_INVALID"},
		{"wrong digest on monolithic", "POST", "/v2/library/app/blobs/uploads/?digest=sha256:" + hex64, []byte("data"), nil, false, 400, "DIGEST_INVALID"},
		{"bad mount digest", "POST", "/v2/library/app/blobs/uploads/?mount=sha256:12&from=library/app", nil, nil, false, 400, "DIGEST_INVALID"},
		{"manifest digest mismatch", "PUT", "/v2/library/app/manifests/sha256:" + hex64, x.manifest, mt, false, 400, "DIGEST_INVALID"},
		{"bad referrers digest", "GET", "/v2/library/app/referrers/sha256:nothex", nil, nil, false, 400, "DIGEST_INVALID"},
		// Ranges: negative, reversed, overlapping, too many.
		{"negative content-range", "PATCH", up, []byte("abc"), map[string]string{"Content-Range": "-5-10"}, false, 416, "BLOB_UPLOAD_INVALID"},
		{"reversed content-range", "PATCH", up, []byte("abc"), map[string]string{"Content-Range": "7-5"}, false, 416, "BLOB_UPLOAD_INVALID"},
		{"overlapping content-range", "PATCH", up, []byte("abc"), map[string]string{"Content-Range": "3-5"}, false, 416, "BLOB_UPLOAD_INVALID"},
		{"gap content-range", "PATCH", up, []byte("abc"), map[string]string{"Content-Range": "6-8"}, false, 416, "BLOB_UPLOAD_INVALID"},
		{"overflowing content-range", "PATCH", up, []byte("abc"), map[string]string{"Content-Range": "5-99999999999999999999"}, false, 416, "BLOB_UPLOAD_INVALID"},
		{"garbage content-range", "PATCH", up, []byte("abc"), map[string]string{"Content-Range": "bytes=a-b"}, false, 416, "BLOB_UPLOAD_INVALID"},
		{"content-range on finish", "PUT", up + "?digest=" + x.layerD, []byte("abc"), map[string]string{"Content-Range": "0-2"}, false, 416, "BLOB_UPLOAD_INVALID"},
		{"negative range", "GET", "/v2/library/app/blobs/" + x.layerD, nil, map[string]string{"Range": "bytes=-5-10"}, false, 416, "UNSUPPORTED"},
		{"reversed range", "GET", "/v2/library/app/blobs/" + x.layerD, nil, map[string]string{"Range": "bytes=9-3"}, false, 416, "UNSUPPORTED"},
		{"signed range", "GET", "/v2/library/app/blobs/" + x.layerD, nil, map[string]string{"Range": "bytes=+1-3"}, false, 416, "UNSUPPORTED"},
		{"range past end", "GET", "/v2/library/app/blobs/" + x.layerD, nil, map[string]string{"Range": "bytes=1000-"}, false, 416, "UNSUPPORTED"},
		{"zero suffix range", "GET", "/v2/library/app/blobs/" + x.layerD, nil, map[string]string{"Range": "bytes=-0"}, false, 416, "UNSUPPORTED"},
		{"overlapping ranges", "GET", "/v2/library/app/blobs/" + x.layerD, nil, map[string]string{"Range": "bytes=0-5,3-8"}, false, 416, "UNSUPPORTED"},
		{"overlapping suffix", "GET", "/v2/library/app/blobs/" + x.layerD, nil, map[string]string{"Range": "bytes=0-,-3"}, false, 416, "UNSUPPORTED"},
		{"too many ranges", "GET", "/v2/library/app/blobs/" + x.layerD, nil, map[string]string{"Range": "bytes=" + strings.TrimSuffix(strings.Repeat("0-0,", 17), ",")}, false, 416, "UNSUPPORTED"},
		{"not bytes", "GET", "/v2/library/app/blobs/" + x.layerD, nil, map[string]string{"Range": "lines=1-2"}, false, 416, "UNSUPPORTED"},
		// JSON bombs and wrong manifests.
		{"deep nesting", "PUT", "/v2/library/app/manifests/bomb", manifestWith(`,"x":` + nest(100000)), mt, false, 400, "MANIFEST_INVALID"},
		{"deep objects", "PUT", "/v2/library/app/manifests/bomb", []byte(strings.Repeat(`{"a":`, 40000) + "1" + strings.Repeat("}", 40000)), mt, false, 400, "MANIFEST_INVALID"},
		{"huge array of bad descriptors", "PUT", "/v2/library/app/manifests/bomb", manifestWith(`,"manifests":[` + strings.Repeat(`{"digest":"x"},`, 10000) + `{}]`), map[string]string{"Content-Type": registry.MediaTypeOCIIndex}, false, 400, "MANIFEST_INVALID"},
		{"huge array of missing layers", "PUT", "/v2/library/app/manifests/bomb", bytes.Replace(manifestWith(""), []byte(`"layers":[]`), []byte(`"layers":[`+strings.Join(layers[:1500], ",")+`]`), 1), mt, false, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"huge array over the limit", "PUT", "/v2/library/app/manifests/bomb", []byte(`{"layers":[` + strings.Join(layers, ",") + `]}`), mt, false, 413, "SIZE_INVALID"},
		{"huge chunked manifest", "PUT", "/v2/library/app/manifests/bomb", bytes.Repeat([]byte(" "), testMaxManifest+1), mt, true, 413, "SIZE_INVALID"},
		{"trailing garbage", "PUT", "/v2/library/app/manifests/bomb", append(append([]byte{}, x.manifest...), []byte(`{}`)...), mt, false, 400, "MANIFEST_INVALID"},
		{"not JSON", "PUT", "/v2/library/app/manifests/bomb", []byte("\x00\xff\xfe"), mt, false, 400, "MANIFEST_INVALID"},
		{"empty manifest", "PUT", "/v2/library/app/manifests/bomb", nil, mt, false, 400, "MANIFEST_INVALID"},
		{"negative size", "PUT", "/v2/library/app/manifests/bomb", bytes.Replace(manifestWith(""), []byte(`"size":1`), []byte(`"size":-1`), 1), mt, false, 400, "MANIFEST_INVALID"},
		{"huge size", "PUT", "/v2/library/app/manifests/bomb", bytes.Replace(manifestWith(""), []byte(`"size":1`), []byte(`"size":1e400`), 1), mt, false, 400, "MANIFEST_INVALID"},
		{"wrong content-type", "PUT", "/v2/library/app/manifests/bomb", x.manifest, map[string]string{"Content-Type": "text/plain"}, false, 400, "MANIFEST_INVALID"},
		{"index content-type on a manifest", "PUT", "/v2/library/app/manifests/bomb", x.manifest, map[string]string{"Content-Type": registry.MediaTypeOCIIndex}, false, 400, "MANIFEST_INVALID"},
		{"garbage content-type", "PUT", "/v2/library/app/manifests/bomb", x.manifest, map[string]string{"Content-Type": ";;;="}, false, 400, "MANIFEST_INVALID"},
		{"schema 1", "PUT", "/v2/library/app/manifests/bomb", bytes.Replace(x.manifest, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":1`), 1), mt, false, 400, "MANIFEST_INVALID"},
		// Body limits: a chunk over the chunk limit is refused before it is stored.
		{"chunk over the limit", "PATCH", up, big, nil, false, 413, "SIZE_INVALID"},
		{"streamed chunk over the limit", "PATCH", up, big, nil, true, 413, "SIZE_INVALID"},
		{"announced chunk over the limit", "PATCH", up, []byte("abc"), map[string]string{"Content-Range": fmt.Sprintf("5-%d", 5+testMaxChunk)}, false, 413, "SIZE_INVALID"},
		{"monolithic over the limit", "POST", "/v2/library/app/blobs/uploads/?digest=" + digestOf(big), big, nil, false, 413, "SIZE_INVALID"},
		{"streamed monolithic over the limit", "POST", "/v2/library/app/blobs/uploads/?digest=" + digestOf(big), big, nil, true, 413, "SIZE_INVALID"},
		// Query parameters and methods.
		{"negative n", "GET", "/v2/library/app/tags/list?n=-1", nil, nil, false, 400, "UNSUPPORTED"},
		{"overflowing n", "GET", "/v2/_catalog?n=99999999999999999999999", nil, nil, false, 400, "UNSUPPORTED"},
		{"TRACE", "TRACE", "/v2/", nil, nil, false, 405, "UNSUPPORTED"},
		{"PUT on tags", "PUT", "/v2/library/app/tags/list", []byte("{}"), nil, false, 405, "UNSUPPORTED"},
		{"PATCH without session", "PATCH", "/v2/library/app/blobs/uploads/", []byte("x"), nil, false, 405, "UNSUPPORTED"},
		{"not /v2", "GET", "/v1/library/app/manifests/v1", nil, nil, false, 404, "UNSUPPORTED"},
		{"session of another repository", "PATCH", "/v2/other/repo/blobs/uploads/" + x.upload, []byte("x"), nil, false, 404, "BLOB_UPLOAD_UNKNOWN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := tree(t, e.root)
			st, _, body := e.raw(t, c.method, c.target, c.body, c.h, c.chunked)
			if st != c.status {
				t.Fatalf("%s %.120s: %d, want %d; %.300s", c.method, c.target, st, c.status, body)
			}
			if c.code != "" && errorCode(body) != c.code {
				t.Fatalf("%s %.120s: body %.300s, want code %s", c.method, c.target, body, c.code)
			}
			if d := diffTrees(before, tree(t, e.root)); d != "" {
				t.Fatalf("data directory changed:\n%s", d)
			}
		})
	}
	// The seeded session survived every refused chunk with its 5 bytes.
	if st, h, _ := e.raw(t, "GET", up, nil, nil, false); st != 204 || h.Get("Range") != "0-4" {
		t.Fatalf("upload session after the hostile requests: %d Range %q", st, h.Get("Range"))
	}
}

// TestBlobLimit fills an upload to the blob limit in chunks; the chunk
// that crosses it is refused with 413 and the whole session is dropped
// with its data, since it can never finish. Nothing reaches the blob store.
func TestBlobLimit(t *testing.T) {
	e := newHostileEnv(t)
	c := &client{t: t, base: e.url}
	st, h, _ := c.do("POST", "/v2/library/app/blobs/uploads/", nil, nil)
	if st != 202 {
		t.Fatal(st)
	}
	id := h.Get("Docker-Upload-UUID")
	loc := "/v2/library/app/blobs/uploads/" + id
	chunk := bytes.Repeat([]byte("y"), testMaxChunk)
	for i := 0; i < testMaxBlob/testMaxChunk; i++ {
		if st, _, b := c.do("PATCH", loc, chunk, nil); st != 202 {
			t.Fatalf("chunk %d: %d %s", i, st, b)
		}
	}
	blobs := tree(t, filepath.Join(e.root, "blobs"))
	st, _, b := c.do("PATCH", loc, []byte("z"), nil)
	if st != 413 || errorCode(b) != "SIZE_INVALID" {
		t.Fatalf("chunk past the blob limit: %d %s", st, b)
	}
	if _, err := os.Stat(filepath.Join(e.root, "uploads", id)); !os.IsNotExist(err) {
		t.Fatalf("session data left behind: %v", err)
	}
	if st, _, b := c.do("GET", loc, nil, nil); st != 404 || errorCode(b) != "BLOB_UPLOAD_UNKNOWN" {
		t.Fatalf("session after the limit: %d %s", st, b)
	}
	if d := diffTrees(blobs, tree(t, filepath.Join(e.root, "blobs"))); d != "" {
		t.Fatalf("blob store changed:\n%s", d)
	}
	// Exactly at the limit is fine.
	full := bytes.Repeat([]byte("w"), testMaxBlob)
	st, h, _ = c.do("POST", "/v2/library/app/blobs/uploads/", nil, nil)
	loc = h.Get("Location")
	for off := 0; off < len(full); off += testMaxChunk {
		if st, _, b := c.do("PATCH", loc, full[off:off+testMaxChunk], nil); st != 202 {
			t.Fatalf("%d %s", st, b)
		}
	}
	if st, _, b := c.do("PUT", loc+"?digest="+digestOf(full), nil, nil); st != 201 {
		t.Fatalf("blob at the limit: %d %s", st, b)
	}
}
