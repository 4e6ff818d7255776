package api

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/storage"
)

func blobLocation(name, digest string) string { return "/v2/" + name + "/blobs/" + digest }

func (a *API) getBlob(w http.ResponseWriter, r *http.Request, rt Route) error {
	d, err := digestParam(rt.Ref)
	if err != nil {
		return err
	}
	if r.Method == http.MethodGet {
		if u, err := a.reg.BlobURL(r.Context(), rt.Name, d); err != nil && !isBlobUnknown(err) {
			return err
		} else if u != "" {
			// The store serves the bytes (storage.s3.redirect): the pull
			// bypasses this process. A blob only a pull-through cache
			// would fetch is not stored yet, and is served below.
			h := w.Header()
			h.Set("Location", u)
			h.Set("Docker-Content-Digest", d.String())
			w.WriteHeader(http.StatusTemporaryRedirect)
			return nil
		}
	}
	rc, info, err := a.openBlob(r, rt.Name, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := checkRange(r.Header.Get("Range"), info.Size); err != nil {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(info.Size, 10))
		return err
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	// ServeContent handles Range, HEAD and conditional requests; blobWriter
	// picks sendfile or plain writes for the body (see blobcopy.go).
	out, done := a.blobWriter(w)
	defer done()
	http.ServeContent(out, r, "", time.Time{}, rc)
	return nil
}

// openBlob opens the blob a GET reads; a HEAD needs only its size, which
// a pull-through cache can learn without fetching the blob.
func (a *API) openBlob(r *http.Request, name string, d reference.Digest) (io.ReadSeekCloser, storage.Info, error) {
	if r.Method != http.MethodHead {
		return a.content.OpenBlob(r.Context(), name, d)
	}
	size, err := a.content.StatBlob(r.Context(), name, d)
	if err != nil {
		return nil, storage.Info{}, err
	}
	return sizeOnly{io.NewSectionReader(nil, 0, size)}, storage.Info{Size: size}, nil
}

// sizeOnly answers http.ServeContent's seeks for a HEAD, which reads
// nothing.
type sizeOnly struct{ *io.SectionReader }

func (sizeOnly) Close() error { return nil }

func (a *API) deleteBlob(w http.ResponseWriter, r *http.Request, rt Route) error {
	d, err := digestParam(rt.Ref)
	if err != nil {
		return err
	}
	if err := a.reg.DeleteBlob(r.Context(), rt.Name, d); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// created answers 201 for a blob now stored in name.
func created(w http.ResponseWriter, name, digest string) {
	h := w.Header()
	h.Set("Location", blobLocation(name, digest))
	h.Set("Docker-Content-Digest", digest)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// errBodyTooLarge is returned when a request body exceeds a limit.
func errBodyTooLarge(limit int64) error {
	return ocierr.New(ocierr.SizeInvalid, http.StatusRequestEntityTooLarge, "%s", fmt.Sprintf("body exceeds %d bytes", limit))
}

func isBlobUnknown(err error) bool {
	e, ok := ocierr.As(err)
	return ok && e.Code == ocierr.BlobUnknown
}
