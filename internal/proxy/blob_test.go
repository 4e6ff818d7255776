package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/proxy/upstreamtest"
)

// pushBlob puts a blob of size random bytes in the upstream's repository
// app and returns it with its digest.
func (r *rig) pushBlob(size int) ([]byte, string) {
	b := upstreamtest.RandomBytes(size)
	return b, r.up.Blob(r.t, "app", b)
}

// The client's first bytes of a blob arrive while the upstream still holds
// back the blob's last bytes: the cache streams, it does not download
// first. Were it to wait for the whole blob, the first byte would never
// come (the gate opens only after it).
func TestFirstBytesBeforeUpstreamFinishes(t *testing.T) {
	r := newRig(t, upstreamtest.Options{}, nil)
	data, d := r.pushBlob(16 << 20)
	gate := r.front.Gate(d, 1<<20)
	ctx, cancel := context.WithCancel(t.Context()) // on failure, the client goes away
	defer cancel()
	defer gate.Open()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL+"/v2/"+prefix+"/app/blobs/"+d, nil)
	if err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	first := make(chan error, 1)
	go func() {
		var err error
		if resp, err = http.DefaultClient.Do(req); err == nil {
			_, err = io.ReadFull(resp.Body, make([]byte, 1))
		}
		first <- err
	}()
	select {
	case err := <-first:
		if err != nil {
			t.Fatalf("reading the first byte: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("no byte reached the client while the upstream held back the blob's end: the cache waits for the whole blob")
	}
	defer resp.Body.Close()
	gate.Open()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(append(data[:1:1], rest...), data) {
		t.Fatalf("the blob arrived with %d bytes (%v), not as stored upstream", 1+len(rest), err)
	}
	waitFor(t, "the blob to be stored", func() bool {
		_, err := r.reg.StatBlob(t.Context(), prefix+"/app", mustDigest(t, d))
		return err == nil
	})
}

// Concurrent requests for one missing blob cause one upstream fetch: the
// first streams it, the others wait for the stored copy.
func TestConcurrentMissesFetchOnce(t *testing.T) {
	r := newRig(t, upstreamtest.Options{}, nil)
	data, d := r.pushBlob(4 << 20)
	gate := r.front.Gate(d, 4096)
	const clients = 8
	var wg sync.WaitGroup
	results := make([]response, clients)
	get := func(i int) {
		defer wg.Done()
		results[i] = r.do("GET", "/v2/"+prefix+"/app/blobs/"+d, nil, nil)
	}
	wg.Add(1)
	go get(0)
	<-gate.Reached() // the fetch runs and cannot finish
	for i := 1; i < clients; i++ {
		wg.Add(1)
		go get(i)
	}
	waitFor(t, "every client to join the fetch", func() bool { return r.px.Stats().BlobHits == clients-1 })
	gate.Open()
	wg.Wait()
	for i, res := range results {
		if res.status != http.StatusOK || res.err != nil || !bytes.Equal(res.body, data) {
			t.Errorf("client %d: status %d, %d bytes (%v)", i, res.status, len(res.body), res.err)
		}
	}
	if n := r.front.Count("blob", "GET"); n != 1 {
		t.Errorf("%d upstream GETs for one blob asked for by %d clients at once, want 1", n, clients)
	}
}

// A blob whose bytes do not match its digest is not kept, and the
// client's transfer fails instead of completing with the wrong bytes.
func TestDigestMismatchAbortsAndKeepsNothing(t *testing.T) {
	r := newRig(t, upstreamtest.Options{}, nil)
	data, d := r.pushBlob(1 << 20)
	r.front.Corrupt(d)
	res := r.do("GET", "/v2/"+prefix+"/app/blobs/"+d, nil, nil)
	if res.status != http.StatusOK || res.header.Get("Content-Length") != "1048576" {
		t.Fatalf("status %d, Content-Length %q: the stream should have started", res.status, res.header.Get("Content-Length"))
	}
	if res.err == nil || len(res.body) >= len(data) {
		t.Fatalf("the client's transfer completed (%d bytes, %v): it must be cut short, not finished with wrong bytes", len(res.body), res.err)
	}
	dg := mustDigest(t, d)
	waitFor(t, "the failed fetch to end", func() bool { return r.px.blobs.get(prefix+"/app@"+d) == nil })
	if ok, err := r.reg.BlobStored(t.Context(), dg); ok || err != nil {
		t.Errorf("a blob that did not verify was stored (%v)", err)
	}
	if got := r.px.Stats().UpstreamErrors[0]; got == 0 {
		t.Error("the corrupt blob was not counted as an upstream error")
	}
	// Uncorrupted, it is fetched and kept.
	r2 := newRig(t, upstreamtest.Options{}, nil)
	r2.up.Blob(t, "app", data)
	r2.get("/v2/"+prefix+"/app/blobs/"+d, data)
}

// A transfer the upstream cut short resumes with a Range request from the
// byte it reached.
func TestBrokenTransferResumes(t *testing.T) {
	r := newRig(t, upstreamtest.Options{}, nil)
	data, d := r.pushBlob(3 << 20)
	r.front.BreakOnce(d, 1<<20)
	r.get("/v2/"+prefix+"/app/blobs/"+d, data)
	gets := r.front.Requests(func(q upstreamtest.Request) bool {
		return q.Kind == "blob" && q.Method == "GET" && q.Status != http.StatusUnauthorized
	})
	if len(gets) != 2 || gets[0].Range != "" || gets[1].Range == "" {
		t.Fatalf("upstream blob GETs %+v; want a second one with a Range", gets)
	}
	if gets[1].Range != "bytes=1048576-" {
		t.Errorf("resumed with Range %q, want bytes=1048576-", gets[1].Range)
	}
}

// A HEAD of a missing blob asks the upstream for its size and fetches
// nothing; a blob the cache holds for another repository is linked once
// the upstream confirms, not fetched again; a Range request on a miss is
// served from the stored copy.
func TestOnlyWhatIsAskedIsFetched(t *testing.T) {
	r := newRig(t, upstreamtest.Options{}, nil)
	data, d := r.pushBlob(100000)
	r.up.Blob(t, "other", data)
	res := r.do("HEAD", "/v2/"+prefix+"/app/blobs/"+d, nil, nil)
	if res.status != http.StatusOK || res.header.Get("Content-Length") != "100000" {
		t.Fatalf("HEAD: %d, Content-Length %q", res.status, res.header.Get("Content-Length"))
	}
	if n := r.front.Count("blob", "GET"); n != 0 {
		t.Fatalf("a HEAD made %d upstream GETs", n)
	}
	if ok, _ := r.reg.BlobStored(t.Context(), mustDigest(t, d)); ok {
		t.Fatal("a HEAD stored the blob")
	}
	res = r.do("GET", "/v2/"+prefix+"/app/blobs/"+d, nil, map[string]string{"Range": "bytes=10-19"})
	if res.status != http.StatusPartialContent || !bytes.Equal(res.body, data[10:20]) {
		t.Fatalf("Range on a miss: %d %q", res.status, res.body)
	}
	r.front.Reset()
	r.get("/v2/"+prefix+"/other/blobs/"+d, data)
	if heads, gets := r.front.Count("blob", "HEAD"), r.front.Count("blob", "GET"); heads != 1 || gets != 0 {
		t.Errorf("a blob held for another repository: %d HEADs and %d GETs upstream, want 1 and 0", heads, gets)
	}
	res = r.do("GET", "/v2/"+prefix+"/app/blobs/"+upstreamtest.Digest([]byte("nothing")), nil, nil)
	r.expectError(res, http.StatusNotFound, "BLOB_UNKNOWN")
}

// A client that stops reading is left behind after streamStall; the fetch
// completes and stores the blob, and the client reads the rest from the
// stored copy.
func TestSlowClientReadsStoredCopy(t *testing.T) {
	r := newRig(t, upstreamtest.Options{}, nil)
	data, d := r.pushBlob(48 << 20) // more than the stream's window and the sockets' buffers
	resp, err := http.Get(r.srv.URL + "/v2/" + prefix + "/app/blobs/" + d)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	// Not reading: the fetch can finish only by leaving this client behind.
	waitFor(t, "the fetch to store the blob without the client", func() bool {
		_, err := r.reg.StatBlob(t.Context(), prefix+"/app", mustDigest(t, d))
		return err == nil && r.px.blobs.get(prefix+"/app@"+d) == nil
	})
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(append(head, rest...), data) {
		t.Fatalf("after falling behind, the client got %d bytes (%v), not the blob", len(head)+len(rest), err)
	}
	if n := r.front.Count("blob", "GET"); n != 1 {
		t.Errorf("%d upstream GETs, want 1", n)
	}
}
