package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/memory"
)

func TestBase(t *testing.T) {
	e := newEnv(t, registry.Options{})
	resp, body := e.do("GET", "/v2/", nil, nil)
	e.expect(resp, body, http.StatusOK, "")
	if v := resp.Header.Get("Docker-Distribution-API-Version"); v != "registry/2.0" {
		t.Fatalf("API version header %q", v)
	}
}

func TestBlobGetHeadDelete(t *testing.T) {
	e := newEnv(t, registry.Options{})
	data := []byte("0123456789abcdef")
	d := e.pushBlob("a/b", data)

	resp, body := e.do("GET", "/v2/a/b/blobs/"+d, nil, nil)
	e.expect(resp, body, http.StatusOK, "")
	if string(body) != string(data) || resp.Header.Get("Docker-Content-Digest") != d {
		t.Fatalf("GET blob: %q digest %q", body, resp.Header.Get("Docker-Content-Digest"))
	}
	resp, body = e.do("HEAD", "/v2/a/b/blobs/"+d, nil, nil)
	e.expect(resp, body, http.StatusOK, "")
	if resp.Header.Get("Content-Length") != "16" || len(body) != 0 {
		t.Fatalf("HEAD blob: Content-Length %q body %q", resp.Header.Get("Content-Length"), body)
	}

	ranges := []struct {
		rng    string
		status int
		want   string
	}{
		{"bytes=0-3", http.StatusPartialContent, "0123"},
		{"bytes=10-", http.StatusPartialContent, "abcdef"},
		{"bytes=-2", http.StatusPartialContent, "ef"},
		{"bytes=14-100", http.StatusPartialContent, "ef"},
		{"bytes=16-20", http.StatusRequestedRangeNotSatisfiable, ""},
		{"bytes=5-2", http.StatusRequestedRangeNotSatisfiable, ""},
		{"bytes=-1-2", http.StatusRequestedRangeNotSatisfiable, ""},
		{"items=0-1", http.StatusRequestedRangeNotSatisfiable, ""},
	}
	for _, tc := range ranges {
		resp, body := e.do("GET", "/v2/a/b/blobs/"+d, nil, hdr{"Range": tc.rng})
		if resp.StatusCode != tc.status || (tc.want != "" && string(body) != tc.want) {
			t.Errorf("Range %s: %d %q, want %d %q", tc.rng, resp.StatusCode, body, tc.status, tc.want)
		}
	}

	other := digestOf([]byte("not pushed"))
	resp, body = e.do("GET", "/v2/a/b/blobs/"+other, nil, nil)
	e.expect(resp, body, http.StatusNotFound, "BLOB_UNKNOWN")
	resp, body = e.do("GET", "/v2/other/repo/blobs/"+d, nil, nil)
	e.expect(resp, body, http.StatusNotFound, "BLOB_UNKNOWN")
	resp, body = e.do("GET", "/v2/a/b/blobs/sha256:xyz", nil, nil)
	e.expect(resp, body, http.StatusBadRequest, "DIGEST_INVALID")

	resp, body = e.do("DELETE", "/v2/a/b/blobs/"+d, nil, nil)
	e.expect(resp, body, http.StatusAccepted, "")
	resp, body = e.do("HEAD", "/v2/a/b/blobs/"+d, nil, nil)
	e.expect(resp, body, http.StatusNotFound, "")
	resp, body = e.do("DELETE", "/v2/a/b/blobs/"+d, nil, nil)
	e.expect(resp, body, http.StatusNotFound, "BLOB_UNKNOWN")
}

func TestEmptyBlob(t *testing.T) {
	e := newEnv(t, registry.Options{})
	d := e.pushBlob("a", []byte{})
	resp, body := e.do("HEAD", "/v2/a/blobs/"+d, nil, nil)
	e.expect(resp, body, http.StatusOK, "")
	if resp.Header.Get("Content-Length") != "0" {
		t.Fatalf("Content-Length %q", resp.Header.Get("Content-Length"))
	}
}

