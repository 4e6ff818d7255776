package registry

import (
	"context"
	"crypto/rand"
	"fmt"
	"hash"
	"io"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
)

var uploadIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// uploadSessions keeps, per live upload, a lock that serialises its
// requests and the running sha256 of the bytes stored so far, so finishing
// an upload does not read it back. After a restart (or on another replica)
// the state is rebuilt by hashing the stored data once.
type uploadSessions struct {
	mu sync.Mutex
	m  map[string]*uploadSession
}

type uploadSession struct {
	mu     sync.Mutex
	hashed int64     // bytes fed to h; -1 when h is unusable
	h      hash.Hash // sha256 of the first hashed bytes
}

func newUploadSessions() *uploadSessions {
	return &uploadSessions{m: map[string]*uploadSession{}}
}

// lock returns the locked session id, creating its state if needed.
func (s *uploadSessions) lock(id string) *uploadSession {
	s.mu.Lock()
	u, ok := s.m[id]
	if !ok {
		u = &uploadSession{hashed: -1}
		s.m[id] = u
	}
	s.mu.Unlock()
	u.mu.Lock()
	return u
}

func (s *uploadSessions) forget(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

func errUploadUnknown(id string) *ocierr.Error {
	return ocierr.New(ocierr.BlobUploadUnknown, http.StatusNotFound, "blob upload unknown to registry").WithDetail(map[string]string{"session": id})
}

func newUploadID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// StartUpload opens an upload session in repository name.
func (r *Registry) StartUpload(ctx context.Context, name string) (string, error) {
	id := newUploadID()
	if err := r.d.PutContent(ctx, uploadDir(id)+"/repository", []byte(name)); err != nil {
		return "", fmt.Errorf("starting upload: %w", err)
	}
	return id, nil
}

// UploadSize returns how many bytes upload id has received.
func (r *Registry) UploadSize(ctx context.Context, name, id string) (int64, error) {
	if !uploadIDRE.MatchString(id) {
		return 0, errUploadUnknown(id)
	}
	owner, err := r.d.GetContent(ctx, uploadDir(id)+"/repository")
	if isNotFound(err) || (err == nil && string(owner) != name) {
		return 0, errUploadUnknown(id)
	}
	if err != nil {
		return 0, fmt.Errorf("reading upload %s: %w", id, err)
	}
	info, err := r.d.Stat(ctx, uploadDir(id)+"/data")
	if isNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stat upload %s: %w", id, err)
	}
	return info.Size, nil
}

// Chunk is a part of an upload's body. Start is where the client says it
// begins (-1: at the current end); Length is its announced size (-1:
// unknown, read to EOF).
type Chunk struct {
	Body   io.Reader
	Start  int64
	Length int64
}

// AppendUpload appends a chunk to upload id and returns the new size. A
// chunk that does not start at the current end is refused with 416 and
// leaves the session as it was.
func (r *Registry) AppendUpload(ctx context.Context, name, id string, c Chunk) (int64, error) {
	u, err := r.lockUpload(id)
	if err != nil {
		return 0, err
	}
	defer u.mu.Unlock()
	size, err := r.appendLocked(ctx, name, id, u, c)
	r.forgetUnknown(id, err)
	return size, err
}

// lockUpload locks the state of session id, checked only in form here:
// the first read under the lock (appendLocked's) tells whether it exists,
// so a chunk costs one look at the session, not two.
func (r *Registry) lockUpload(id string) (*uploadSession, error) {
	if !uploadIDRE.MatchString(id) {
		return nil, errUploadUnknown(id)
	}
	return r.uploads.lock(id), nil
}

// forgetUnknown drops the state lockUpload made for a session that turned
// out not to exist.
func (r *Registry) forgetUnknown(id string, err error) {
	if e, ok := ocierr.As(err); ok && e.Code == ocierr.BlobUploadUnknown {
		r.uploads.forget(id)
	}
}

func errRange(start, size int64) *ocierr.Error {
	return ocierr.New(ocierr.BlobUploadInvalid, http.StatusRequestedRangeNotSatisfiable,
		"chunk starts at byte %d but the upload has %d bytes", start, size)
}

