// Package auth is octoserve's access control: HTTP basic authentication
// against a bcrypt htpasswd file, per-repository access rules from the
// configuration, and rate limiting of failed logins. It plugs into the API
// in one place, as an api.Guard run before every routed handler, which
// identifies the caller once per request and puts it in the request's
// context, plus an api.Permit that reads it there when one request
// touches other repositories (the catalog, and a mount's source).
package auth

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/httplog"
	"github.com/octoserve/octoserve/internal/ocierr"
)

// Authenticator checks credentials and access rules.
type Authenticator struct {
	realm    string
	policy   *policy
	limit    *limiter
	cache    *verified
	log      *slog.Logger
	hashes   // the htpasswd file's hashes and the dummies that hide them
	inFlight *clientChecks
	// bcrypts bounds concurrent bcrypt checks to the CPUs, so a flood of
	// logins from many addresses queues instead of starving the server.
	bcrypts chan struct{}
	// compare is bcrypt.CompareHashAndPassword; tests count and hold the
	// calls through it.
	compare func(hash, pass []byte) error
	// failedLogins and rateLimited count refusals since start, for the
	// metrics (FailedLogins, RateLimited).
	failedLogins, rateLimited atomic.Uint64
}

// New loads the htpasswd file named by c and compiles c's rules. Users
// the rules mention but the htpasswd file lacks are logged as a warning:
// they can never log in, which fails closed.
func New(c config.Auth, log *slog.Logger) (*Authenticator, error) {
	if c.Htpasswd == "" {
		return nil, fmt.Errorf("auth.htpasswd must be set")
	}
	users, err := LoadHtpasswd(c.Htpasswd)
	if err != nil {
		return nil, err
	}
	return newAuthenticator(c, users, log)
}

func newAuthenticator(c config.Auth, users map[string][]byte, log *slog.Logger) (*Authenticator, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	realm := c.Realm
	if realm == "" {
		realm = "octoserve"
	}
	if strings.ContainsAny(realm, "\"\\\r\n") {
		return nil, fmt.Errorf("auth.realm must not contain quotes, backslashes or newlines")
	}
	pol, unknown, err := newPolicy(c.Rules, c.Groups, users)
	if err != nil {
		return nil, err
	}
	if len(unknown) > 0 {
		log.Warn("auth rules name users that are not in the htpasswd file", "users", strings.Join(unknown, ","))
	}
	h, err := newHashes(users)
	if err != nil {
		return nil, err
	}
	if cheaper := h.belowTopCost(); len(cheaper) > 0 {
		log.Warn("the htpasswd file mixes bcrypt costs: every password check runs one bcrypt at each cost so that timing reveals no user; "+
			"rehash these users' entries at the highest cost to make checks cheaper",
			"costs", h.costList(), "users", strings.Join(cheaper, ","))
	}
	fl := c.FailedLogins
	return &Authenticator{
		realm:    realm,
		policy:   pol,
		limit:    newLimiter(fl.Burst, fl.PerMinute, fl.MaxClients),
		cache:    newVerified(verifiedEntries, 5*time.Minute),
		log:      log,
		hashes:   h,
		inFlight: newClientChecks(),
		bcrypts:  make(chan struct{}, runtime.GOMAXPROCS(0)),
		compare:  bcryptCompare,
	}, nil
}

// APIOptions returns the options that put a in front of an api.API.
func (a *Authenticator) APIOptions() []api.Option {
	return []api.Option{api.WithGuard(a.Guard), api.WithPermit(a.Permit)}
}

// Guard is the api.Guard: it identifies the caller, checks the route's
// action against the rules and passes the caller on in the request's
// context. Anonymous callers refused get 401 with a Basic challenge (also
// on /v2/, so that clients log in); authenticated callers refused get 403
// DENIED; a client with too many failed logins gets 429 TOOMANYREQUESTS.
func (a *Authenticator) Guard(w http.ResponseWriter, r *http.Request, rt api.Route) (*http.Request, bool) {
	user, f := a.authenticate(r)
	if f == nil {
		f = a.authorize(r, user, rt)
	}
	if f != nil {
		a.refuse(w, f)
		return nil, false
	}
	httplog.SetUser(r.Context(), user)
	return r.WithContext(api.WithCaller(r.Context(), user)), true
}

// FailedLogins counts requests refused because their credentials were
// wrong (or unusable) since the process started.
func (a *Authenticator) FailedLogins() uint64 { return a.failedLogins.Load() }

// RateLimited counts requests refused with 429 because their client had
// too many failed logins, since the process started.
func (a *Authenticator) RateLimited() uint64 { return a.rateLimited.Load() }

// RequireUser serves next only to requests with credentials of a user in
// the htpasswd file, whatever the rules say (the metrics address has no
// repositories to guard); others get 401 with a Basic challenge. Failed
// logins count against the client's limit, as on the API.
func (a *Authenticator) RequireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, f := a.authenticate(r)
		if f == nil && user == "" {
			f = unauthorized("authentication required")
		}
		if f != nil {
			a.refuse(w, f)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Permit is the api.Permit: whether the caller Guard admitted, found in
// ctx, may do access to repository name. Without a caller in ctx (a
// request the Guard never saw) nothing is permitted.
func (a *Authenticator) Permit(ctx context.Context, name string, access api.Access) bool {
	user, ok := api.Caller(ctx)
	return ok && name != "" && a.policy.allowed(user, name, access)
}

// authorize decides whether user may do what r does on rt.
func (a *Authenticator) authorize(r *http.Request, user string, rt api.Route) *refusal {
	switch rt.Kind {
	case api.KindBase:
		if user == "" {
			return unauthorized("authentication required")
		}
		return nil
	case api.KindCatalog:
		// The handler lists only what the caller may pull (Permit).
		if user == "" && !a.policy.anonymousPulls() {
			return unauthorized("authentication required")
		}
		return nil
	}
	access := rt.Access(r.Method)
	if a.policy.allowed(user, rt.Name, access) {
		return nil
	}
	if user == "" {
		return unauthorized("authentication required")
	}
	a.log.InfoContext(r.Context(), "access denied", "user", user, "repository", rt.Name, "action", actionName(access), "remote", r.RemoteAddr)
	return &refusal{err: ocierr.New(ocierr.Denied, http.StatusForbidden, "requested access to the resource is denied").
		WithDetail(map[string]string{"repository": rt.Name, "action": actionName(access)})}
}

func actionName(a api.Access) string {
	for n, v := range actionNames {
		if v == a {
			return n
		}
	}
	return "unknown"
}

func (a *Authenticator) refuse(w http.ResponseWriter, f *refusal) {
	switch f.err.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="`+a.realm+`"`)
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
	}
	ocierr.Write(w, f.err)
}

// refusal is an error response, with Retry-After seconds for a 429.
type refusal struct {
	err        *ocierr.Error
	retryAfter int
}

func unauthorized(msg string) *refusal {
	return &refusal{err: ocierr.New(ocierr.Unauthorized, http.StatusUnauthorized, "%s", msg)}
}

func tooManyRequests(retryAfter int, format string, args ...any) *refusal {
	return &refusal{err: ocierr.New(ocierr.TooManyRequests, http.StatusTooManyRequests, format, args...), retryAfter: retryAfter}
}
