package api

import (
	"net/http"
	"strconv"

	"github.com/octoserve/octoserve/internal/registry"
)

func uploadLocation(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

// uploadAccepted answers 202 describing upload id with size bytes received.
// Range is "0-<last byte>" without a unit, and "0-0" for an empty upload,
// as clients and the conformance suites expect.
func uploadAccepted(w http.ResponseWriter, name, id string, size int64, status int) {
	h := w.Header()
	h.Set("Location", uploadLocation(name, id))
	h.Set("Docker-Upload-UUID", id)
	h.Set("Range", "0-"+strconv.FormatInt(max(size-1, 0), 10))
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

// chunk describes the request body as an upload chunk.
func chunk(r *http.Request) (registry.Chunk, error) {
	start, length, err := parseContentRange(r.Header.Get("Content-Range"))
	if err != nil {
		return registry.Chunk{}, err
	}
	if length < 0 && r.ContentLength >= 0 {
		length = r.ContentLength
	}
	var body = r.Body
	if r.ContentLength == 0 {
		body = nil
	}
	return registry.Chunk{Body: body, Start: start, Length: length}, nil
}

func (a *API) startUpload(w http.ResponseWriter, r *http.Request, rt Route) error {
	ctx := r.Context()
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		d, err := digestParam(mount)
		if err != nil {
			return err
		}
		from := q.Get("from")
		if from != "" {
			if _, err := ParseRoute("/v2/" + from + "/tags/list"); err != nil {
				return err
			}
		}
		from, ok, err := a.mountSource(ctx, r, from, d)
		if err != nil {
			return err
		}
		if ok {
			ok, err = a.reg.MountBlob(ctx, rt.Name, from, d)
			if err != nil {
				return err
			}
		}
		if ok {
			created(w, rt.Name, d.String())
			return nil
		}
	} else if dg := q.Get("digest"); dg != "" {
		d, err := digestParam(dg)
		if err != nil {
			return err
		}
		c, err := chunk(r)
		if err != nil {
			return err
		}
		if err := a.reg.PutBlob(ctx, rt.Name, d, c); err != nil {
			return err
		}
		created(w, rt.Name, d.String())
		return nil
	}
	owner, _ := Caller(ctx) // "" without auth: no per-user cap
	id, err := a.reg.StartUpload(ctx, rt.Name, owner)
	if err != nil {
		return err
	}
	uploadAccepted(w, rt.Name, id, 0, http.StatusAccepted)
	return nil
}

func (a *API) uploadStatus(w http.ResponseWriter, r *http.Request, rt Route) error {
	size, err := a.reg.UploadSize(r.Context(), rt.Name, rt.Ref)
	if err != nil {
		return err
	}
	uploadAccepted(w, rt.Name, rt.Ref, size, http.StatusNoContent)
	return nil
}

func (a *API) patchUpload(w http.ResponseWriter, r *http.Request, rt Route) error {
	c, err := chunk(r)
	if err != nil {
		return err
	}
	if c.Body == nil {
		c.Body = http.NoBody
	}
	size, err := a.reg.AppendUpload(r.Context(), rt.Name, rt.Ref, c)
	if err != nil {
		return err
	}
	uploadAccepted(w, rt.Name, rt.Ref, size, http.StatusAccepted)
	return nil
}

func (a *API) putUpload(w http.ResponseWriter, r *http.Request, rt Route) error {
	d, err := digestParam(r.URL.Query().Get("digest"))
	if err != nil {
		return err
	}
	c, err := chunk(r)
	if err != nil {
		return err
	}
	if err := a.reg.FinishUpload(r.Context(), rt.Name, rt.Ref, d, c); err != nil {
		return err
	}
	created(w, rt.Name, d.String())
	return nil
}

func (a *API) cancelUpload(w http.ResponseWriter, r *http.Request, rt Route) error {
	if err := a.reg.CancelUpload(r.Context(), rt.Name, rt.Ref); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
