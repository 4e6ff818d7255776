package api

import (
	"context"
	"net/http"

	"github.com/octoserve/octoserve/internal/reference"
)

// Permit reports whether the caller may do access to repository name.
// The caller is the one the Guard identified and put in ctx (the
// request's context), so asking costs no password check however many
// repositories a request reaches. The Guard admits a request for its own
// route; the API asks Permit where a request reaches other repositories:
// the catalog lists only repositories the caller may pull, and a mount's
// source must be pullable.
type Permit func(ctx context.Context, name string, access Access) bool

// WithPermit installs p; without one, every repository is permitted.
func WithPermit(p Permit) Option { return func(a *API) { a.permit = p } }

// permitted asks the Permit, if any.
func (a *API) permitted(r *http.Request, name string, access Access) bool {
	return a.permit == nil || a.permit(r.Context(), name, access)
}

// mountSource says which repository to mount d from, and whether to try.
// Without "from" and with automatic mounting off there is nothing to try.
// With a Permit installed the caller must be allowed to pull the source;
// a refused source is treated as one that lacks the blob, so the client
// gets an ordinary upload session and learns nothing. A mount without
// "from" then takes the first repository the caller may pull that holds
// d, instead of any blob in the registry; the repositories holding d are
// one listing beside the blob, not a scan of every repository.
func (a *API) mountSource(ctx context.Context, r *http.Request, from string, d reference.Digest) (string, bool, error) {
	if from == "" && a.noAutomaticMount {
		return "", false, nil
	}
	if a.permit == nil {
		return from, true, nil
	}
	if from != "" {
		return from, a.permit(ctx, from, AccessPull), nil
	}
	repos, err := a.reg.RepositoriesLinking(ctx, d)
	if err != nil {
		return "", false, err
	}
	for _, repo := range repos {
		if a.permit(ctx, repo, AccessPull) {
			return repo, true, nil
		}
	}
	return "", false, nil
}

// filterPage keeps the names the caller may pull and paginates them: up
// to n (all when n < 0) after last, and whether more follow.
func (a *API) filterPage(r *http.Request, sorted []string, n int, last string) ([]string, bool) {
	var page []string
	for _, name := range sorted {
		if last != "" && name <= last {
			continue
		}
		if !a.permitted(r, name, AccessPull) {
			continue
		}
		if n >= 0 && len(page) == n {
			return page, true
		}
		page = append(page, name)
	}
	return page, false
}
