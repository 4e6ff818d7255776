package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage"
)

// Blobs. A blob a cached repository lacks is fetched once, however many
// clients ask for it at the same time: the first request starts the fetch
// and gets its bytes as they arrive (stream.go); requests that come while
// it runs wait for the stored copy. Why wait rather than tail the
// download: the fetch writes the blob to one storage object that becomes
// durable (one fsync) only at the end, which is what lets the first client
// be served at network speed; tailing needs the bytes readable before
// that, so either committed chunk by chunk — an fsync per chunk on every
// client's path and a copy to join them — or held in memory, without
// bound. Concurrent first pulls of one blob are nodes starting the same
// image at once; they get the stored copy at disk speed the moment the
// fetch ends.
//
// A request with a Range, or one that the fetch left behind, is served
// from the stored copy too. Only what is asked for is fetched: a HEAD asks
// the upstream for the size and fetches nothing, and a blob the registry
// already holds for another repository is linked, once the upstream
// confirms this repository has it, instead of fetched again.

// maxResumes bounds how often a fetch whose connection broke continues
// with a Range request from the byte it reached.
const maxResumes = 3

// blobFetch is one blob being fetched from upstream.
type blobFetch struct {
	ready  chan struct{} // closed once the size is known or the fetch is over
	size   int64         // -1: unknown (no Content-Length) until stored
	stream *stream       // for the request that started the fetch; nil without a size
	done   chan struct{} // closed once the blob is stored or the fetch failed
	err    error         // why it failed, set before done (and ready) close
	once   sync.Once
}

func (f *blobFetch) setSize(size int64) {
	if size >= 0 {
		f.size, f.stream = size, newStream(size)
		f.once.Do(func() { close(f.ready) })
	}
}

func (f *blobFetch) finish(err error) {
	f.err = err
	if err != nil && f.stream != nil {
		f.stream.fail(err)
	}
	f.once.Do(func() { close(f.ready) })
	close(f.done)
}

// blobFetches are the fetches running, by repository and digest.
type blobFetches struct {
	mu sync.Mutex
	m  map[string]*blobFetch
}

// join returns the fetch running for key, or a new one started with
// start, and whether it is new.
func (b *blobFetches) join(key string, start func(*blobFetch)) (*blobFetch, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f := b.m[key]; f != nil {
		return f, false
	}
	if b.m == nil {
		b.m = map[string]*blobFetch{}
	}
	f := &blobFetch{ready: make(chan struct{}), done: make(chan struct{}), size: -1}
	b.m[key] = f
	start(f)
	return f, true
}

func (b *blobFetches) get(key string) *blobFetch {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[key]
}

func (b *blobFetches) remove(key string, f *blobFetch) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m[key] == f {
		delete(b.m, key)
	}
}

func isUnknown(err error, code ocierr.Code) bool {
	e, ok := ocierr.As(err)
	return ok && e.Code == code
}

