package api

import (
	"io"
	"mime"
	"net/http"
	"strconv"
)

func (a *API) getManifest(w http.ResponseWriter, r *http.Request, rt Route) error {
	m, err := a.content.GetManifest(r.Context(), rt.Name, rt.Ref)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Docker-Content-Digest", m.Digest.String())
	h.Set("Content-Length", strconv.Itoa(len(m.Body)))
	h.Set("ETag", `"`+m.Digest.String()+`"`)
	if match := r.Header.Get("If-None-Match"); match != "" && match == h.Get("ETag") {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(m.Body)
	}
	return nil
}

func (a *API) putManifest(w http.ResponseWriter, r *http.Request, rt Route) error {
	limit := a.reg.MaxManifestBytes()
	if r.ContentLength > limit {
		return errBodyTooLarge(limit)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return err // the client's (see requestBody)
	}
	if int64(len(body)) > limit {
		return errBodyTooLarge(limit)
	}
	contentType := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		contentType = mt
	}
	res, err := a.reg.PutManifest(r.Context(), rt.Name, rt.Ref, contentType, body, r.URL.Query()["tag"])
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Location", "/v2/"+rt.Name+"/manifests/"+res.Digest.String())
	h.Set("Docker-Content-Digest", res.Digest.String())
	if res.Subject != "" {
		h.Set("OCI-Subject", res.Subject.String())
	}
	for _, t := range r.URL.Query()["tag"] {
		h.Add("OCI-Tag", t)
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (a *API) deleteManifest(w http.ResponseWriter, r *http.Request, rt Route) error {
	if err := a.reg.DeleteManifest(r.Context(), rt.Name, rt.Ref); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
