package api

import (
	"bytes"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/reference"
)

// Run with: go test -fuzz=FuzzParseRoute ./internal/api (see make fuzz).

func FuzzParseRoute(f *testing.F) {
	d := "sha256:" + strings.Repeat("a", 64)
	for _, s := range []string{
		"/v2/", "/v2", "/v2/_catalog", "/v2/a/b/manifests/latest", "/v2/a/blobs/" + d,
		"/v2/a/blobs/uploads/", "/v2/a/blobs/uploads", "/v2/a/blobs/uploads/x-y", "/v2/a/tags/list",
		"/v2/a/referrers/" + d, "/v2/blobs/blobs/blobs", "/v2/manifests/manifests/manifests",
		"/v2/a/blobs/uploads/blobs/uploads/", "/v2/../../etc/manifests/x", "/v2//a/tags/list",
		"/v2/a\x00/tags/list", "/v3/a/tags/list", "/v2/_catalog/x", "/v2/a/_manifests/tags/list",
		"/v2/" + strings.Repeat("a/", 200) + "tags/list", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, err := ParseRoute(p)
		if err != nil {
			return
		}
		switch rt.Kind {
		case KindBase, KindCatalog:
			if rt.Name != "" || rt.Ref != "" {
				t.Fatalf("%q: %+v", p, rt)
			}
			return
		}
		if err := reference.ValidateName(rt.Name); err != nil {
			t.Fatalf("%q: invalid name accepted: %+v", p, rt)
		}
		if strings.Contains(rt.Ref, "/") {
			t.Fatalf("%q: reference with a slash: %+v", p, rt)
		}
		if !strings.HasPrefix(p, "/v2/"+rt.Name+"/") {
			t.Fatalf("%q: name %q is not the path's prefix", p, rt.Name)
		}
		if rt.Kind != KindUpload && rt.Kind != KindTags && rt.Ref == "" {
			t.Fatalf("%q: empty reference: %+v", p, rt)
		}
		// The route maps back onto the path it came from.
		var back string
		switch rt.Kind {
		case KindBlob:
			back = "/v2/" + rt.Name + "/blobs/" + rt.Ref
		case KindUpload:
			back = "/v2/" + rt.Name + "/blobs/uploads/" + rt.Ref
		case KindManifest:
			back = "/v2/" + rt.Name + "/manifests/" + rt.Ref
		case KindTags:
			back = "/v2/" + rt.Name + "/tags/list"
		case KindReferrers:
			back = "/v2/" + rt.Name + "/referrers/" + rt.Ref
		}
		if back != p && back != p+"/" {
			t.Fatalf("%q parsed as %+v, which is %q", p, rt, back)
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"", "0-0", "0-99", "bytes 0-99/100", "bytes=5-10", "5-4", "-1-5", "a-b",
		"0-9223372036854775807", "9223372036854775807-9223372036854775807", "1-", "-", "0--1", " 1-2 ", "bytes */100"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		start, length, err := parseContentRange(h)
		if err != nil {
			return
		}
		if h == "" {
			if start != -1 {
				t.Fatalf("absent header gave start %d", start)
			}
			return
		}
		if start < 0 || length < 1 || start > math.MaxInt64-length {
			t.Fatalf("%q: start %d length %d", h, start, length)
		}
	})
}

func FuzzCheckRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=0-", "bytes=-5", "bytes=5-1", "bytes=0-1,2-3", "bytes=0-5,3-8",
		"bytes=-0", "bytes=99-", "bytes=+1-2", "bytes= 1-2 , 4-5", "lines=1-2", "bytes=", "bytes=,", "bytes=1-2,"} {
		f.Add(s, int64(10))
	}
	f.Add("bytes=0-0", int64(0))
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 || size > 1<<16 {
			return
		}
		if checkRange(h, size) != nil || h == "" {
			return
		}
		if strings.Count(h, ",") >= maxRanges {
			t.Fatalf("%q: more than %d ranges accepted", h, maxRanges)
		}
		// A range checkRange accepts is one http.ServeContent serves.
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Range", h)
		w := httptest.NewRecorder()
		http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(make([]byte, size)))
		if w.Code != http.StatusPartialContent && w.Code != http.StatusOK {
			t.Fatalf("Range %q on %d bytes accepted, but ServeContent says %d", h, size, w.Code)
		}
		if w.Code == http.StatusPartialContent && w.Header().Get("Content-Range") != "" {
			cr := w.Header().Get("Content-Range")
			if !strings.HasSuffix(cr, "/"+strconv.FormatInt(size, 10)) {
				t.Fatalf("Content-Range %q", cr)
			}
		}
	})
}
