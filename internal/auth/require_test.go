package auth

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/httplog"
)

// RequireUser admits any user of the htpasswd file and nobody else, and
// names the user in the request log.
func TestRequireUser(t *testing.T) {
	a, err := newAuthenticator(config.Auth{}, map[string][]byte{"prom": []byte(hash(t, "scrape"))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var served int
	h := a.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
	for _, tc := range []struct {
		name, user, pass string
		want             int
	}{
		{"anonymous", "", "", http.StatusUnauthorized},
		{"wrong password", "prom", "guess", http.StatusUnauthorized},
		{"unknown user", "nobody", "scrape", http.StatusUnauthorized},
		{"user", "prom", "scrape", http.StatusOK},
	} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		if tc.user != "" {
			r.SetBasicAuth(tc.user, tc.pass)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.want)
		}
		if tc.want == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no challenge", tc.name)
		}
	}
	if served != 1 || a.FailedLogins() != 2 {
		t.Fatalf("served %d, counted %d failed logins; want 1 and 2", served, a.FailedLogins())
	}
}

// The Guard tells the request log who the caller is.
func TestGuardNamesTheUserInTheLog(t *testing.T) {
	a, err := newAuthenticator(config.Auth{}, map[string][]byte{"alice": []byte(hash(t, "pw"))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	h := httplog.Handler(slog.New(slog.NewTextHandler(&logs, nil)), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Guard(w, r, api.Route{Kind: api.KindBase})
	}))
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.SetBasicAuth("alice", "pw")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if !strings.Contains(logs.String(), " user=alice ") {
		t.Fatalf("log line does not name the user: %s", logs.String())
	}
}
