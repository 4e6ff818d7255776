package auth

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/config"
)

func hash(t testing.TB, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestParseHtpasswd(t *testing.T) {
	good := hash(t, "secret")
	y := "$2y$" + strings.TrimPrefix(good, "$2a$")
	b := "$2b$" + strings.TrimPrefix(good, "$2a$")
	users, err := ParseHtpasswd(strings.NewReader("# comment\n\nalice:"+good+"\nbob:"+y+"\r\ncarol:"+b+"\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 3 {
		t.Fatalf("users = %v", users)
	}
	for u := range users {
		if bcrypt.CompareHashAndPassword(users[u], []byte("secret")) != nil {
			t.Errorf("%s: $2y$/$2a$/$2b$ hash does not verify", u)
		}
	}
	for _, tc := range []struct{ line, want string }{
		{"alice:$apr1$abc$def", `f:2: user "alice": unsupported password hash ($apr1$, Apache MD5)`},
		{"alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", `f:2: user "alice": unsupported password hash ({SHA}, SHA-1)`},
		{"alice:plaintext", `f:2: user "alice": unsupported password hash (crypt or plain text)`},
		{"alice:$6$salt$hash", `f:2: user "alice": unsupported password hash (SHA-crypt)`},
		{"alice:", `f:2: user "alice": unsupported password hash (empty)`},
		{"alice:$2y$10$short", `f:2: user "alice": malformed bcrypt hash`},
		{"no-colon", `f:2: want user:bcrypt-hash`},
		{":" + good, `f:2: want user:bcrypt-hash`},
		{"bob:" + good, `f:2: user "bob" is listed twice`},
	} {
		_, err := ParseHtpasswd(strings.NewReader("bob:"+good+"\n"+tc.line+"\n"), "f")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.line, err, tc.want)
		}
		if err != nil && strings.Contains(tc.line, "plaintext") && strings.Contains(err.Error(), "plaintext") {
			t.Errorf("error echoes the password: %v", err)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		glob string
		yes  []string
		no   []string
	}{
		{"team-a/*", []string{"team-a/app", "team-a/x.y"}, []string{"team-a", "team-a/app/sub", "team-ab/app", "team-a-x/app"}},
		{"team-a/**", []string{"team-a/app", "team-a/app/sub/deep"}, []string{"team-a", "team-ab/app"}},
		{"**", []string{"a", "a/b/c"}, nil},
		{"*", []string{"a", "library"}, []string{"a/b"}},
		{"team-*/app", []string{"team-a/app", "team-/app"}, []string{"team-a/b/app", "team-a/apps"}},
		{"public/**/base", []string{"public/x/base", "public/x/y/base"}, []string{"public/base", "public/x/based"}},
		{"a.b/c", []string{"a.b/c"}, []string{"axb/c"}},
	} {
		re, err := compileGlob(tc.glob)
		if err != nil {
			t.Fatalf("%s: %v", tc.glob, err)
		}
		for _, n := range tc.yes {
			if !re.MatchString(n) {
				t.Errorf("%s should match %s", tc.glob, n)
			}
		}
		for _, n := range tc.no {
			if re.MatchString(n) {
				t.Errorf("%s should not match %s", tc.glob, n)
			}
		}
	}
	for _, bad := range []string{"", "***", "Team/*", "a b", "a/[bc]", "a?"} {
		if _, err := compileGlob(bad); err == nil {
			t.Errorf("glob %q accepted", bad)
		}
	}
}

func TestPolicyErrors(t *testing.T) {
	users := map[string][]byte{"alice": nil}
	for _, tc := range []struct {
		rules  []config.AccessRule
		groups map[string][]string
		want   string
	}{
		{[]config.AccessRule{{Repository: "a/*", Users: []string{"alice"}}}, nil, "users or groups without actions"},
		{[]config.AccessRule{{Repository: "a/*", Actions: []string{"pull"}}}, nil, "actions without users or groups"},
		{[]config.AccessRule{{Repository: "a/*"}}, nil, "grants nothing"},
		{[]config.AccessRule{{Repository: "a/*", Users: []string{"alice"}, Actions: []string{"write"}}}, nil, `unknown action "write"`},
		{[]config.AccessRule{{Repository: "a/*", Groups: []string{"devs"}, Actions: []string{"pull"}}}, nil, `group "devs" is not defined`},
		{[]config.AccessRule{{Repository: "A/*", AnonymousPull: true}}, nil, "cannot appear in a repository name"},
	} {
		_, _, err := newPolicy(tc.rules, tc.groups, users)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.rules, err, tc.want)
		}
	}
	_, unknown, err := newPolicy([]config.AccessRule{{Repository: "**", Users: []string{"alice", "zed", "*"}, Actions: []string{"pull"}}},
		map[string][]string{"g": {"yan"}}, users)
	if err != nil || strings.Join(unknown, ",") != "yan,zed" {
		t.Errorf("unknown = %v, %v", unknown, err)
	}
}

