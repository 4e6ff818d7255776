package registry

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"regexp"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
)

// Upload sessions. A session is a directory of immutable chunks in the
// store (uploadstate.go): each request that brings bytes writes them as a
// new chunk, created only if no chunk starts at that offset yet, so two
// requests racing on one session cannot both append, and nothing ever
// writes into stored bytes — not into a chunk, not into a blob made from
// chunks. Any process can serve any request of a session: its state,
// down to the running sha256, is in the store, not in memory.

var uploadIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

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
	if err := r.checkUploadCap(ctx, name); err != nil {
		return "", err
	}
	id := newUploadID()
	if err := r.d.PutContent(ctx, sessionStarted(name, id), nil); err != nil {
		return "", fmt.Errorf("starting upload: %w", err)
	}
	return id, nil
}

// checkUploadCap refuses a new session while repository name has
// Options.MaxUploadsPerRepository open.
func (r *Registry) checkUploadCap(ctx context.Context, name string) error {
	limit := r.opts.MaxUploadsPerRepository
	if limit <= 0 {
		return nil
	}
	open, err := r.d.List(ctx, sessionsDir(name), "", limit)
	if err != nil {
		return fmt.Errorf("counting upload sessions of %s: %w", name, err)
	}
	if len(open) >= limit {
		return ocierr.New(ocierr.TooManyRequests, http.StatusTooManyRequests,
			"repository %s has %d upload sessions open, the most allowed: finish or cancel one, or wait for idle ones to expire", name, limit)
	}
	return nil
}

// UploadSize returns how many bytes upload id has received.
func (r *Registry) UploadSize(ctx context.Context, name, id string) (int64, error) {
	s, err := r.openSession(ctx, name, id)
	if err != nil {
		return 0, err
	}
	return s.size, nil
}

// Chunk is a part of an upload's body. Start is where the client says it
// begins (-1: at the current end); Length is its announced size (-1:
// unknown, read to EOF).
type Chunk struct {
	Body   io.Reader
	Start  int64
	Length int64
}

func errRange(start, size int64) *ocierr.Error {
	return ocierr.New(ocierr.BlobUploadInvalid, http.StatusRequestedRangeNotSatisfiable,
		"chunk starts at byte %d but the upload has %d bytes", start, size)
}

// AppendUpload appends a chunk to upload id and returns the new size. A
// chunk that does not start at the current end is refused with 416 and
// leaves the session as it was.
func (r *Registry) AppendUpload(ctx context.Context, name, id string, c Chunk) (int64, error) {
	s, err := r.openSession(ctx, name, id)
	if err != nil {
		return 0, err
	}
	if err := r.appendChunk(ctx, s, c, true); err != nil {
		return s.size, err
	}
	return s.size, nil
}

// FinishUpload appends a last (possibly empty) chunk, verifies the whole
// upload against d and makes it blob d of repository name. The blob is
// durable and verified when this returns nil.
func (r *Registry) FinishUpload(ctx context.Context, name, id string, d reference.Digest, last Chunk) error {
	s, err := r.openSession(ctx, name, id)
	if err != nil {
		return err
	}
	if err := r.appendChunk(ctx, s, last, false); err != nil {
		return err
	}
	if err := r.verifyUpload(ctx, s, d); err != nil {
		return err
	}
	if err := r.storeBlob(ctx, name, d, s.chunkPaths()); err != nil {
		return err
	}
	return r.dropSession(ctx, s)
}

// PutBlob stores a whole blob in one request (the monolithic upload). Its
// session is never started: a crash leaves only a chunk nothing refers
// to, which upload expiry removes.
func (r *Registry) PutBlob(ctx context.Context, name string, d reference.Digest, body Chunk) error {
	s := &session{name: name, id: newUploadID(), hashes: map[int64]bool{}}
	err := r.appendChunk(ctx, s, body, false)
	if err == nil {
		err = r.verifyUpload(ctx, s, d)
	}
	if err == nil {
		err = r.storeBlob(ctx, name, d, s.chunkPaths())
	}
	if derr := r.dropSession(context.WithoutCancel(ctx), s); err == nil {
		err = derr
	}
	return err
}

// verifyUpload checks that the session's bytes hash to d.
func (r *Registry) verifyUpload(ctx context.Context, s *session, d reference.Digest) error {
	got, err := r.uploadDigest(ctx, s, d.Algorithm())
	if err != nil {
		return err
	}
	if got != d {
		return ocierr.New(ocierr.DigestInvalid, http.StatusBadRequest, "provided digest did not match uploaded content").
			WithDetail(map[string]string{"expected": d.String(), "computed": got.String()})
	}
	return nil
}

// CancelUpload drops upload id and its data.
func (r *Registry) CancelUpload(ctx context.Context, name, id string) error {
	s, err := r.openSession(ctx, name, id)
	if err != nil {
		return err
	}
	return r.dropSession(ctx, s)
}

func (r *Registry) dropSession(ctx context.Context, s *session) error {
	if err := r.d.DeleteAll(ctx, sessionDir(s.name, s.id)); err != nil {
		return fmt.Errorf("removing upload %s: %w", s.id, err)
	}
	return nil
}
