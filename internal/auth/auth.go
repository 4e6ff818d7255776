// Package auth is octoserve's access control: HTTP basic authentication
// against a bcrypt htpasswd file, per-repository access rules from the
// configuration, and rate limiting of failed logins. It plugs into the API
// in one place, as an api.Guard run before every routed handler, plus an
// api.Permit the API asks where one request touches other repositories
// (the catalog, and a mount's source).
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/ocierr"
)

// Authenticator checks credentials and access rules.
type Authenticator struct {
	realm  string
	users  map[string][]byte // user -> bcrypt hash
	dummy  []byte            // compared against for unknown users
	policy *policy
	limit  *limiter
	cache  *verified
	log    *slog.Logger
	// bcrypts bounds concurrent bcrypt checks to the CPUs, so a flood of
	// logins from many addresses queues instead of starving the server.
	bcrypts chan struct{}
	// compare is bcrypt.CompareHashAndPassword; tests count and hold the
	// calls through it.
	compare func(hash, pass []byte) error
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
	// The dummy hash has the highest cost in the file so that checking an
	// unknown user takes as long as checking a real one.
	cost := 0
	for _, h := range users {
		if c, err := bcrypt.Cost(h); err == nil && c > cost {
			cost = c
		}
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("octoserve-dummy-password"), cost)
	if err != nil {
		return nil, fmt.Errorf("preparing password checks: %w", err)
	}
	fl := c.FailedLogins
	return &Authenticator{
		realm:   realm,
		users:   users,
		dummy:   dummy,
		policy:  pol,
		limit:   newLimiter(fl.Burst, fl.PerMinute, fl.MaxClients),
		cache:   newVerified(4096, 5*time.Minute),
		log:     log,
		bcrypts: make(chan struct{}, runtime.GOMAXPROCS(0)),
		compare: bcrypt.CompareHashAndPassword,
	}, nil
}

// APIOptions returns the options that put a in front of an api.API.
func (a *Authenticator) APIOptions() []api.Option {
	return []api.Option{api.WithGuard(a.Guard), api.WithPermit(a.Permit)}
}

// Guard is the api.Guard: it authenticates the caller and checks the
// route's action against the rules. Anonymous callers refused get 401 with
// a Basic challenge (also on /v2/, so that clients log in); authenticated
// callers refused get 403 DENIED; a client with too many failed logins
// gets 429 TOOMANYREQUESTS.
func (a *Authenticator) Guard(w http.ResponseWriter, r *http.Request, rt api.Route) bool {
	user, err := a.authenticate(r)
	if err != nil {
		a.refuse(w, err)
		return false
	}
	switch rt.Kind {
	case api.KindBase:
		if user == "" {
			a.refuse(w, unauthorized("authentication required"))
			return false
		}
		return true
	case api.KindCatalog:
		// The handler lists only what the caller may pull (Permit).
		if user == "" && !a.policy.anonymousPulls() {
			a.refuse(w, unauthorized("authentication required"))
			return false
		}
		return true
	}
	access := rt.Access(r.Method)
	if a.policy.allowed(user, rt.Name, access) {
		return true
	}
	if user == "" {
		a.refuse(w, unauthorized("authentication required"))
		return false
	}
	a.log.Info("access denied", "user", user, "repository", rt.Name, "action", actionName(access), "remote", r.RemoteAddr)
	a.refuse(w, &refusal{err: ocierr.New(ocierr.Denied, http.StatusForbidden, "requested access to the resource is denied").
		WithDetail(map[string]string{"repository": rt.Name, "action": actionName(access)})})
	return false
}

// Permit is the api.Permit: whether the caller of r, already admitted by
// Guard, may do access to repository name.
func (a *Authenticator) Permit(r *http.Request, name string, access api.Access) bool {
	if name == "" {
		return false
	}
	user, ok := a.identify(r)
	return ok && a.policy.allowed(user, name, access)
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

// authenticate returns the caller's user name, "" for an anonymous caller,
// or the error to refuse the request with. Failures count against the
// client's rate limit and are logged with user and address, never with
// the password.
func (a *Authenticator) authenticate(r *http.Request) (string, *refusal) {
	if r.Header.Get("Authorization") == "" {
		return "", nil
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return "", unauthorized("unsupported Authorization header: use basic authentication")
	}
	if a.cache.has(user, pass) {
		return user, nil
	}
	client := clientKey(r.RemoteAddr)
	if blocked, wait := a.limit.blocked(client); blocked {
		a.log.Warn("login refused: too many failed logins", "user", user, "remote", client)
		secs := max(1, int(math.Ceil(wait.Seconds())))
		return "", &refusal{err: ocierr.New(ocierr.TooManyRequests, http.StatusTooManyRequests,
			"too many failed logins; retry in %d seconds", secs), retryAfter: secs}
	}
	if !a.check(user, pass) {
		a.limit.fail(client)
		a.log.Warn("login failed", "user", user, "remote", client)
		return "", unauthorized("invalid username or password")
	}
	a.cache.add(user, pass)
	return user, nil
}

// identify is authenticate without rate limiting or logging, for a caller
// Guard already admitted.
func (a *Authenticator) identify(r *http.Request) (string, bool) {
	if r.Header.Get("Authorization") == "" {
		return "", true
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return "", false
	}
	if a.cache.has(user, pass) || a.check(user, pass) {
		return user, true
	}
	return "", false
}

// check verifies a password in constant time: bcrypt compares in constant
// time, and an unknown user is checked against a dummy hash of the same
// cost so that it takes as long as a known one.
func (a *Authenticator) check(user, pass string) bool {
	hash, known := a.users[user]
	if !known {
		hash = a.dummy
	}
	a.bcrypts <- struct{}{}
	err := a.compare(hash, []byte(pass))
	<-a.bcrypts
	return known && err == nil
}

// refusal is an error response, with Retry-After seconds for a 429.
type refusal struct {
	err        *ocierr.Error
	retryAfter int
}

func unauthorized(msg string) *refusal {
	return &refusal{err: ocierr.New(ocierr.Unauthorized, http.StatusUnauthorized, "%s", msg)}
}

// verified remembers recently verified credentials for a while so that a
// client's every request does not pay for a bcrypt check. Entries are
// keyed by an HMAC of user and password under a per-process random key,
// so the map never holds a password or a reusable hash of one.
type verified struct {
	mu  sync.Mutex
	key [32]byte
	max int
	ttl time.Duration
	m   map[[32]byte]time.Time
	now func() time.Time
}

func newVerified(max int, ttl time.Duration) *verified {
	v := &verified{max: max, ttl: ttl, m: map[[32]byte]time.Time{}, now: time.Now}
	_, _ = rand.Read(v.key[:])
	return v
}

func (v *verified) sum(user, pass string) [32]byte {
	h := hmac.New(sha256.New, v.key[:])
	h.Write([]byte(strconv.Itoa(len(user))))
	h.Write([]byte{0})
	h.Write([]byte(user))
	h.Write([]byte(pass))
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func (v *verified) has(user, pass string) bool {
	k := v.sum(user, pass)
	v.mu.Lock()
	defer v.mu.Unlock()
	exp, ok := v.m[k]
	if ok && v.now().After(exp) {
		delete(v.m, k)
		return false
	}
	return ok
}

func (v *verified) add(user, pass string) {
	k := v.sum(user, pass)
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	if len(v.m) >= v.max {
		for key, exp := range v.m {
			if now.After(exp) {
				delete(v.m, key)
			}
		}
		if len(v.m) >= v.max {
			clear(v.m)
		}
	}
	v.m[k] = now.Add(v.ttl)
}