// appendLocked appends c with u locked. The size is read under the lock
// because another request may have appended before it was taken.
func (r *Registry) appendLocked(ctx context.Context, name, id string, u *uploadSession, c Chunk) (int64, error) {
	size, err := r.UploadSize(ctx, name, id)
	if err != nil {
		return 0, err
	}
	if c.Start >= 0 && c.Start != size {
		return size, errRange(c.Start, size)
	}
	lim := r.chunkLimit(size, c.Length)
	if lim.hit {
		return size, r.oversize(ctx, id, lim)
	}
	if c.Body == nil {
		return size, nil
	}
	if err := r.catchUpHash(ctx, name, id, u, size); err != nil {
		return size, err
	}
	w, err := r.d.Writer(ctx, uploadDir(id)+"/data")
	if err != nil {
		return size, fmt.Errorf("opening upload %s: %w", id, err)
	}
	body := c.Body
	if c.Length >= 0 {
		body = io.LimitReader(body, c.Length)
	}
	n, err := io.Copy(io.MultiWriter(w, u.h), lim.wrap(body))
	if err == nil && c.Length >= 0 && n != c.Length {
		err = ocierr.New(ocierr.SizeInvalid, http.StatusBadRequest, "chunk has %d bytes, %d were announced", n, c.Length)
	}
	if err != nil {
		u.hashed = -1
		if cerr := w.Cancel(); cerr != nil {
			return size, fmt.Errorf("%w (and rollback failed: %v)", err, cerr)
		}
		if lim.hit {
			return size, r.oversize(ctx, id, lim)
		}
		if _, ok := ocierr.As(err); ok {
			return size, err
		}
		return size, fmt.Errorf("writing upload %s: %w", id, err)
	}
	if err := w.Commit(); err != nil {
		u.hashed = -1
		return size, err
	}
	u.hashed = size + n
	return size + n, nil
}

// catchUpHash makes u.h the sha256 of the first size bytes of the upload.
func (r *Registry) catchUpHash(ctx context.Context, name, id string, u *uploadSession, size int64) error {
	if u.hashed == size && u.h != nil {
		return nil
	}
	h, err := r.hashUpload(ctx, name, id, "sha256")
	if err != nil {
		return err
	}
	u.h, u.hashed = h, size
	return nil
}

func (r *Registry) hashUpload(ctx context.Context, name, id, algorithm string) (hash.Hash, error) {
	h := reference.NewHash(algorithm)
	rc, _, err := r.d.Reader(ctx, uploadDir(id)+"/data")
	if isNotFound(err) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading upload %s: %w", id, err)
	}
	defer rc.Close()
	if _, err := io.Copy(h, rc); err != nil {
		return nil, fmt.Errorf("hashing upload %s: %w", id, err)
	}
	return h, nil
}

// FinishUpload appends a last (possibly empty) chunk, verifies the whole
// upload against d and makes it blob d of repository name. The blob is
// durable and verified when this returns nil.
func (r *Registry) FinishUpload(ctx context.Context, name, id string, d reference.Digest, last Chunk) error {
	u, err := r.lockUpload(id)
	if err != nil {
		return err
	}
	defer u.mu.Unlock()
	size, err := r.appendLocked(ctx, name, id, u, last)
	if err != nil {
		r.forgetUnknown(id, err)
		return err
	}
	got, err := r.uploadDigest(ctx, name, id, u, size, d.Algorithm())
	if err != nil {
		return err
	}
	if got != d {
		return ocierr.New(ocierr.DigestInvalid, http.StatusBadRequest, "provided digest did not match uploaded content").
			WithDetail(map[string]string{"expected": d.String(), "computed": got.String()})
	}
	if err := r.storeUpload(ctx, name, id, d, size); err != nil {
		return err
	}
	r.uploads.forget(id)
	return nil
}

func (r *Registry) uploadDigest(ctx context.Context, name, id string, u *uploadSession, size int64, algorithm string) (reference.Digest, error) {
	if algorithm == "sha256" && u.hashed == size && u.h != nil {
		return reference.FromHash(algorithm, u.h), nil
	}
	h, err := r.hashUpload(ctx, name, id, algorithm)
	if err != nil {
		return "", err
	}
	return reference.FromHash(algorithm, h), nil
}

// storeUpload moves verified upload data into the blob store, links it into
// the repository and removes the session. The upload's data is kept until
// the blob is seen in place after the link is written: a garbage
// collection may have judged an identical old blob unused just before.
func (r *Registry) storeUpload(ctx context.Context, name, id string, d reference.Digest, size int64) error {
	data := uploadDir(id) + "/data"
	have, err := r.exists(ctx, blobPath(d))
	if err != nil {
		return err
	}
	if !have {
		if err := r.placeBlob(ctx, data, d, size); err != nil {
			return err
		}
	}
	if err := r.linkBlob(ctx, name, d); err != nil {
		return err
	}
	if have {
		if err := r.ensureBlob(ctx, data, d, size); err != nil {
			return err
		}
	} else if ok, err := r.blobPresent(ctx, d); err != nil || !ok {
		return fmt.Errorf("blob %s vanished while it was stored (concurrent garbage collection?): %v", d, err)
	}
	if err := r.d.Delete(ctx, uploadDir(id)); err != nil && !isNotFound(err) {
		return fmt.Errorf("removing finished upload %s: %w", id, err)
	}
	return nil
}

