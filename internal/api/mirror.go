package api

import (
	"context"
	"io"
	"net/http"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage"
)

// Content is what pulls read: the registry itself, or a pull-through
// cache in front of it that fetches from upstream what it lacks.
type Content interface {
	GetManifest(ctx context.Context, name, ref string) (*registry.Manifest, error)
	StatBlob(ctx context.Context, name string, d reference.Digest) (int64, error)
	OpenBlob(ctx context.Context, name string, d reference.Digest) (io.ReadSeekCloser, storage.Info, error)
}

// Mirror is a pull-through cache (internal/proxy). Handlers do not know
// of it: the API asks it which repository a request means and whether it
// may write there, and reads pulls through it.
type Mirror interface {
	Content
	// Repository maps the repository a request names, and the ?ns= a
	// containerd mirror request carries, onto the repository it means.
	Repository(name, ns string) string
	// CheckWrite refuses a push or delete to a read-only cached
	// repository with an OCI error.
	CheckWrite(name string) error
}

// WithMirror serves pulls through m and lets it map names and refuse
// writes.
func WithMirror(m Mirror) Option {
	return func(a *API) {
		a.mirror = m
		a.content = m
	}
}

// mirrored applies the mirror's name mapping to rt.
func (a *API) mirrored(r *http.Request, rt Route) (Route, error) {
	if a.mirror == nil || rt.Name == "" {
		return rt, nil
	}
	name := a.mirror.Repository(rt.Name, r.URL.Query().Get("ns"))
	if name != rt.Name {
		if err := reference.ValidateName(name); err != nil {
			return rt, ocierr.New(ocierr.NameInvalid, http.StatusBadRequest, "invalid repository name %s", name).WithDetail(err.Error())
		}
		rt.Name = name
	}
	return rt, nil
}

// checkWrite asks the mirror whether method may change rt's repository.
func (a *API) checkWrite(method string, rt Route) error {
	if a.mirror == nil || rt.Name == "" || rt.Access(method) == AccessPull {
		return nil
	}
	return a.mirror.CheckWrite(rt.Name)
}
