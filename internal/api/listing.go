package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
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

// referrers serves one page of a subject's referrers: an image index
// written from the stored descriptors as they are, with a Link to the
// next page when the list does not fit in one (see
// registry.ListReferrers for the bounds).
func (a *API) referrers(w http.ResponseWriter, r *http.Request, rt Route) error {
	d, err := digestParam(rt.Ref)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	artifactType := q.Get("artifactType")
	page, err := a.reg.ListReferrers(r.Context(), rt.Name, d, registry.ReferrersQuery{ArtifactType: artifactType, After: q.Get("last")})
	if err != nil {
		return err
	}
	h := w.Header()
	if artifactType != "" {
		h.Set("OCI-Filters-Applied", "artifactType")
	}
	if page.Next != "" {
		next := url.Values{"last": {page.Next}}
		if artifactType != "" {
			next.Set("artifactType", artifactType)
		}
		h.Set("Link", "<"+r.URL.Path+"?"+next.Encode()+`>; rel="next"`)
	}
	head := `{"schemaVersion":2,"mediaType":"` + registry.MediaTypeOCIIndex + `","manifests":[`
	size := len(head) + len("]}")
	for i, desc := range page.Descriptors {
		size += len(desc)
		if i > 0 {
			size++
		}
	}
	h.Set("Content-Type", registry.MediaTypeOCIIndex)
	h.Set("Content-Length", strconv.Itoa(size))
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, head); err != nil {
		return nil // the client went away; the status is sent
	}
	for i, desc := range page.Descriptors {
		if i > 0 {
			_, _ = io.WriteString(w, ",")
		}
		if _, err := w.Write(desc); err != nil {
			return nil
		}
	}
	_, _ = io.WriteString(w, "]}")
	return nil
}
