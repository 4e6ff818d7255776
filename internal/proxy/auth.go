package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The distribution spec's token authentication, as Docker Hub, ghcr.io and
// quay.io do it: a request without a token gets 401 with
//
//	WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry.example",scope="repository:library/alpine:pull"
//
// and the client gets a token for that scope from the realm (sending its
// credentials, if it has any, as basic auth; anonymously otherwise) and
// tries again with "Authorization: Bearer <token>". Tokens are kept per
// scope until shortly before they expire; once an upstream is known to
// want tokens, a token for a new scope is fetched before the first
// request instead of after a 401. An upstream that asks for Basic gets the
// configured credentials.

// authenticator holds one upstream's credentials and tokens.
type authenticator struct {
	client         *http.Client
	user, password string

	mu     sync.Mutex
	tokens map[string]token // by scope
	bearer *challenge       // the upstream's last Bearer challenge
	basic  bool             // the upstream asked for Basic
	fetch  flight[token]
}

type token struct {
	value   string
	expires time.Time
}

func newAuthenticator(client *http.Client, user, password string) *authenticator {
	return &authenticator{client: client, user: user, password: password, tokens: map[string]token{}}
}

// authorize adds what the upstream is known to want to req.
func (a *authenticator) authorize(ctx context.Context, req *http.Request, scope string) error {
	a.mu.Lock()
	tok, ok := a.tokens[scope]
	bearer, basic := a.bearer, a.basic
	a.mu.Unlock()
	switch {
	case ok && time.Now().Before(tok.expires):
	case bearer != nil:
		var err error
		if tok, err = a.token(ctx, bearer, scope); err != nil {
			return err
		}
	default:
		if basic && a.user != "" {
			req.SetBasicAuth(a.user, a.password)
		}
		return nil
	}
	req.Header.Set("Authorization", "Bearer "+tok.value)
	return nil
}

// challenged reads the challenge of a 401 and gets what it asks for; it
// reports whether the request is worth sending again.
func (a *authenticator) challenged(ctx context.Context, resp *http.Response, scope string) (bool, error) {
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		ch := parseChallenge(h)
		switch ch.scheme {
		case "bearer":
			realm, err := resp.Request.URL.Parse(ch.params["realm"])
			if ch.params["realm"] == "" || err != nil || (realm.Scheme != "http" && realm.Scheme != "https") {
				return false, fmt.Errorf("upstream's Bearer challenge has no usable realm: %q", h)
			}
			ch.params["realm"] = realm.String()
			a.mu.Lock()
			a.bearer = ch
			delete(a.tokens, scope) // refused: expired or revoked
			a.mu.Unlock()
			if _, err := a.token(ctx, ch, scope); err != nil {
				return false, err
			}
			return true, nil
		case "basic":
			if a.user == "" {
				return false, nil
			}
			a.mu.Lock()
			a.basic = true
			a.mu.Unlock()
			return true, nil
		}
	}
	return false, nil
}

// token returns a token for scope from ch's realm, fetching it once for
// concurrent callers.
func (a *authenticator) token(ctx context.Context, ch *challenge, scope string) (token, error) {
	a.mu.Lock()
	tok, ok := a.tokens[scope]
	a.mu.Unlock()
	if ok && time.Now().Before(tok.expires) {
		return tok, nil
	}
	return a.fetch.do(ctx, scope, func() (token, error) {
		tok, err := a.requestToken(ctx, ch, scope)
		if err == nil {
			a.mu.Lock()
			a.keep(scope, tok)
			a.mu.Unlock()
		}
		return tok, err
	})
}

// maxTokens bounds the tokens kept; past it, expired ones are dropped.
const maxTokens = 1024

// keep stores tok for scope; the caller holds mu.
func (a *authenticator) keep(scope string, tok token) {
	if len(a.tokens) >= maxTokens {
		now := time.Now()
		for s, t := range a.tokens {
			if !now.Before(t.expires) {
				delete(a.tokens, s)
			}
		}
	}
	a.tokens[scope] = tok
}

// tokenResponse is the token service's answer (Docker's and OAuth2's
// field names).
type tokenResponse struct {
	Token       string    `json:"token"`
	AccessToken string    `json:"access_token"`
	ExpiresIn   int       `json:"expires_in"`
	IssuedAt    time.Time `json:"issued_at"`
}

func (a *authenticator) requestToken(ctx context.Context, ch *challenge, scope string) (token, error) {
	q := url.Values{}
	if s := ch.params["service"]; s != "" {
		q.Set("service", s)
	}
	q.Set("scope", scope)
	realm := ch.params["realm"]
	sep := "?"
	if strings.Contains(realm, "?") {
		sep = "&"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm+sep+q.Encode(), nil)
	if err != nil {
		return token{}, err
	}
	if a.user != "" {
		req.SetBasicAuth(a.user, a.password)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return token{}, fmt.Errorf("token service %s: %w", realm, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return token{}, &statusError{status: resp.StatusCode, what: "token service " + realm}
	}
	var tr tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil {
		return token{}, fmt.Errorf("token service %s: %w", realm, err)
	}
	value := tr.Token
	if value == "" {
		value = tr.AccessToken
	}
	if value == "" {
		return token{}, fmt.Errorf("token service %s sent no token", realm)
	}
	life := time.Duration(tr.ExpiresIn) * time.Second
	if life <= 0 {
		life = time.Minute // the spec's default
	}
	// Kept for 90% of its life: the clocks of this host and the token
	// service's need not agree.
	return token{value: value, expires: time.Now().Add(life * 9 / 10)}, nil
}

// challenge is a parsed WWW-Authenticate header.
type challenge struct {
	scheme string // lower case
	params map[string]string
}

// parseChallenge reads `Scheme k="v",k2=v2`; quoted values may hold
// commas and escaped quotes.
func parseChallenge(h string) *challenge {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	ch := &challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
	for rest = strings.TrimSpace(rest); rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var value string
		value, rest = readParamValue(strings.TrimSpace(after))
		ch.params[key] = value
		rest = strings.TrimLeft(rest, ", ")
	}
	return ch
}

// readParamValue reads a quoted or bare value and returns it with what
// follows it.
func readParamValue(s string) (string, string) {
	if !strings.HasPrefix(s, `"`) {
		v, rest, _ := strings.Cut(s, ",")
		return strings.TrimSpace(v), rest
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}
