package registry

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/storage"
)

func sessionsDir(name string) string { return "uploads/" + repoKey(name) }

func sessionDir(name, id string) string { return sessionsDir(name) + "/" + id }

func sessionStarted(name, id string) string { return sessionDir(name, id) + "/started" }

// offsetName writes a byte offset so that names sort as numbers do.
func offsetName(n int64) string { return fmt.Sprintf("%020d", n) }

func chunkPath(name, id string, start int64) string {
	return sessionDir(name, id) + "/data/" + offsetName(start)
}

func hashStatePath(name, id string, end int64) string {
	return sessionDir(name, id) + "/sha256/" + offsetName(end)
}

// session is an upload session as read from the store.
type session struct {
	name, id string
	started  bool           // opened by StartUpload, not PutBlob's own
	chunks   []int64        // start offsets, contiguous from 0
	size     int64          // bytes in all chunks
	hashes   map[int64]bool // ends with a stored sha256 state
	newest   time.Time      // latest ModTime of its objects
	h        hash.Hash      // sha256 of the first size bytes, when known
}

func (s *session) chunkPaths() []string {
	paths := make([]string, len(s.chunks))
	for i, start := range s.chunks {
		paths[i] = chunkPath(s.name, s.id, start)
	}
	return paths
}

// openSession reads session id of repository name; a session that was
// never started, was finished, cancelled or expired, or belongs to another
// repository (its path holds the name) is unknown.
func (r *Registry) openSession(ctx context.Context, name, id string) (*session, error) {
	if !uploadIDRE.MatchString(id) {
		return nil, errUploadUnknown(id)
	}
	s, err := r.readSession(ctx, name, id)
	if err != nil {
		return nil, err
	}
	if !s.started {
		return nil, errUploadUnknown(id)
	}
	return s, nil
}

