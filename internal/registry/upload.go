package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/storage"
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

// StartUpload opens an upload session in repository name for owner (the
// authenticated user; "" when there is none, which no per-owner cap
// counts).
func (r *Registry) StartUpload(ctx context.Context, name, owner string) (string, error) {
	if err := r.checkUploadCap(ctx, name); err != nil {
		return "", err
	}
	if err := r.checkOwnerCap(ctx, owner); err != nil {
		return "", err
	}
	id := newUploadID()
	if err := r.d.PutContent(storage.NoSync(ctx), sessionStarted(name, id), []byte(owner)); err != nil {
		return "", fmt.Errorf("starting upload: %w", err)
	}
	// Counted once the session exists: an entry whose session is missing
	// is one a crash left (or one being removed), never one starting.
	if owner != "" {
		if err := r.d.PutContent(storage.NoSync(ctx), ownerEntry(owner, name, id), nil); err != nil {
			return "", fmt.Errorf("starting upload: %w", err)
		}
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
	open, err := r.d.Names(ctx, sessionsDir(name), "", limit)
	if err != nil {
		return fmt.Errorf("counting upload sessions of %s: %w", name, err)
	}
	if len(open) >= limit {
		return ocierr.New(ocierr.TooManyRequests, http.StatusTooManyRequests,
			"repository %s has %d upload sessions open, the most allowed: finish or cancel one, or wait for idle ones to expire", name, limit)
	}
	return nil
}

// ownersDir lists the sessions each owner has open, one empty entry per
// session named "<repo>@<id>", so that counting them is one listing.
func ownerDir(owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return "owners/" + hex.EncodeToString(sum[:16])
}

func ownerEntry(owner, name, id string) string {
	return ownerDir(owner) + "/" + repoKey(name) + "@" + id
}

// checkOwnerCap refuses a new session while owner has
// Options.MaxUploadsPerOwner open. Entries of sessions that ended without
// their entry being removed (a crash) are found and removed here, when
// they would refuse a session. Like the per-repository cap, it is checked
// before the session is created, not atomically with it: requests racing
// each other may open a few sessions past it.
func (r *Registry) checkOwnerCap(ctx context.Context, owner string) error {
	limit := r.opts.MaxUploadsPerOwner
	if limit <= 0 || owner == "" {
		return nil
	}
	entries, err := r.d.Names(ctx, ownerDir(owner), "", limit)
	if err != nil {
		return fmt.Errorf("counting upload sessions of %s: %w", owner, err)
	}
	if len(entries) < limit {
		return nil
	}
	open := 0
	for _, e := range entries {
		key, id, ok := strings.Cut(e.Name, "@")
		if e.Dir || !ok {
			continue
		}
		live, err := r.exists(ctx, sessionStarted(repoName(key), id))
		if err != nil {
			return err
		}
		if live {
			open++
			continue
		}
		if err := r.d.Delete(storage.NoSync(ctx), ownerDir(owner)+"/"+e.Name); err != nil {
			return fmt.Errorf("removing a stale upload entry: %w", err)
		}
	}
	if open >= limit {
		return ocierr.New(ocierr.TooManyRequests, http.StatusTooManyRequests,
			"you have %d upload sessions open, the most allowed: finish or cancel one, or wait for idle ones to expire", limit)
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
// durable and verified when this returns nil. A session that received
// nothing before takes the monolithic path: its body is the blob.
func (r *Registry) FinishUpload(ctx context.Context, name, id string, d reference.Digest, last Chunk) error {
	s, err := r.openSession(ctx, name, id)
	if err != nil {
		return err
	}
	if s.size == 0 && (last.Start <= 0) {
		err := r.writeBlob(ctx, name, d, last)
		if e, ok := ocierr.As(err); ok && e.Code == ocierr.SizeInvalid && e.Status == http.StatusRequestEntityTooLarge {
			_ = r.dropSession(context.WithoutCancel(ctx), s) // it can never finish
		}
		if err != nil {
			return err
		}
		return r.dropSession(ctx, s)
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

// PutBlob stores a whole blob in one request (the monolithic upload).
func (r *Registry) PutBlob(ctx context.Context, name string, d reference.Digest, body Chunk) error {
	return r.writeBlob(ctx, name, d, body)
}

// writeBlob streams body straight to blob d, hashing it: the store keeps
// it invisible until Commit, which happens only once the digest is
// verified, so a whole blob in one request is written once, with no
// session and no chunk to copy (on S3: one multipart upload to the final
// key). Its link is written, and settled (protocol.go), before the blob
// is published: a collection that judged the blob unlinked has then
// finished removing the old copy, and one that judges it later sees the
// link — so the copy published here stays.
func (r *Registry) writeBlob(ctx context.Context, name string, d reference.Digest, c Chunk) error {
	lim := r.chunkLimit(0, c.Length)
	if lim.hit {
		return lim.err
	}
	w, err := r.d.Writer(ctx, blobPath(d), storage.Replace)
	if err != nil {
		return fmt.Errorf("storing blob %s: %w", d, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = w.Cancel(context.WithoutCancel(ctx))
		}
	}()
	h := reference.NewHash(d.Algorithm())
	if c.Body != nil {
		body := c.Body
		if c.Length >= 0 {
			body = io.LimitReader(body, c.Length)
		}
		n, err := copyHashing(w, h, lim.wrap(body))
		if lim.hit {
			return lim.err
		}
		if _, ok := ocierr.As(err); ok {
			return err
		}
		if err != nil {
			return fmt.Errorf("writing blob %s: %w", d, err)
		}
		if c.Length >= 0 && n != c.Length {
			return ocierr.New(ocierr.SizeInvalid, http.StatusBadRequest, "body has %d bytes, %d were announced", n, c.Length)
		}
	}
	if got := reference.FromHash(d.Algorithm(), h); got != d {
		return ocierr.New(ocierr.DigestInvalid, http.StatusBadRequest, "provided digest did not match uploaded content").
			WithDetail(map[string]string{"expected": d.String(), "computed": got.String()})
	}
	if err := r.settledLink(ctx, name, d); err != nil {
		return err
	}
	committed = true
	if err := w.Commit(ctx); err != nil {
		return fmt.Errorf("storing blob %s: %w", d, err)
	}
	return r.settledLink(ctx, name, d)
}

// settledLink links blob d into repository name and returns once the link
// is there and no collection is judging it or the blob.
func (r *Registry) settledLink(ctx context.Context, name string, d reference.Digest) error {
	for try := 1; ; try++ {
		if err := r.linkBlob(ctx, name, d); err != nil {
			return err
		}
		if err := r.settle(ctx, blobLink(name, d), blobPath(d)); err != nil {
			return err
		}
		ok, err := r.exists(ctx, blobLink(name, d))
		if err != nil || ok {
			return err
		}
		if try == 3 {
			return fmt.Errorf("the link of blob %s in %s was removed by garbage collection %d times", d, name, try)
		}
	}
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
	owner, err := r.d.GetContent(ctx, sessionStarted(s.name, s.id))
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("reading upload %s: %w", s.id, err)
	}
	if err := r.d.DeleteAll(storage.NoSync(ctx), sessionDir(s.name, s.id)); err != nil {
		return fmt.Errorf("removing upload %s: %w", s.id, err)
	}
	if len(owner) > 0 {
		if err := r.d.Delete(storage.NoSync(ctx), ownerEntry(string(owner), s.name, s.id)); err != nil {
			return fmt.Errorf("removing upload %s: %w", s.id, err)
		}
	}
	return nil
}