func TestUploadChunked(t *testing.T) {
	e := newEnv(t, registry.Options{})
	data := []byte("hello, chunked world")
	d := digestOf(data)

	resp, body := e.do("POST", "/v2/r/blobs/uploads/", nil, nil)
	e.expect(resp, body, http.StatusAccepted, "")
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/v2/r/blobs/uploads/") || resp.Header.Get("Range") != "0-0" {
		t.Fatalf("POST: Location %q Range %q", loc, resp.Header.Get("Range"))
	}

	resp, body = e.do("PATCH", loc, data[:5], hdr{"Content-Range": "0-4", "Content-Type": "application/octet-stream"})
	e.expect(resp, body, http.StatusAccepted, "")
	if resp.Header.Get("Range") != "0-4" {
		t.Fatalf("PATCH Range %q", resp.Header.Get("Range"))
	}
	// Out of order: refused, and the session stays usable.
	resp, body = e.do("PATCH", loc, data[10:], hdr{"Content-Range": "10-19"})
	e.expect(resp, body, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
	resp, body = e.do("GET", loc, nil, nil)
	e.expect(resp, body, http.StatusNoContent, "")
	if resp.Header.Get("Range") != "0-4" || resp.Header.Get("Location") != loc {
		t.Fatalf("status: Range %q Location %q", resp.Header.Get("Range"), resp.Header.Get("Location"))
	}
	// Streamed chunk without Content-Range.
	resp, body = e.do("PATCH", loc, data[5:10], nil)
	e.expect(resp, body, http.StatusAccepted, "")
	// Wrong digest: refused, nothing stored.
	resp, body = e.do("PUT", loc+"?digest="+digestOf([]byte("else")), data[10:], hdr{"Content-Range": "10-19"})
	e.expect(resp, body, http.StatusBadRequest, "DIGEST_INVALID")
	resp, body = e.do("HEAD", "/v2/r/blobs/"+digestOf([]byte("else")), nil, nil)
	e.expect(resp, body, http.StatusNotFound, "")
	// The session still holds 20 bytes; finishing with the right digest works.
	resp, body = e.do("PUT", loc+"?digest="+d, nil, nil)
	e.expect(resp, body, http.StatusCreated, "")
	if resp.Header.Get("Location") != "/v2/r/blobs/"+d || resp.Header.Get("Docker-Content-Digest") != d {
		t.Fatalf("PUT: Location %q", resp.Header.Get("Location"))
	}
	resp, body = e.do("GET", "/v2/r/blobs/"+d, nil, nil)
	e.expect(resp, body, http.StatusOK, "")
	if string(body) != string(data) {
		t.Fatalf("stored %q", body)
	}
	// The finished session is gone.
	resp, body = e.do("GET", loc, nil, nil)
	e.expect(resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
}

func TestUploadPostPutAndCancel(t *testing.T) {
	e := newEnv(t, registry.Options{})
	data := []byte("post then put")
	resp, body := e.do("POST", "/v2/r/blobs/uploads/", nil, nil)
	e.expect(resp, body, http.StatusAccepted, "")
	loc := resp.Header.Get("Location")
	resp, body = e.do("PUT", loc+"?digest="+digestOf(data), data, nil)
	e.expect(resp, body, http.StatusCreated, "")

	resp, body = e.do("POST", "/v2/r/blobs/uploads/", nil, nil)
	e.expect(resp, body, http.StatusAccepted, "")
	loc = resp.Header.Get("Location")
	resp, body = e.do("PATCH", loc, []byte("abc"), nil)
	e.expect(resp, body, http.StatusAccepted, "")
	resp, body = e.do("DELETE", loc, nil, nil)
	e.expect(resp, body, http.StatusNoContent, "")
	resp, body = e.do("PATCH", loc, []byte("abc"), nil)
	e.expect(resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	resp, body = e.do("PUT", loc+"?digest="+digestOf(data), nil, nil)
	e.expect(resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	resp, body = e.do("GET", "/v2/r/blobs/uploads/not-a-uuid", nil, nil)
	e.expect(resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
}

func TestUploadErrorsChangeNothing(t *testing.T) {
	e := newEnv(t, registry.Options{})
	e.pushBlob("r", []byte("existing"))
	before := e.snapshot()
	data := []byte("payload")
	cases := []struct {
		name, method, path string
		body               []byte
		h                  hdr
		status             int
		code               string
	}{
		{"digest mismatch", "POST", "/v2/r/blobs/uploads/?digest=" + digestOf([]byte("x")), data, nil, 400, "DIGEST_INVALID"},
		{"malformed digest", "POST", "/v2/r/blobs/uploads/?digest=sha256:abc", data, nil, 400, "DIGEST_INVALID"},
		{"unsupported algorithm", "POST", "/v2/r/blobs/uploads/?digest=md5:d41d8cd98f00b204e9800998ecf8427e", data, nil, 400, "DIGEST_INVALID"},
		{"bad mount digest", "POST", "/v2/r/blobs/uploads/?mount=nope&from=s", nil, nil, 400, "DIGEST_INVALID"},
		{"bad mount source", "POST", "/v2/r/blobs/uploads/?mount=" + digestOf(data) + "&from=UP", nil, nil, 400, "NAME_INVALID"},
		{"invalid name", "POST", "/v2/Bad/blobs/uploads/", nil, nil, 400, "NAME_INVALID"},
		{"dot-dot name", "GET", "/v2/a/../b/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"unknown session", "PATCH", "/v2/r/blobs/uploads/00000000-0000-4000-8000-000000000000", data, nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"method not allowed", "PUT", "/v2/r/blobs/" + digestOf(data), data, nil, 405, "UNSUPPORTED"},
		{"unknown endpoint", "GET", "/v2/r/whatever", nil, nil, 404, "UNSUPPORTED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			resp, body := e.do(tc.method, tc.path, tc.body, tc.h)
			e.expect(resp, body, tc.status, tc.code)
			if after := e.snapshot(); after != before {
				t.Fatalf("storage changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

func TestUploadBadContentRangeKeepsSession(t *testing.T) {
	e := newEnv(t, registry.Options{})
	resp, body := e.do("POST", "/v2/r/blobs/uploads/", nil, nil)
	e.expect(resp, body, http.StatusAccepted, "")
	loc := resp.Header.Get("Location")
	resp, body = e.do("PATCH", loc, []byte("abc"), hdr{"Content-Range": "garbage"})
	e.expect(resp, body, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
	resp, body = e.do("PATCH", loc, []byte("abc"), hdr{"Content-Range": "0-9"})
	e.expect(resp, body, http.StatusBadRequest, "SIZE_INVALID")
	resp, body = e.do("GET", loc, nil, nil)
	e.expect(resp, body, http.StatusNoContent, "")
	if resp.Header.Get("Range") != "0-0" {
		t.Fatalf("a refused chunk left data behind: Range %q", resp.Header.Get("Range"))
	}
}

func TestMount(t *testing.T) {
	e := newEnv(t, registry.Options{})
	data := []byte("shared layer")
	d := e.pushBlob("src", data)

	resp, body := e.do("POST", "/v2/dst/blobs/uploads/?mount="+d+"&from=src", nil, nil)
	e.expect(resp, body, http.StatusCreated, "")
	if resp.Header.Get("Location") != "/v2/dst/blobs/"+d {
		t.Fatalf("mount Location %q", resp.Header.Get("Location"))
	}
	resp, body = e.do("GET", "/v2/dst/blobs/"+d, nil, nil)
	e.expect(resp, body, http.StatusOK, "")

	missing := digestOf([]byte("missing"))
	resp, body = e.do("POST", "/v2/dst/blobs/uploads/?mount="+missing+"&from=src", nil, nil)
	e.expect(resp, body, http.StatusAccepted, "")
	if !strings.HasPrefix(resp.Header.Get("Location"), "/v2/dst/blobs/uploads/") {
		t.Fatalf("fallback Location %q", resp.Header.Get("Location"))
	}
	// Anonymous mount: any blob the registry holds.
	resp, body = e.do("POST", "/v2/third/blobs/uploads/?mount="+d, nil, nil)
	e.expect(resp, body, http.StatusCreated, "")
	// Mounting from a repository that lacks the blob does not leak it.
	resp, body = e.do("POST", "/v2/fourth/blobs/uploads/?mount="+d+"&from=empty", nil, nil)
	e.expect(resp, body, http.StatusAccepted, "")
}

// A mount without "from" mounts a blob the registry holds only while
// automatic mounting is on (uploads.automaticMount); off, it is answered
// with an upload session that then takes the blob, as the 2023 suite
// expects with OCI_AUTOMATIC_CROSSMOUNT=0. A mount with "from" works
// either way, also with a Permit installed (auth on).
func TestAutomaticMount(t *testing.T) {
	allowAll := api.WithPermit(func(context.Context, string, api.Access) bool { return true })
	for _, tc := range []struct {
		name string
		opts []api.Option
		want int // status of ?mount=<held blob> without from
	}{
		{"default", nil, http.StatusCreated},
		{"on", []api.Option{api.WithAutomaticMount(true)}, http.StatusCreated},
		{"off", []api.Option{api.WithAutomaticMount(false)}, http.StatusAccepted},
		{"on with a permit", []api.Option{allowAll, api.WithAutomaticMount(true)}, http.StatusCreated},
		{"off with a permit", []api.Option{allowAll, api.WithAutomaticMount(false)}, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, registry.Options{}, tc.opts...)
			data := []byte("layer the registry holds")
			d := e.pushBlob("src", data)

			resp, body := e.do("POST", "/v2/dst/blobs/uploads/?mount="+d, nil, nil)
			e.expect(resp, body, tc.want, "")
			if tc.want == http.StatusCreated {
				if loc := resp.Header.Get("Location"); loc != "/v2/dst/blobs/"+d {
					t.Fatalf("mount Location %q", loc)
				}
				resp, body = e.do("GET", "/v2/dst/blobs/"+d, nil, nil)
				e.expect(resp, body, http.StatusOK, "")
			} else {
				loc := resp.Header.Get("Location")
				if !strings.HasPrefix(loc, "/v2/dst/blobs/uploads/") || resp.Header.Get("Docker-Upload-UUID") == "" {
					t.Fatalf("202 without an upload session: Location %q", loc)
				}
				resp, body = e.do("HEAD", "/v2/dst/blobs/"+d, nil, nil)
				e.expect(resp, body, http.StatusNotFound, "")
				resp, body = e.do("PUT", loc+"?digest="+d, data, nil)
				e.expect(resp, body, http.StatusCreated, "")
			}
			// Named source: mounted whatever the setting.
			resp, body = e.do("POST", "/v2/other/blobs/uploads/?mount="+d+"&from=src", nil, nil)
			e.expect(resp, body, http.StatusCreated, "")
		})
	}
}

func TestSHA512Blob(t *testing.T) {
	e := newEnv(t, registry.Options{})
	data := []byte("sha512 content")
	d := "sha512:" + sha512Hex(data)
	resp, body := e.do("POST", "/v2/r/blobs/uploads/", nil, nil)
	e.expect(resp, body, http.StatusAccepted, "")
	resp, body = e.do("PATCH", resp.Header.Get("Location"), data, nil)
	e.expect(resp, body, http.StatusAccepted, "")
	resp, body = e.do("PUT", resp.Header.Get("Location")+"?digest="+d, nil, nil)
	e.expect(resp, body, http.StatusCreated, "")
	resp, body = e.do("GET", "/v2/r/blobs/"+d, nil, nil)
	e.expect(resp, body, http.StatusOK, "")
	if resp.Header.Get("Docker-Content-Digest") != d {
		t.Fatalf("digest header %q", resp.Header.Get("Docker-Content-Digest"))
	}
}

// The caller a Guard identified owns the sessions it starts: past
// uploads.maxPerUser they are refused with 429 for that user only.
func TestUploadCapPerCaller(t *testing.T) {
	d := memory.New()
	guard := api.WithGuard(func(w http.ResponseWriter, r *http.Request, rt api.Route) (*http.Request, bool) {
		return r.WithContext(api.WithCaller(r.Context(), r.Header.Get("X-Test-User"))), true
	})
	srv := httptest.NewServer(api.New(registry.New(d, registry.Options{MaxUploadsPerOwner: 1}), guard))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv}
	for _, tc := range []struct {
		user string
		want int
	}{{"alice", http.StatusAccepted}, {"alice", http.StatusTooManyRequests}, {"bob", http.StatusAccepted}} {
		resp, body := e.do("POST", "/v2/"+tc.user+"-repo/blobs/uploads/", nil, hdr{"X-Test-User": tc.user})
		if resp.StatusCode != tc.want {
			t.Fatalf("%s's session: %d %s, want %d", tc.user, resp.StatusCode, body, tc.want)
		}
	}
}

// presigning is a store that hands out URLs for its objects, as S3 with
// storage.s3.redirect does.
type presigning struct{ *memory.Driver }

func (presigning) RedirectURL(_ context.Context, p string) (string, error) {
	return "https://bucket.example/" + p + "?X-Amz-Signature=x", nil
}

// With a store that presigns, a blob GET answers 307 to the store, with
// the digest; HEAD is still answered here, and an unknown blob is 404.
func TestBlobRedirect(t *testing.T) {
	reg := registry.New(presigning{memory.New()}, registry.Options{})
	srv := httptest.NewServer(api.New(reg))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv}
	data := []byte("redirected layer")
	d := digestOf(data)
	resp, body := e.do("POST", "/v2/r/blobs/uploads/?digest="+d, data, nil)
	e.expect(resp, body, http.StatusCreated, "")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get, err := client.Get(srv.URL + "/v2/r/blobs/" + d)
	if err != nil {
		t.Fatal(err)
	}
	get.Body.Close()
	if get.StatusCode != http.StatusTemporaryRedirect || get.Header.Get("Docker-Content-Digest") != d ||
		!strings.HasPrefix(get.Header.Get("Location"), "https://bucket.example/blobs/sha256/") {
		t.Fatalf("GET: %d, Location %q, digest %q", get.StatusCode, get.Header.Get("Location"), get.Header.Get("Docker-Content-Digest"))
	}
	resp, body = e.do("HEAD", "/v2/r/blobs/"+d, nil, nil)
	e.expect(resp, body, http.StatusOK, "")
	if resp.Header.Get("Content-Length") != strconv.Itoa(len(data)) {
		t.Fatalf("HEAD Content-Length %q", resp.Header.Get("Content-Length"))
	}
	resp, body = e.do("GET", "/v2/other/blobs/"+d, nil, nil)
	e.expect(resp, body, http.StatusNotFound, "BLOB_UNKNOWN")
}
