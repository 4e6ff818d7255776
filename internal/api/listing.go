package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/octoserve/octoserve/internal/registry"
)

func writeJSON(w http.ResponseWriter, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

func (a *API) tags(w http.ResponseWriter, r *http.Request, rt Route) error {
	n, last, err := pageParams(r.URL.Query())
	if err != nil {
		return err
	}
	tags, more, err := a.reg.Tags(r.Context(), rt.Name, n, last)
	if err != nil {
		return err
	}
	if more && len(tags) > 0 {
		setNextLink(w, r.URL.Path, n, tags[len(tags)-1])
	}
	if tags == nil {
		tags = []string{}
	}
	return writeJSON(w, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.Name, tags})
}

func (a *API) catalog(w http.ResponseWriter, r *http.Request, _ Route) error {
	n, last, err := pageParams(r.URL.Query())
	if err != nil {
		return err
	}
	var repos []string
	var more bool
	if a.permit == nil {
		repos, more, err = a.reg.Repositories(r.Context(), n, last)
	} else {
		repos, _, err = a.reg.Repositories(r.Context(), -1, "")
		repos, more = a.filterPage(r, repos, n, last)
	}
	if err != nil {
		return err
	}
	if more && len(repos) > 0 {
		setNextLink(w, r.URL.Path, n, repos[len(repos)-1])
	}
	if repos == nil {
		repos = []string{}
	}
	return writeJSON(w, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{repos})
}

func (a *API) referrers(w http.ResponseWriter, r *http.Request, rt Route) error {
	d, err := digestParam(rt.Ref)
	if err != nil {
		return err
	}
	artifactType := r.URL.Query().Get("artifactType")
	descs, err := a.reg.Referrers(r.Context(), rt.Name, d, artifactType)
	if err != nil {
		return err
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, registry.MediaTypeOCIIndex, struct {
		SchemaVersion int                   `json:"schemaVersion"`
		MediaType     string                `json:"mediaType"`
		Manifests     []registry.Descriptor `json:"manifests"`
	}{2, registry.MediaTypeOCIIndex, descs})
}