// placeBlob moves upload data (or, for an empty blob, nothing) to blob d.
func (r *Registry) placeBlob(ctx context.Context, data string, d reference.Digest, size int64) error {
	var err error
	if size == 0 {
		err = r.d.PutContent(ctx, blobPath(d), nil)
	} else {
		err = r.d.Move(ctx, data, blobPath(d))
	}
	if err != nil {
		return fmt.Errorf("storing blob %s: %w", d, err)
	}
	return nil
}

// ensureBlob puts the upload's data in place if blob d is gone.
func (r *Registry) ensureBlob(ctx context.Context, data string, d reference.Digest, size int64) error {
	ok, err := r.blobPresent(ctx, d)
	if err != nil || ok {
		return err
	}
	return r.placeBlob(ctx, data, d, size)
}

// blobPresent reports whether blob d is stored. A garbage collection moves
// a candidate aside for a moment before it decides (see gc.go), so a miss
// is looked at again for up to a second.
func (r *Registry) blobPresent(ctx context.Context, d reference.Digest) (bool, error) {
	for try := 0; ; try++ {
		ok, err := r.exists(ctx, blobPath(d))
		if ok || err != nil || try == 20 {
			return ok, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// CancelUpload drops upload id and its data.
func (r *Registry) CancelUpload(ctx context.Context, name, id string) error {
	if _, err := r.UploadSize(ctx, name, id); err != nil {
		return err
	}
	u := r.uploads.lock(id)
	defer u.mu.Unlock()
	defer r.uploads.forget(id)
	err := r.d.Delete(ctx, uploadDir(id))
	if isNotFound(err) {
		return errUploadUnknown(id)
	}
	if err != nil {
		return fmt.Errorf("cancelling upload %s: %w", id, err)
	}
	return nil
}

// PutBlob stores a whole blob in one request (the monolithic upload).
func (r *Registry) PutBlob(ctx context.Context, name string, d reference.Digest, body Chunk) error {
	id, err := r.StartUpload(ctx, name)
	if err != nil {
		return err
	}
	err = r.FinishUpload(ctx, name, id, d, body)
	if err != nil {
		_ = r.CancelUpload(context.WithoutCancel(ctx), name, id)
	}
	return err
}

// PurgeUploads removes upload sessions with no activity (no chunk received)
// for longer than maxIdle, with their data, and returns how many it
// removed (or, in a dry run, would remove).
func (r *Registry) PurgeUploads(ctx context.Context, maxIdle time.Duration, dryRun bool) (int, error) {
	ids, err := r.d.List(ctx, "uploads")
	if isNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("listing uploads: %w", err)
	}
	removed := 0
	for _, id := range ids {
		idle, err := r.uploadIdle(ctx, id)
		if err != nil {
			return removed, err
		}
		if idle <= maxIdle {
			continue
		}
		if !dryRun {
			if err := r.purgeUpload(ctx, id, maxIdle); err != nil {
				return removed, err
			}
		}
		removed++
	}
	return removed, nil
}

// uploadIdle is how long ago upload id last received data (or started).
func (r *Registry) uploadIdle(ctx context.Context, id string) (time.Duration, error) {
	var last time.Time
	for _, f := range []string{"repository", "data"} {
		info, err := r.d.Stat(ctx, uploadDir(id)+"/"+f)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("stat upload %s: %w", id, err)
		}
		if info.ModTime.After(last) {
			last = info.ModTime
		}
	}
	if last.IsZero() {
		return 0, nil // being created or removed right now
	}
	return time.Since(last), nil
}

// purgeUpload removes upload id under its session lock, after checking
// again that it is still idle.
func (r *Registry) purgeUpload(ctx context.Context, id string, maxIdle time.Duration) error {
	u := r.uploads.lock(id)
	defer u.mu.Unlock()
	defer r.uploads.forget(id)
	idle, err := r.uploadIdle(ctx, id)
	if err != nil || idle <= maxIdle {
		return err
	}
	if err := r.d.Delete(ctx, uploadDir(id)); err != nil && !isNotFound(err) {
		return fmt.Errorf("removing abandoned upload %s: %w", id, err)
	}
	return nil
}