// StatBlob returns the size of blob d of repository name; for a cached
// repository that lacks it, the upstream's answer to a HEAD.
func (p *Proxy) StatBlob(ctx context.Context, name string, d reference.Digest) (int64, error) {
	u, remote := p.match(name)
	size, err := p.reg.StatBlob(ctx, name, d)
	if u == nil || !isUnknown(err, ocierr.BlobUnknown) {
		return size, err
	}
	if f := p.blobs.get(name + "@" + d.String()); f != nil {
		select {
		case <-f.ready:
			if f.size >= 0 {
				return f.size, nil
			}
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	ctx, cancel := context.WithTimeout(ctx, u.cfg.Timeout)
	defer cancel()
	resp, err := u.blob(ctx, http.MethodHead, remote, d, 0)
	if err != nil {
		return 0, clientError(u, KindBlob, d.String(), err)
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK || resp.ContentLength < 0 {
		return 0, clientError(u, KindBlob, d.String(), &statusError{resp.StatusCode, "upstream HEAD blob " + d.String()})
	}
	return resp.ContentLength, nil
}

// OpenBlob opens blob d of repository name; for a cached repository that
// lacks it, the fetch of it from upstream.
func (p *Proxy) OpenBlob(ctx context.Context, name string, d reference.Digest) (io.ReadSeekCloser, storage.Info, error) {
	u, remote := p.match(name)
	rc, info, err := p.reg.OpenBlob(ctx, name, d)
	if u == nil || !isUnknown(err, ocierr.BlobUnknown) {
		if err == nil && u != nil {
			p.obs.CacheHit(KindBlob)
		}
		return rc, info, err
	}
	if linked, err := p.linkStored(ctx, u, remote, name, d); err != nil || linked {
		if err != nil {
			return nil, storage.Info{}, err
		}
		p.obs.CacheHit(KindBlob)
		return p.reg.OpenBlob(ctx, name, d)
	}
	key := name + "@" + d.String()
	f, leader := p.blobs.join(key, func(f *blobFetch) {
		p.running.Add(1)
		go p.fetchBlob(u, remote, name, d, f, key)
	})
	if leader {
		p.obs.CacheMiss(KindBlob)
	} else {
		p.obs.CacheHit(KindBlob)
	}
	for _, wait := range []chan struct{}{f.ready, f.done} {
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, storage.Info{}, ctx.Err()
		}
		if f.size != 0 {
			break // an empty blob has nothing to stream: wait until it verified
		}
	}
	if f.size <= 0 { // over: failed, empty, or stored without a known size
		if f.err != nil {
			return nil, storage.Info{}, clientError(u, KindBlob, d.String(), f.err)
		}
		return p.reg.OpenBlob(ctx, name, d)
	}
	r := &blobReader{ctx: ctx, p: p, f: f, name: name, d: d, size: f.size}
	if leader {
		r.s = f.stream
	}
	return r, storage.Info{Size: f.size}, nil
}

// linkStored links blob d into cached repository name, without fetching
// it, when the registry holds its bytes for another repository and the
// upstream confirms that its repository has it: a client may learn of
// the bytes of a repository only through one it may pull.
func (p *Proxy) linkStored(ctx context.Context, u *upstream, remote, name string, d reference.Digest) (bool, error) {
	stored, err := p.reg.BlobStored(ctx, d)
	if err != nil || !stored {
		return false, err
	}
	hctx, cancel := context.WithTimeout(ctx, u.cfg.Timeout)
	defer cancel()
	resp, err := u.blob(hctx, http.MethodHead, remote, d, 0)
	if err != nil {
		return false, nil // the fetch will tell
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		return false, nil
	}
	return p.reg.MountBlob(ctx, name, "", d)
}

// fetchBlob runs fetch f of blob d: from the upstream into the store, and
// into f's stream.
func (p *Proxy) fetchBlob(u *upstream, remote, name string, d reference.Digest, f *blobFetch, key string) {
	defer p.running.Done()
	defer p.blobs.remove(key, f)
	err := p.fillBlob(u, remote, name, d, f)
	if err != nil {
		p.log.Warn("fetching a blob from upstream failed", "upstream", u.cfg.URL, "repository", name, "digest", d.String(), "error", err)
	}
	f.finish(err)
}

// fillBlob stores blob d, resuming a broken transfer where it stopped.
func (p *Proxy) fillBlob(u *upstream, remote, name string, d reference.Digest, f *blobFetch) error {
	t := &transfer{p: p, u: u, remote: remote, name: name, d: d, f: f}
	defer t.cancel()
	for attempt := 0; ; attempt++ {
		err := t.attempt()
		if err == nil {
			break
		}
		var re *readError
		if !errors.As(err, &re) || attempt == maxResumes || f.size < 0 || p.ctx.Err() != nil {
			return err
		}
		p.log.Info("blob transfer from upstream broke; resuming", "upstream", u.cfg.URL, "digest", d.String(), "at", t.written, "error", err)
	}
	if f.size >= 0 && t.written != f.size {
		return fmt.Errorf("upstream sent %d bytes of blob %s, announced %d", t.written, d, f.size)
	}
	if err := t.fill.Verify(); err != nil {
		p.obs.UpstreamError(u.name(), 0)
		return err
	}
	if f.stream != nil {
		f.stream.release()
	}
	err := t.fill.Commit(p.ctx)
	t.fill = nil
	return err
}

// readError is a failure reading an upstream body: worth resuming.
type readError struct{ err error }

func (e *readError) Error() string { return "reading from upstream: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// transfer is the state of one blob fetch across resumed attempts.
type transfer struct {
	p       *Proxy
	u       *upstream
	remote  string
	name    string
	d       reference.Digest
	f       *blobFetch
	fill    *registry.BlobFill
	written int64
}

// cancel discards what was stored of a transfer that did not finish.
func (t *transfer) cancel() {
	if t.fill != nil {
		_ = t.fill.Cancel(context.Background())
	}
}

// attempt reads the blob from t.written on, in one request; a body that
// stalls for the upstream's timeout is given up. The bytes go to the
// client's stream from here and to the store from a goroutine of their
// own, so that storing and hashing them runs beside receiving and sending
// them instead of after.
func (t *transfer) attempt() error {
	ctx, cancel := context.WithCancel(t.p.ctx)
	defer cancel()
	timeout := t.u.cfg.Timeout
	stall := time.AfterFunc(timeout, cancel)
	defer stall.Stop()
	resp, err := t.u.blob(ctx, http.MethodGet, t.remote, t.d, t.written)
	if err != nil {
		if t.written > 0 {
			return &readError{err}
		}
		return err
	}
	defer resp.Body.Close()
	if err := t.start(resp); err != nil {
		return err
	}
	store := t.storeChunks(cancel)
	err = t.receive(resp.Body, stall, timeout, store.chunks)
	close(store.chunks)
	if serr := <-store.done; serr != nil {
		return serr // the store failed: no retry helps
	}
	return err
}

// storer is the goroutine writing a fetch's chunks to the store.
type storer struct {
	chunks chan chunk
	done   chan error
}

// storeChunks starts the storer; a failure to store stops the transfer
// (stop).
func (t *transfer) storeChunks(stop context.CancelFunc) storer {
	s := storer{chunks: make(chan chunk, 16), done: make(chan error, 1)}
	go func() {
		var err error
		for c := range s.chunks {
			if err == nil {
				if _, err = t.fill.Write(c.b); err != nil {
					stop()
				}
			}
			c.buf.release()
		}
		s.done <- err
	}()
	return s
}

// receive reads body into chunks for the stream and the store until it
// ends.
func (t *transfer) receive(body io.Reader, stall *time.Timer, timeout time.Duration, store chan<- chunk) error {
	owners := int32(1)
	if t.f.stream != nil {
		owners = 2
	}
	for {
		buf := newBuffer(owners)
		// Only the upstream is timed: waiting for the client or the store
		// is not a stalled transfer.
		stall.Reset(timeout)
		n, rerr := readSome(body, *buf.b)
		stall.Stop()
		if n > 0 {
			c := chunk{buf, (*buf.b)[:n]}
			t.written += int64(n)
			t.p.obs.UpstreamBytes(t.u.name(), int64(n))
			if owners == 2 && !t.f.stream.push(c) {
				buf.release()
			}
			store <- c
		} else {
			for range owners {
				buf.release()
			}
		}
		if rerr == io.EOF && (t.f.size < 0 || t.written == t.f.size) {
			return nil
		}
		if rerr != nil {
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			return &readError{rerr}
		}
	}
}

// start checks the response of an attempt and, on the first, opens the
// store's fill and tells the fetch the size.
func (t *transfer) start(resp *http.Response) error {
	if t.written == 0 {
		if resp.StatusCode != http.StatusOK {
			return &statusError{resp.StatusCode, "upstream GET blob " + t.d.String()}
		}
		fill, err := t.p.reg.FillBlob(t.p.ctx, t.name, t.d)
		if err != nil {
			return err
		}
		t.fill = fill
		t.f.setSize(resp.ContentLength)
		return nil
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if start, ok := contentRangeStart(resp.Header.Get("Content-Range")); !ok || start != t.written {
			return fmt.Errorf("upstream resumed blob %s at %q, asked for byte %d", t.d, resp.Header.Get("Content-Range"), t.written)
		}
	case http.StatusOK: // Range ignored: skip what was stored already
		if _, err := io.CopyN(io.Discard, resp.Body, t.written); err != nil {
			return &readError{err}
		}
	default:
		return &statusError{resp.StatusCode, "upstream GET blob " + t.d.String() + " (resumed)"}
	}
	return nil
}

// readSome reads into buf until it holds a useful amount (a quarter) or
// the body ends or fails.
func readSome(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf)/4 {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// contentRangeStart reads the first byte of "bytes <start>-<end>/<total>".
func contentRangeStart(h string) (int64, bool) {
	s, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(s, "-")
	n, err := strconv.ParseInt(first, 10, 64)
	return n, ok && err == nil
}

// blobReader is what a pull of a blob being fetched reads: the stream of
// the fetch for the request that started it, then (or else) the stored
// copy once it is stored. It seeks freely; ranges are served from the
// stored copy.
type blobReader struct {
	ctx    context.Context
	p      *Proxy
	f      *blobFetch
	name   string
	d      reference.Digest
	size   int64
	off    int64   // where the next Read starts
	s      *stream // the fetch's bytes from 0, until left
	sOff   int64   // how far s has been read
	stored io.ReadSeekCloser
	// storedOff is where stored will read next.
	storedOff int64
}

func (r *blobReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	}
	if offset < 0 {
		return 0, errors.New("seek before the start of the blob")
	}
	r.off = offset
	return offset, nil
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if r.s != nil && r.off == r.sOff {
		n, err := r.s.read(r.ctx, p)
		r.off += int64(n)
		r.sOff += int64(n)
		if !errors.Is(err, errDetached) {
			return n, err
		}
	}
	if r.s != nil {
		r.s.detach()
		r.s = nil
	}
	return r.readStored(p)
}

// readStored reads from the stored copy, waiting for the fetch to store
// it.
func (r *blobReader) readStored(p []byte) (int, error) {
	if r.stored == nil {
		select {
		case <-r.f.done:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
		if r.f.err != nil {
			return 0, r.f.err
		}
		rc, _, err := r.p.reg.OpenBlob(r.ctx, r.name, r.d)
		if err != nil {
			return 0, err
		}
		r.stored, r.storedOff = rc, 0
	}
	if r.storedOff != r.off {
		if _, err := r.stored.Seek(r.off, io.SeekStart); err != nil {
			return 0, err
		}
		r.storedOff = r.off
	}
	n, err := r.stored.Read(p)
	r.off += int64(n)
	r.storedOff = r.off
	return n, err
}

func (r *blobReader) Close() error {
	if r.s != nil {
		r.s.detach()
		r.s = nil
	}
	if r.stored != nil {
		return r.stored.Close()
	}
	return nil
}
