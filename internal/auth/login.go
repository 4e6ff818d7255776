package auth

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"sync"
)

// maxPasswordBytes is what bcrypt reads of a password: bytes past it
// change nothing, so a password over it cannot be checked whole.
const maxPasswordBytes = 72

// ValidatePassword says why a password cannot be checked whole by bcrypt,
// or nil. bcrypt reads only the first 72 bytes, and treats a NUL byte as
// the end of a C string (Go's bcrypt finds "a\x00a" equal to "a"; RFC 7617
// forbids control characters in Basic credentials anyway), so such a
// password would let other strings log in as well. The server refuses
// them at login without a check, and `octoserve htpasswd` refuses to hash
// them.
func ValidatePassword(pass string) error {
	switch {
	case len(pass) > maxPasswordBytes:
		return errors.New("the password is longer than the 72 bytes bcrypt checks")
	case strings.IndexByte(pass, 0) >= 0:
		return errors.New("the password holds a NUL byte, which bcrypt takes for its end")
	}
	return nil
}

// authenticate returns the caller's user name, "" for an anonymous caller,
// or the error to refuse the request with.
//
// No Authorization header, and Basic credentials with an empty user and
// an empty password (what containers/image sends after a challenge when
// it has no credentials), are anonymous. Otherwise credentials are either
// verified recently (cached), or they take a token from the client's
// failed-login bucket before anything is checked: a client without one
// gets 429 at once, so concurrent guesses cannot outrun the limit. A
// verified login gives its token back; a failure keeps it and is logged
// with user and address, never the password.
func (a *Authenticator) authenticate(r *http.Request) (string, *refusal) {
	if r.Header.Get("Authorization") == "" {
		return "", nil
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		a.failedLogins.Add(1)
		return "", unauthorized("unsupported Authorization header: use basic authentication")
	}
	if user == "" && pass == "" {
		return "", nil
	}
	if a.cache.has(user, pass) {
		return user, nil
	}
	client := clientKey(r.RemoteAddr)
	if ok, wait := a.limit.take(client); !ok {
		a.rateLimited.Add(1)
		a.log.WarnContext(r.Context(), "login refused: too many failed logins", "user", user, "remote", client)
		secs := max(1, int(math.Ceil(wait.Seconds())))
		return "", tooManyRequests(secs, "too many failed logins; retry in %d seconds", secs)
	}
	if err := ValidatePassword(pass); err != nil {
		a.failedLogins.Add(1)
		a.log.WarnContext(r.Context(), "login failed", "user", user, "remote", client, "reason", err.Error())
		return "", unauthorized("invalid username or password")
	}
	good, err := a.verify(r.Context(), client, user, pass)
	if err != nil {
		a.limit.refund(client) // nothing was checked
		return "", tooManyRequests(1, "login not checked: %v", err)
	}
	if !good {
		a.failedLogins.Add(1)
		a.log.WarnContext(r.Context(), "login failed", "user", user, "remote", client)
		return "", unauthorized("invalid username or password")
	}
	a.limit.refund(client)
	return user, nil
}

// verify checks a password, one check per client address at a time: the
// client's other checks wait for it, so that one address flooding the
// server with guesses holds at most one bcrypt worker, and a login from
// another address gets the next free one instead of queueing behind the
// flood. A check that waited looks at the cache again: the request it
// waited for may have verified the same credentials.
func (a *Authenticator) verify(ctx context.Context, client, user, pass string) (bool, error) {
	leave, err := a.inFlight.enter(ctx, client)
	if err != nil {
		return false, err
	}
	defer leave()
	if a.cache.has(user, pass) {
		return true, nil
	}
	good, err := a.check(ctx, user, pass)
	if good {
		a.cache.add(user, pass)
	}
	return good, err
}

// clientChecks admits one password check per client address at a time.
// Entries live only while a check of the client is in progress or
// waiting, and each waiting check holds one of its client's failed-login
// tokens, so the map stays as small as the requests in progress.
type clientChecks struct {
	mu sync.Mutex
	m  map[string]*clientCheck
}

type clientCheck struct {
	turn    chan struct{} // holds a value while a check runs
	waiting int           // checks holding or waiting for turn
}

func newClientChecks() *clientChecks { return &clientChecks{m: map[string]*clientCheck{}} }

// enter waits for client's turn, or for ctx to end; leave ends the turn.
func (c *clientChecks) enter(ctx context.Context, client string) (leave func(), err error) {
	c.mu.Lock()
	e := c.m[client]
	if e == nil {
		e = &clientCheck{turn: make(chan struct{}, 1)}
		c.m[client] = e
	}
	e.waiting++
	c.mu.Unlock()
	done := func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if e.waiting--; e.waiting == 0 {
			delete(c.m, client)
		}
	}
	select {
	case e.turn <- struct{}{}:
		return func() { <-e.turn; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}
