package api

import (
	"math"
	"net/http"
	"net/url"
	"sort"
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
	// end == MaxInt64 would overflow the length (found by fuzzing).
	if !ok || err1 != nil || err2 != nil || start < 0 || end < start || end == math.MaxInt64 {
		return 0, 0, ocierr.New(ocierr.BlobUploadInvalid, http.StatusRequestedRangeNotSatisfiable, "invalid Content-Range %q", h)
	}
	return start, end - start + 1, nil
}

// maxRanges bounds the ranges one blob GET may ask for: many small or
// overlapping ranges make a small request cost a large response.
const maxRanges = 16

// checkRange validates a blob GET's Range header against size so that a bad
// one gets the spec's JSON 416; a valid one is served by http.ServeContent.
// Besides malformed and unsatisfiable ranges it refuses more than maxRanges
// ranges and ranges that overlap.
func checkRange(h string, size int64) error {
	if h == "" {
		return nil
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	bad := ocierr.New(ocierr.Unsupported, http.StatusRequestedRangeNotSatisfiable, "invalid or unsatisfiable Range %q", h)
	if !ok {
		return bad
	}
	parts := strings.Split(spec, ",")
	if len(parts) > maxRanges {
		return bad
	}
	type span struct{ start, end int64 }
	spans := make([]span, 0, len(parts))
	for _, part := range parts {
		// Only spaces and tabs, as net/http trims: a range it would refuse
		// must not pass here.
		a, b, ok := strings.Cut(strings.Trim(part, " \t"), "-")
		if !ok {
			return bad
		}
		if a == "" { // suffix range: the last b bytes
			n, ok := parseDecimal(b)
			if !ok || n <= 0 || size == 0 {
				return bad
			}
			spans = append(spans, span{max(size-n, 0), size - 1})
			continue
		}
		start, ok := parseDecimal(a)
		if !ok || start >= size {
			return bad
		}
		end := size - 1
		if b != "" {
			e, ok := parseDecimal(b)
			if !ok || e < start {
				return bad
			}
			end = min(e, size-1)
		}
		spans = append(spans, span{start, end})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start <= spans[i-1].end {
			return bad
		}
	}
	return nil
}

// parseDecimal parses a non-negative decimal without sign, as HTTP ranges
// are written.
func parseDecimal(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
