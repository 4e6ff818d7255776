package api

import (
	"net/http"
	"strings"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
)

// Kind names the resource a request addresses.
type Kind int

// The resources of the distribution API.
const (
	KindBase      Kind = iota // /v2/
	KindCatalog               // /v2/_catalog
	KindBlob                  // /v2/<name>/blobs/<digest>
	KindUpload                // /v2/<name>/blobs/uploads/<id>; id "" starts one
	KindManifest              // /v2/<name>/manifests/<reference>
	KindTags                  // /v2/<name>/tags/list
	KindReferrers             // /v2/<name>/referrers/<digest>
)

// Access is what a request does to its repository; auth decides on it.
type Access int

// Access levels, from least to most powerful.
const (
	AccessPull Access = iota
	AccessPush
	AccessDelete
)

// Route is a parsed request path: the resource, its repository and the
// last path element (digest, reference or upload id).
type Route struct {
	Kind Kind
	Name string
	Ref  string
}

// Access returns what method does to the route's repository. Every
// request on an upload session is part of a push.
func (rt Route) Access(method string) Access {
	if rt.Kind == KindUpload {
		return AccessPush
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		return AccessPull
	case http.MethodDelete:
		return AccessDelete
	}
	return AccessPush
}

func errNotFound() *ocierr.Error {
	return ocierr.New(ocierr.Unsupported, http.StatusNotFound, "no such endpoint")
}

// ParseRoute maps a decoded URL path onto a Route. Repository names contain
// slashes, so the resource is found from the end of the path; a name
// component never starts with '_' or holds "/blobs/" ambiguously because
// the last elements decide.
func ParseRoute(path string) (Route, error) {
	rt, ok := routeShape(path)
	if !ok {
		return Route{}, errNotFound()
	}
	if rt.Kind == KindBase || rt.Kind == KindCatalog {
		return rt, nil
	}
	if err := reference.ValidateName(rt.Name); err != nil {
		return Route{}, ocierr.New(ocierr.NameInvalid, http.StatusBadRequest, "invalid repository name").WithDetail(err.Error())
	}
	return rt, nil
}

// KindOf is the kind of resource path addresses, judged by the path's
// shape alone: ParseRoute without validating the repository name, cheap
// enough for every request's metrics.
func KindOf(path string) (Kind, bool) {
	rt, ok := routeShape(path)
	return rt.Kind, ok
}

// routeShape is ParseRoute up to the repository name, which it does not
// validate.
func routeShape(path string) (Route, bool) {
	if path == "/v2" || path == "/v2/" {
		return Route{Kind: KindBase}, true
	}
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return Route{}, false
	}
	if rest == "_catalog" {
		return Route{Kind: KindCatalog}, true
	}
	seg := strings.Split(rest, "/")
	n := len(seg)
	var rt Route
	var nameEnd int
	switch {
	case n >= 3 && seg[n-3] == "blobs" && seg[n-2] == "uploads":
		rt, nameEnd = Route{Kind: KindUpload, Ref: seg[n-1]}, n-3
	case n >= 3 && seg[n-2] == "blobs" && seg[n-1] == "uploads":
		rt, nameEnd = Route{Kind: KindUpload}, n-2
	case n >= 3 && seg[n-2] == "blobs":
		rt, nameEnd = Route{Kind: KindBlob, Ref: seg[n-1]}, n-2
	case n >= 3 && seg[n-2] == "manifests":
		rt, nameEnd = Route{Kind: KindManifest, Ref: seg[n-1]}, n-2
	case n >= 3 && seg[n-2] == "tags" && seg[n-1] == "list":
		rt, nameEnd = Route{Kind: KindTags}, n-2
	case n >= 3 && seg[n-2] == "referrers":
		rt, nameEnd = Route{Kind: KindReferrers, Ref: seg[n-1]}, n-2
	default:
		return Route{}, false
	}
	if rt.Ref == "" && rt.Kind != KindUpload && rt.Kind != KindTags {
		return Route{}, false // "/blobs/", "/manifests/": found by fuzzing
	}
	rt.Name = strings.Join(seg[:nameEnd], "/")
	return rt, true
}