// readSession lists the objects of a session: one listing, in key order.
func (r *Registry) readSession(ctx context.Context, name, id string) (*session, error) {
	s := &session{name: name, id: id, hashes: map[int64]bool{}}
	sizes := map[int64]int64{}
	err := r.d.Walk(ctx, sessionDir(name, id), func(e storage.Entry) error {
		if e.ModTime.After(s.newest) {
			s.newest = e.ModTime
		}
		kind, off, _ := strings.Cut(e.Name, "/")
		n, perr := strconv.ParseInt(off, 10, 64)
		switch {
		case e.Name == "started":
			s.started = true
		case kind == "data" && perr == nil:
			sizes[n] = e.Size
			s.chunks = append(s.chunks, n)
		case kind == "sha256" && perr == nil:
			s.hashes[n] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading upload %s: %w", id, err)
	}
	// Chunks are created only at the end of those before them, so they
	// are contiguous; anything else is not part of the upload.
	for i, start := range s.chunks {
		if start != s.size {
			s.chunks = s.chunks[:i]
			break
		}
		s.size += sizes[start]
	}
	return s, nil
}

// appendChunk writes c as a new chunk at the session's end. With
// keepHash, the running sha256 is stored too, so the next request — on
// any replica — does not hash the upload again.
func (r *Registry) appendChunk(ctx context.Context, s *session, c Chunk, keepHash bool) error {
	if c.Start >= 0 && c.Start != s.size {
		return errRange(c.Start, s.size)
	}
	lim := r.chunkLimit(s.size, c.Length)
	if lim.hit {
		return r.oversize(ctx, s, lim)
	}
	if c.Body == nil {
		return nil
	}
	if err := r.resumeHash(ctx, s); err != nil {
		return err
	}
	start := s.size
	w, err := r.d.Writer(ctx, chunkPath(s.name, s.id, start), storage.Create)
	if err != nil {
		return fmt.Errorf("opening upload %s: %w", s.id, err)
	}
	body := c.Body
	if c.Length >= 0 {
		body = io.LimitReader(body, c.Length)
	}
	h := cloneHash(s.h)
	n, err := copyHashing(w, h, lim.wrap(body))
	if err == nil && c.Length >= 0 && n != c.Length {
		err = ocierr.New(ocierr.SizeInvalid, http.StatusBadRequest, "chunk has %d bytes, %d were announced", n, c.Length)
	}
	if err != nil {
		_ = w.Cancel(ctx)
		if lim.hit {
			return r.oversize(ctx, s, lim)
		}
		if _, ok := ocierr.As(err); ok {
			return err
		}
		return fmt.Errorf("writing upload %s: %w", s.id, err)
	}
	if err := w.Commit(ctx); err != nil {
		if errors.Is(err, storage.ErrExists) {
			return ocierr.New(ocierr.BlobUploadInvalid, http.StatusRequestedRangeNotSatisfiable,
				"another request appended to this upload at byte %d first", start)
		}
		return fmt.Errorf("storing upload %s: %w", s.id, err)
	}
	s.chunks, s.size, s.h = append(s.chunks, start), start+n, h
	if keepHash {
		r.saveHash(ctx, s)
		if start > 0 && s.hashes[start] {
			_ = r.d.Delete(storage.NoSync(ctx), hashStatePath(s.name, s.id, start)) // superseded
		}
	}
	return r.checkAlive(ctx, s)
}

// checkAlive makes sure the session was not expired while a chunk was
// written (protocol.go): if it was, the chunk goes too. PutBlob's session
// was never started, and nothing expires it but its age.
func (r *Registry) checkAlive(ctx context.Context, s *session) error {
	if !s.started {
		return nil
	}
	started := sessionStarted(s.name, s.id)
	if err := r.settle(ctx, started); err != nil {
		return err
	}
	ok, err := r.exists(ctx, started)
	if err != nil || ok {
		return err
	}
	_ = r.dropSession(context.WithoutCancel(ctx), s)
	return errUploadUnknown(s.id)
}

// resumeHash sets s.h to the sha256 of the session's s.size bytes: from
// the stored state when there is one, else by reading the chunks.
func (r *Registry) resumeHash(ctx context.Context, s *session) error {
	if s.h != nil {
		return nil
	}
	h := sha256.New()
	if s.size > 0 && s.hashes[s.size] {
		b, err := r.d.GetContent(ctx, hashStatePath(s.name, s.id, s.size))
		if err == nil && h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b) == nil {
			s.h = h
			return nil
		}
		h = sha256.New() // unreadable: hash the chunks instead
	}
	if err := r.hashChunks(ctx, s, h); err != nil {
		return err
	}
	s.h = h
	return nil
}

func (r *Registry) hashChunks(ctx context.Context, s *session, h hash.Hash) error {
	for _, p := range s.chunkPaths() {
		rc, _, err := r.d.Reader(ctx, p)
		if err != nil {
			return fmt.Errorf("reading upload %s: %w", s.id, err)
		}
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("hashing upload %s: %w", s.id, err)
		}
	}
	return nil
}

// saveHash stores the running sha256 after s.size bytes. It is only a
// shortcut: when it fails, the next request hashes the chunks again.
func (r *Registry) saveHash(ctx context.Context, s *session) {
	b, err := s.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err == nil {
		_ = r.d.PutContent(storage.NoSync(ctx), hashStatePath(s.name, s.id, s.size), b)
	}
}

func cloneHash(h hash.Hash) hash.Hash {
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic("sha256 state does not marshal: " + err.Error())
	}
	c := sha256.New()
	if err := c.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
		panic("sha256 state does not unmarshal: " + err.Error())
	}
	return c
}

// uploadDigest is the digest of the session's bytes with algorithm.
func (r *Registry) uploadDigest(ctx context.Context, s *session, algorithm string) (reference.Digest, error) {
	if algorithm == "sha256" {
		if err := r.resumeHash(ctx, s); err != nil {
			return "", err
		}
		return reference.FromHash(algorithm, s.h), nil
	}
	h := reference.NewHash(algorithm)
	if err := r.hashChunks(ctx, s, h); err != nil {
		return "", err
	}
	return reference.FromHash(algorithm, h), nil
}
