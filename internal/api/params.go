package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
)

func digestParam(s string) (reference.Digest, error) {
	d, err := reference.ParseDigest(s)
	if err != nil {
		return "", ocierr.New(ocierr.DigestInvalid, http.StatusBadRequest, "invalid digest").WithDetail(err.Error())
	}
	return d, nil
}

// pageParams reads the n and last pagination parameters; n < 0 means all.
func pageParams(q url.Values) (int, string, error) {
	n := -1
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return 0, "", ocierr.New(ocierr.Unsupported, http.StatusBadRequest, "n must be a non-negative integer")
		}
		n = v
	}
	return n, q.Get("last"), nil
}

// setNextLink adds the RFC 5988 Link header pointing at the next page.
func setNextLink(w http.ResponseWriter, path string, n int, last string) {
	q := url.Values{"n": {strconv.Itoa(n)}, "last": {last}}
	w.Header().Set("Link", "<"+path+"?"+q.Encode()+`>; rel="next"`)
}

// parseContentRange reads an upload chunk's "start-end" Content-Range
// (also accepting a "bytes " prefix and "/total" suffix that some clients
// send). It returns start and length, or start -1 when the header is absent.
func parseContentRange(h string) (int64, int64, error) {
	if h == "" {
		return -1, -1, nil
	}
	s := strings.TrimPrefix(strings.TrimPrefix(h, "bytes"), "=")
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	a, b, ok := strings.Cut(s, "-")
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, ocierr.New(ocierr.BlobUploadInvalid, http.StatusRequestedRangeNotSatisfiable, "invalid Content-Range %q", h)
	}
	return start, end - start + 1, nil
}

// checkRange validates a blob GET's Range header against size so that a bad
// one gets the spec's JSON 416; a valid one is served by http.ServeContent.
func checkRange(h string, size int64) error {
	if h == "" {
		return nil
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	bad := ocierr.New(ocierr.Unsupported, http.StatusRequestedRangeNotSatisfiable, "invalid or unsatisfiable Range %q", h)
	if !ok {
		return bad
	}
	for _, part := range strings.Split(spec, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			return bad
		}
		if a == "" { // suffix range: the last b bytes
			n, err := strconv.ParseInt(b, 10, 64)
			if err != nil || n <= 0 || size == 0 {
				return bad
			}
			continue
		}
		start, err := strconv.ParseInt(a, 10, 64)
		if err != nil || start < 0 || start >= size {
			return bad
		}
		if b != "" {
			end, err := strconv.ParseInt(b, 10, 64)
			if err != nil || end < start {
				return bad
			}
		}
	}
	return nil
}
