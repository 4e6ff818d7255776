// Package api serves the distribution spec's HTTP API. Handlers are thin:
// they parse the request, call the registry and write headers; every error
// is rendered by ocierr.Write in ServeHTTP.
package api

import (
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage"
)

// handlerFunc serves one method on one kind of route.
type handlerFunc func(w http.ResponseWriter, r *http.Request, rt Route) error

// Guard decides whether a request may proceed. It admits a request by
// returning it, with what the guard learned about the caller in its
// context (for the Permit), and true; it refuses one by writing the
// refusal itself and returning false. Auth plugs in here: the caller is
// identified once per request, by the Guard.
type Guard func(w http.ResponseWriter, r *http.Request, rt Route) (*http.Request, bool)

// API is the HTTP front of a registry.
type API struct {
	reg    *registry.Registry
	guard  Guard
	permit Permit
	log    *slog.Logger
	routes map[Kind]map[string]handlerFunc
	// noAutomaticMount answers a mount without "from" with an upload
	// session, as a registry without automatic content discovery does.
	noAutomaticMount bool
	// content serves pulls: reg, or a mirror in front of it (mirror.go).
	content Content
	mirror  Mirror
	// blobSends counts blob bodies being sent (blobcopy.go).
	blobSends atomic.Int64
}

// Option configures an API.
type Option func(*API)

// WithLogger logs internal errors to log (default: discarded).
func WithLogger(log *slog.Logger) Option { return func(a *API) { a.log = log } }

// WithAutomaticMount says whether a mount request without "from"
// (?mount=<digest> alone) mounts a blob the registry already holds (on,
// the default: 201 and no upload) or is answered like a mount from a
// repository that lacks it (off: 202 and an upload session).
func WithAutomaticMount(on bool) Option { return func(a *API) { a.noAutomaticMount = !on } }

// WithGuard runs g before every routed request.
func WithGuard(g Guard) Option { return func(a *API) { a.guard = g } }

// New returns the API for reg.
func New(reg *registry.Registry, opts ...Option) *API {
	a := &API{reg: reg, log: slog.New(slog.DiscardHandler), content: reg}
	for _, o := range opts {
		o(a)
	}
	a.routes = map[Kind]map[string]handlerFunc{
		KindBase:      {"GET": a.base, "HEAD": a.base},
		KindCatalog:   {"GET": a.catalog},
		KindBlob:      {"GET": a.getBlob, "HEAD": a.getBlob, "DELETE": a.deleteBlob},
		KindUpload:    {"POST": a.startUpload, "GET": a.uploadStatus, "PATCH": a.patchUpload, "PUT": a.putUpload, "DELETE": a.cancelUpload},
		KindManifest:  {"GET": a.getManifest, "HEAD": a.getManifest, "PUT": a.putManifest, "DELETE": a.deleteManifest},
		KindTags:      {"GET": a.tags},
		KindReferrers: {"GET": a.referrers},
	}
	return a
}

// ServeHTTP routes the request, applies the guard and renders any error.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, err := ParseRoute(r.URL.Path)
	if err == nil {
		rt, err = a.mirrored(r, rt)
	}
	if err != nil {
		ocierr.Write(w, err)
		return
	}
	h, err := a.handler(w, r.Method, rt)
	if err != nil {
		ocierr.Write(w, err)
		return
	}
	if a.guard != nil {
		var ok bool
		if r, ok = a.guard(w, r, rt); !ok {
			return
		}
	}
	if err := a.checkWrite(r.Method, rt); err != nil {
		ocierr.Write(w, err)
		return
	}
	wrapBody(r, rt.Kind)
	if err := h(w, r, rt); err != nil {
		a.fail(w, r, err)
	}
}

// fail renders err. Errors the client caused are *ocierr.Error already
// (a request body that failed to arrive is logged here as the client's
// error); a full disk becomes 507; anything else is logged here and
// answered 500 without internal detail.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var be *bodyError
	if errors.As(err, &be) {
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "client error: request body incomplete",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("remote", r.RemoteAddr), slog.String("error", be.cause.Error()))
	} else if _, ok := ocierr.As(err); !ok {
		a.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
		if errors.Is(err, storage.ErrNoSpace) {
			err = ocierr.New(ocierr.Unknown, http.StatusInsufficientStorage, "insufficient storage: the registry is out of disk space; nothing of this request was stored")
		}
	}
	ocierr.Write(w, err)
}

func (a *API) handler(w http.ResponseWriter, method string, rt Route) (handlerFunc, error) {
	methods := a.routes[rt.Kind]
	if h, ok := methods[method]; ok && !(rt.Kind == KindUpload && (method == "POST") != (rt.Ref == "")) {
		return h, nil
	}
	var allowed []string
	for m := range methods {
		if rt.Kind != KindUpload || (m == "POST") == (rt.Ref == "") {
			allowed = append(allowed, m)
		}
	}
	sort.Strings(allowed)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	return nil, ocierr.New(ocierr.Unsupported, http.StatusMethodNotAllowed, "method %s not allowed here", method)
}

func (a *API) base(w http.ResponseWriter, _ *http.Request, _ Route) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	_, err := w.Write([]byte("{}"))
	return err
}
