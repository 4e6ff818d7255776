//go:build replicas

package replicas

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestChunkedUploadAcrossReplicas sends each request of one chunked
// upload to another replica than the one before: the POST to r1, the
// PATCHes to r2, r3, r1, ..., a status GET after each PATCH to yet
// another, a PATCH that repeats an offset already written (416, nothing
// changed), and the closing PUT to the next. Every replica must see the
// session as the last request left it, at once; the running sha256 must
// be in the bucket after each PATCH (so that the next replica resumes it
// rather than hashing the upload again from the start); and the blob must
// be served whole by every replica, the session gone from all of them.
func TestChunkedUploadAcrossReplicas(t *testing.T) {
	c := newClient()
	bases := cl.bases()
	n := len(bases)
	rng := rand.New(rand.NewPCG(12, 1))
	repo := repoName("chunked")
	var chunks [][]byte
	for range 3 * n {
		chunks = append(chunks, randomBytes(rng, 64<<10+rng.IntN(256<<10)))
	}
	blob := bytes.Join(chunks, nil)
	d := digestOf(blob)
	store := openStore(t)

	r, err := c.expect(http.StatusAccepted, http.MethodPost, bases[0]+"/v2/"+repo+"/blobs/uploads/", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	loc := r.header.Get("Location")
	id := r.header.Get("Docker-Upload-UUID")
	if id == "" || !strings.HasSuffix(loc, "/"+id) {
		t.Fatalf("POST on %s: Location %q and Docker-Upload-UUID %q do not name one session", cl.replicas[0].name, loc, id)
	}
	var size int
	for i, chunk := range chunks[:len(chunks)-1] {
		on, then := cl.replicas[(i+1)%n], cl.replicas[(i+2)%n]
		u, err := location(on.base(), loc, "")
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.expect(http.StatusAccepted, http.MethodPatch, u, map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", size, size+len(chunk)-1),
		}, chunk)
		if err != nil {
			t.Fatalf("chunk %d on %s: %v", i, on.name, err)
		}
		size += len(chunk)
		if got, want := r.header.Get("Range"), fmt.Sprintf("0-%d", size-1); got != want {
			t.Fatalf("chunk %d on %s: Range %q, want %q", i, on.name, got, want)
		}
		loc = r.header.Get("Location")
		// The next replica sees the new size at once.
		u, err = location(then.base(), loc, "")
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.expect(http.StatusNoContent, http.MethodGet, u, nil, nil)
		if err != nil {
			t.Fatalf("status after chunk %d, on %s: %v", i, then.name, err)
		}
		if got, want := st.header.Get("Range"), fmt.Sprintf("0-%d", size-1); got != want {
			t.Fatalf("status after chunk %d (written on %s), on %s: Range %q, want %q", i, on.name, then.name, got, want)
		}
		hashState := "uploads/" + strings.ReplaceAll(repo, "/", "~") + "/" + id + "/sha256/" + fmt.Sprintf("%020d", size)
		if _, err := store.Stat(context.Background(), hashState); err != nil {
			t.Fatalf("after chunk %d on %s, the running sha256 after byte %d is not in the bucket (%s): %v", i, on.name, size, hashState, err)
		}
		if i == 1 {
			// A retried chunk (an offset already written) on yet another
			// replica: refused, and the session is as it was.
			again, err := location(cl.replicas[i%n].base(), loc, "")
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.expect(http.StatusRequestedRangeNotSatisfiable, http.MethodPatch, again, map[string]string{
				"Content-Type":  "application/octet-stream",
				"Content-Range": fmt.Sprintf("%d-%d", size-len(chunk), size-1),
			}, chunk)
			if err != nil {
				t.Fatalf("a chunk repeated on %s: %v", cl.replicas[i%n].name, err)
			}
			st, err := c.expect(http.StatusNoContent, http.MethodGet, u, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := st.header.Get("Range"), "0-"+strconv.Itoa(size-1); got != want {
				t.Fatalf("after a refused chunk, Range %q, want %q", got, want)
			}
		}
	}
	last := cl.replicas[len(chunks)%n]
	u, err := location(last.base(), loc, d)
	if err != nil {
		t.Fatal(err)
	}
	r, err = c.expect(http.StatusCreated, http.MethodPut, u, map[string]string{"Content-Type": "application/octet-stream"}, chunks[len(chunks)-1])
	if err != nil {
		t.Fatalf("closing PUT on %s: %v", last.name, err)
	}
	if got := r.header.Get("Docker-Content-Digest"); got != d {
		t.Fatalf("closing PUT on %s: Docker-Content-Digest %q, want %s", last.name, got, d)
	}
	for _, rep := range cl.replicas {
		r, err := c.expect(http.StatusOK, http.MethodGet, rep.base()+"/v2/"+repo+"/blobs/"+d, nil, nil)
		if err != nil {
			t.Fatalf("blob on %s: %v", rep.name, err)
		}
		if !bytes.Equal(r.body, blob) {
			t.Fatalf("blob on %s: %d bytes that differ from the %d uploaded", rep.name, len(r.body), len(blob))
		}
		u, err := location(rep.base(), loc, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.expect(http.StatusNotFound, http.MethodGet, u, nil, nil); err != nil {
			t.Fatalf("the finished session on %s: %v", rep.name, err)
		}
	}
	t.Logf("%d chunks (%d bytes) over %d replicas, blob %s served by all", len(chunks), len(blob), n, d)
}
