//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const (
	bigBlobSize = 48<<20 + 12345 // tens of MiB, not a multiple of the chunk size
	chunkSize   = 4 << 20
)

// TestBigBlobChunkedRegctl pushes a big blob with regctl in 4 MiB chunks
// (POST, PATCH×N, PUT) and reads it back byte-identical with regctl, crane
// and a ranged HTTP read.
func TestBigBlobChunkedRegctl(t *testing.T) {
	s := newSession(t)
	repo := repoName("bigblob")
	data := randomBytes(bigBlobSize)
	want := sha256Digest(data)

	// Without --digest regctl does not know the digest up front, so it
	// always uploads in chunks of --blob-chunk bytes.
	s.regctlSetup("--blob-chunk", strconv.Itoa(chunkSize))
	res := s.exec(bytes.NewReader(data), "regctl", "-v", "trace", "blob", "put", ref(repo, ""))
	if res.Err != nil {
		t.Fatalf("regctl blob put: %v\n%s", res.Err, tail(res.Combined(), 30))
	}
	if got := firstLine(res.Stdout); got != want {
		t.Fatalf("regctl blob put printed %s, want %s", got, want)
	}

	// The trace shows each request: the PATCH ranges must tile the blob.
	patch := regexp.MustCompile(`req-method=PATCH .*Content-Range:\[(\d+)-(\d+)\].*resp-status="(\d+)`)
	next, n := int64(0), 0
	for _, l := range strings.Split(res.Stderr, "\n") {
		m := patch.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n++
		start, _ := strconv.ParseInt(m[1], 10, 64)
		end, _ := strconv.ParseInt(m[2], 10, 64)
		if start != next || m[3] != "202" {
			t.Errorf("chunk %d: Content-Range %d-%d answered %s, want a range starting at %d answered 202", n, start, end, m[3], next)
		}
		next = end + 1
	}
	if n < 2 || next != bigBlobSize {
		t.Fatalf("regctl sent %d PATCH chunks covering %d bytes, want several covering %d", n, next, bigBlobSize)
	}
	t.Logf("regctl uploaded %d bytes in %d chunks", next, n)
	if !regexp.MustCompile(`req-method=PUT .*resp-status="201`).MatchString(res.Stderr) {
		t.Errorf("no closing PUT answered 201 in regctl's trace")
	}

	checkBlob(s, repo, want, data)
	got := []byte(s.regctl("blob", "get", ref(repo, ""), want))
	if !bytes.Equal(got, data) {
		t.Errorf("regctl blob get: %d bytes hashing to %s, want the %d pushed", len(got), sha256Digest(got), len(data))
	}
}

// checkBlob reads blob dgst of repo back with crane and with HTTP (whole and
// ranged) and compares it to data.
func checkBlob(s *session, repo, dgst string, data []byte) {
	s.t.Helper()
	got := []byte(s.crane("blob", ref(repo, "@"+dgst)))
	if !bytes.Equal(got, data) {
		s.t.Errorf("crane blob: %d bytes hashing to %s, want the %d pushed (%s)", len(got), sha256Digest(got), len(data), dgst)
	}
	h := s.http("HEAD", "/v2/"+repo+"/blobs/"+dgst, nil, nil)
	if h.Status != http.StatusOK || h.Header.Get("Content-Length") != strconv.Itoa(len(data)) || h.Header.Get("Docker-Content-Digest") != dgst {
		s.t.Errorf("HEAD blob: status %d Content-Length %q Docker-Content-Digest %q, want 200 %d %s",
			h.Status, h.Header.Get("Content-Length"), h.Header.Get("Docker-Content-Digest"), len(data), dgst)
	}
	start, end := len(data)/2-1000, len(data)/2+999
	r := s.http("GET", "/v2/"+repo+"/blobs/"+dgst, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", start, end)}, nil)
	if r.Status != http.StatusPartialContent || !bytes.Equal(r.Body, data[start:end+1]) {
		s.t.Errorf("ranged GET bytes=%d-%d: status %d, %d bytes, equal=%v; want 206 and the %d bytes", start, end, r.Status, len(r.Body), bytes.Equal(r.Body, data[start:end+1]), end-start+1)
	}
}

// TestBigBlobChunkedRawHTTP is the same upload done by hand, to pin down the
// protocol regctl relies on: POST, PATCH×N with Content-Range (each answered
// 202 with the Range received so far), a status GET midway, and the closing
// PUT carrying the last chunk.
func TestBigBlobChunkedRawHTTP(t *testing.T) {
	s := newSession(t)
	repo := repoName("bigblob-raw")
	data := randomBytes(bigBlobSize)
	dgst := sha256Digest(data)

	r := s.http("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if r.Status != http.StatusAccepted || r.Header.Get("Location") == "" {
		t.Fatalf("POST upload: status %d Location %q, want 202 and a Location", r.Status, r.Header.Get("Location"))
	}
	loc := resolve(registryAddr, r.Header.Get("Location"))

	// All chunks but the last with PATCH; the last goes with the PUT.
	var off int
	for off+chunkSize < len(data) {
		end := off + chunkSize
		r = s.http("PATCH", loc, map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", off, end-1),
		}, data[off:end])
		if r.Status != http.StatusAccepted {
			t.Fatalf("PATCH %d-%d: status %d, want 202: %s", off, end-1, r.Status, tail(string(r.Body), 5))
		}
		if got := r.Header.Get("Range"); got != fmt.Sprintf("0-%d", end-1) {
			t.Errorf("PATCH %d-%d: Range %q, want %q", off, end-1, got, fmt.Sprintf("0-%d", end-1))
		}
		if l := r.Header.Get("Location"); l != "" {
			loc = resolve(registryAddr, l)
		}
		off = end
		if off == 5*chunkSize {
			st := s.http("GET", loc, nil, nil)
			if st.Status != http.StatusNoContent || st.Header.Get("Range") != fmt.Sprintf("0-%d", off-1) {
				t.Errorf("upload status midway: status %d Range %q, want 204 %q", st.Status, st.Header.Get("Range"), fmt.Sprintf("0-%d", off-1))
			}
		}
	}
	// A chunk that does not start where the upload stands is refused.
	r = s.http("PATCH", loc, map[string]string{
		"Content-Type":  "application/octet-stream",
		"Content-Range": fmt.Sprintf("%d-%d", off+10, off+19),
	}, data[off+10:off+20])
	if r.Status != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("out-of-order PATCH: status %d, want 416", r.Status)
	}
	if l := r.Header.Get("Location"); l != "" && r.Status == http.StatusAccepted {
		loc = resolve(registryAddr, l)
	}

	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	r = s.http("PUT", loc+sep+"digest="+dgst, map[string]string{"Content-Type": "application/octet-stream"}, data[off:])
	if r.Status != http.StatusCreated {
		t.Fatalf("closing PUT: status %d, want 201: %s", r.Status, tail(string(r.Body), 5))
	}
	if got := r.Header.Get("Docker-Content-Digest"); got != dgst {
		t.Errorf("closing PUT: Docker-Content-Digest %q, want %q", got, dgst)
	}
	checkBlob(s, repo, dgst, data)
}

// resolve makes an upload Location absolute.
func resolve(addr, loc string) string {
	if strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://") {
		return loc
	}
	return "http://" + addr + loc
}