func TestPolicyAllowed(t *testing.T) {
	p, _, err := newPolicy([]config.AccessRule{
		{Repository: "team-a/**", Users: []string{"alice"}, Groups: []string{"admins"}, Actions: []string{"pull", "push"}},
		{Repository: "team-a/**", Groups: []string{"admins"}, Actions: []string{"delete"}},
		{Repository: "public/*", AnonymousPull: true},
		{Repository: "shared/*", Users: []string{"*"}, Actions: []string{"pull"}},
	}, map[string][]string{"admins": {"carol"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pull, push, del := api.AccessPull, api.AccessPush, api.AccessDelete
	for _, tc := range []struct {
		user, repo string
		a          api.Access
		want       bool
	}{
		{"alice", "team-a/x", pull, true},
		{"alice", "team-a/x/y", push, true},
		{"alice", "team-a/x", del, false},
		{"carol", "team-a/x", del, true},
		{"bob", "team-a/x", pull, false},
		{"", "public/x", pull, true},
		{"", "public/x", push, false},
		{"bob", "public/x", pull, true},
		{"", "public/x/y", pull, false},
		{"bob", "shared/x", pull, true},
		{"", "shared/x", pull, false},
		{"alice", "other", pull, false},
	} {
		if got := p.allowed(tc.user, tc.repo, tc.a); got != tc.want {
			t.Errorf("allowed(%q, %q, %v) = %v", tc.user, tc.repo, tc.a, got)
		}
	}
	if !p.anonymousPulls() {
		t.Error("anonymousPulls = false")
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(3, 60, 2) // one token a second
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for i := 0; i < 3; i++ { // three checks that fail keep their tokens
		if ok, _ := l.take("1.2.3.4"); !ok {
			t.Fatalf("refused after %d failures", i)
		}
	}
	if ok, wait := l.take("1.2.3.4"); ok || wait != time.Second {
		t.Fatalf("take = %v, %v after the burst", ok, wait)
	}
	if ok, _ := l.take("5.6.7.8"); !ok {
		t.Fatal("another client is refused")
	}
	l.refund("5.6.7.8") // a verified check gives its token back
	if _, ok := l.buckets["5.6.7.8"]; ok {
		t.Fatal("a full bucket is still tracked")
	}
	for i := 0; i < 3; i++ {
		if ok, _ := l.take("5.6.7.8"); !ok {
			t.Fatalf("refund lost a token: refused after %d", i)
		}
	}
	now = now.Add(1500 * time.Millisecond)
	if ok, _ := l.take("1.2.3.4"); !ok {
		t.Fatal("still refused after a token came back")
	}
	// The map stays bounded: a third client evicts the least recent.
	now = now.Add(time.Millisecond)
	l.take("9.9.9.9")
	if len(l.buckets) > 2 {
		t.Fatalf("%d buckets, max 2", len(l.buckets))
	}
	if _, ok := l.buckets["9.9.9.9"]; !ok {
		t.Fatal("newest client not tracked")
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3.4:5678":               "1.2.3.4",
		"[::ffff:1.2.3.4]:1":         "1.2.3.4",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ff::1]:443":   "2001:db8:1:2::/64",
		"garbage":                    "garbage",
	} {
		if got := clientKey(in); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestFailedLoginsRateLimitedAndLoggedWithoutPassword(t *testing.T) {
	var logs logBuffer
	a, err := newAuthenticator(config.Auth{
		Rules:        []config.AccessRule{{Repository: "**", Users: []string{"alice"}, Actions: []string{"pull"}}},
		FailedLogins: config.RateLimit{Burst: 3, PerMinute: 1},
	}, map[string][]byte{"alice": []byte(hash(t, "right-password"))}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// A stopped clock: no token comes back and no cached login expires,
	// however slowly the requests below run.
	stopped := func() time.Time { return time.Unix(1000, 0) }
	a.limit.now, a.cache.now = stopped, stopped
	do := func(remote, user, pass string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v2/", nil)
		r.RemoteAddr = remote
		if user != "" {
			r.SetBasicAuth(user, pass)
		}
		w := httptest.NewRecorder()
		a.Guard(w, r, api.Route{Kind: api.KindBase})
		return w
	}
	for i := 0; i < 3; i++ {
		if w := do("10.0.0.1:1000", "alice", "wrong-password-"+string(rune('a'+i))); w.Code != 401 {
			t.Fatalf("failure %d: %d", i, w.Code)
		}
	}
	w := do("10.0.0.1:1001", "alice", "right-password")
	if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "TOOMANYREQUESTS") || w.Header().Get("Retry-After") == "" {
		t.Fatalf("after the burst: %d %q Retry-After=%q", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	if w := do("10.0.0.2:1000", "alice", "right-password"); w.Code != 200 {
		t.Fatalf("another address: %d", w.Code)
	}
	// Once verified, credentials are cached and not rate-limited.
	if w := do("10.0.0.1:1002", "alice", "right-password"); w.Code != 200 {
		t.Fatalf("verified credentials from a limited address: %d", w.Code)
	}
	if w := do("10.0.0.1:1003", "ghost", "x"); w.Code != 429 {
		t.Fatalf("unknown user from a limited address: %d", w.Code)
	}
	if a.FailedLogins() != 3 || a.RateLimited() != 2 {
		t.Fatalf("counted %d failed logins and %d rate-limited, want 3 and 2", a.FailedLogins(), a.RateLimited())
	}
	out := logs.String()
	if strings.Contains(out, "password-") || strings.Contains(out, "right-password") {
		t.Fatalf("log holds a password:\n%s", out)
	}
	if !strings.Contains(out, "login failed") || !strings.Contains(out, "user=alice") || !strings.Contains(out, "remote=10.0.0.1") ||
		!strings.Contains(out, "too many failed logins") {
		t.Fatalf("log lacks user or address:\n%s", out)
	}
}

func TestUnknownUserCostsAFullCheck(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost+2)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAuthenticator(config.Auth{}, map[string][]byte{"alice": h, "bob": []byte(hash(t, "y"))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.costs, []int{bcrypt.MinCost, bcrypt.MinCost + 2}) {
		t.Fatalf("costs %v", a.costs)
	}
	for _, c := range a.costs {
		if got, _ := bcrypt.Cost(a.dummies[c]); got != c {
			t.Fatalf("dummy for cost %d has cost %d", c, got)
		}
	}
	for _, tc := range []struct {
		user, pass string
		want       bool
	}{{"alice", "x", true}, {"alice", "y", false}, {"bob", "y", true}, {"bob", "x", false}, {"nobody", "x", false}, {"nobody", "", false}} {
		if got, err := a.check(context.Background(), tc.user, tc.pass); got != tc.want || err != nil {
			t.Errorf("check(%q, %q) = %v, %v", tc.user, tc.pass, got, err)
		}
	}
}

func TestBearerAndMalformedAuthorization(t *testing.T) {
	a, err := newAuthenticator(config.Auth{Rules: []config.AccessRule{{Repository: "**", AnonymousPull: true}}}, map[string][]byte{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"Bearer abc", "Basic !!!", "Basic " + "bm9jb2xvbg=="} {
		r := httptest.NewRequest("GET", "/v2/x/tags/list", nil)
		r.Header.Set("Authorization", h)
		w := httptest.NewRecorder()
		if _, ok := a.Guard(w, r, api.Route{Kind: api.KindTags, Name: "x"}); ok || w.Code != 401 ||
			w.Header().Get("WWW-Authenticate") != `Basic realm="octoserve"` {
			t.Errorf("%q: %d %q", h, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
}
