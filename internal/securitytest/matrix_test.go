package securitytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/auth"
	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// The matrix's users: alice may push and pull team-a/*, bob only pull it,
// carol (group admins) also delete there; anyone, even anonymous, may pull
// public/*. Nobody but the unguarded seeding API touches secret/*.
var matrixUsers = map[string]string{"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}

func matrixAuth() config.Auth {
	return config.Auth{
		Realm:  "octoserve",
		Groups: map[string][]string{"admins": {"carol"}},
		Rules: []config.AccessRule{
			{Repository: "team-a/*", Users: []string{"alice"}, Groups: []string{"admins"}, Actions: []string{"pull", "push"}},
			{Repository: "team-a/*", Users: []string{"bob"}, Actions: []string{"pull"}},
			{Repository: "team-a/**", Groups: []string{"admins"}, Actions: []string{"delete"}},
			{Repository: "public/*", AnonymousPull: true},
		},
		FailedLogins: config.RateLimit{Burst: 1000, PerMinute: 1000},
	}
}

// writeHtpasswd writes users as a bcrypt htpasswd file (the $2y$ prefix
// Apache's htpasswd -B writes) and returns its path.
func writeHtpasswd(t testing.TB, users map[string]string) string {
	t.Helper()
	var b strings.Builder
	for u, p := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:$2y$%s\n", u, strings.TrimPrefix(string(h), "$2a$"))
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// world is a registry with auth on, an unguarded API on the same registry
// for seeding, and the seeded content of each repository.
type world struct {
	t     testing.TB
	root  string
	url   string
	hc    *http.Client // the guarded server's own client (see newWorld)
	admin *client
	seeds map[string]content
}

func newWorld(t testing.TB, ac config.Auth, users map[string]string, opts registry.Options, repos ...string) *world {
	t.Helper()
	root := t.TempDir()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(d, opts)
	ac.Htpasswd = writeHtpasswd(t, users)
	authn, err := auth.New(ac, nil)
	if err != nil {
		t.Fatal(err)
	}
	guarded := httptest.NewServer(api.New(reg, authn.APIOptions()...))
	open := httptest.NewServer(api.New(reg))
	t.Cleanup(guarded.Close)
	t.Cleanup(open.Close)
	// Each world talks through its servers' own clients, never
	// http.DefaultClient: worlds run in parallel, and closing a test server
	// closes the default transport's idle connections, which breaks a
	// request another world is just starting on one of them.
	w := &world{t: t, root: root, url: guarded.URL, hc: guarded.Client(),
		admin: &client{t: t, base: open.URL, hc: open.Client()}, seeds: map[string]content{}}
	for _, r := range repos {
		w.seeds[r] = seed(t, w.admin, r)
	}
	return w
}

func (w *world) as(user, pass string) *client {
	return &client{t: w.t, base: w.url, user: user, pass: pass, hc: w.hc}
}

type caller struct{ name, user, pass string }

var matrixCallers = []caller{
	{"anonymous", "", ""},
	{"alice", "alice", "alice-pw"},
	{"bob", "bob", "bob-pw"},
	{"carol", "carol", "carol-pw"},
	{"mallory", "alice", "wrong-password"},
}

// allowed is the matrix's expectation, written out independently of the
// auth package's rule evaluation.
func allowed(user, repo string, a api.Access) bool {
	switch {
	case strings.HasPrefix(repo, "public/"):
		return a == api.AccessPull
	case strings.HasPrefix(repo, "team-a/"):
		switch user {
		case "alice":
			return a != api.AccessDelete
		case "bob":
			return a == api.AccessPull
		case "carol":
			return true
		}
	}
	return false
}

type endpoint struct {
	name   string
	method string
	path   func(x content) string // after /v2/<repo>
	body   func(x content) []byte
	header map[string]string
	access api.Access
	ok     int
}

var endpoints = []endpoint{
	{name: "get manifest", method: "GET", path: func(content) string { return "/manifests/v1" }, access: api.AccessPull, ok: 200},
	{name: "head manifest", method: "HEAD", path: func(content) string { return "/manifests/v1" }, access: api.AccessPull, ok: 200},
	{name: "get blob", method: "GET", path: func(x content) string { return "/blobs/" + x.layerD }, access: api.AccessPull, ok: 200},
	{name: "head blob", method: "HEAD", path: func(x content) string { return "/blobs/" + x.layerD }, access: api.AccessPull, ok: 200},
	{name: "tags", method: "GET", path: func(content) string { return "/tags/list" }, access: api.AccessPull, ok: 200},
	{name: "referrers", method: "GET", path: func(x content) string { return "/referrers/" + x.manifestD }, access: api.AccessPull, ok: 200},
	{name: "start upload", method: "POST", path: func(content) string { return "/blobs/uploads/" }, access: api.AccessPush, ok: 202},
	{name: "monolithic upload", method: "POST", path: func(content) string { return "/blobs/uploads/?digest=" + digestOf([]byte("new blob")) },
		body: func(content) []byte { return []byte("new blob") }, access: api.AccessPush, ok: 201},
	{name: "mount from self", method: "POST", path: func(x content) string { return "/blobs/uploads/?mount=" + x.layerD + "&from=REPO" }, access: api.AccessPush, ok: 201},
	{name: "upload status", method: "GET", path: func(x content) string { return "/blobs/uploads/" + x.upload }, access: api.AccessPush, ok: 204},
	{name: "patch upload", method: "PATCH", path: func(x content) string { return "/blobs/uploads/" + x.upload },
		body: func(content) []byte { return []byte("chunk") }, access: api.AccessPush, ok: 202},
	{name: "finish upload", method: "PUT", path: func(x content) string { return "/blobs/uploads/" + x.upload + "?digest=" + digestOf([]byte("chunk")) },
		body: func(content) []byte { return []byte("chunk") }, access: api.AccessPush, ok: 201},
	{name: "cancel upload", method: "DELETE", path: func(x content) string { return "/blobs/uploads/" + x.upload }, access: api.AccessPush, ok: 204},
	{name: "put manifest", method: "PUT", path: func(content) string { return "/manifests/v2" }, body: func(x content) []byte { return x.manifest },
		header: map[string]string{"Content-Type": registry.MediaTypeOCIManifest}, access: api.AccessPush, ok: 201},
	{name: "delete tag", method: "DELETE", path: func(content) string { return "/manifests/v1" }, access: api.AccessDelete, ok: 202},
	{name: "delete manifest", method: "DELETE", path: func(x content) string { return "/manifests/" + x.manifestD }, access: api.AccessDelete, ok: 202},
	{name: "delete blob", method: "DELETE", path: func(x content) string { return "/blobs/" + x.layerD }, access: api.AccessDelete, ok: 202},
}

var matrixRepos = []string{"team-a/app", "public/base", "secret/vault"}

// TestAuthMatrix sends every method on every endpoint of every repository
// as every caller, each on a freshly seeded registry, and checks the
// status: the endpoint's success status when the caller is allowed, 401
// with a Basic challenge for anonymous callers and wrong passwords, 403
// DENIED otherwise, and for every refusal an unchanged data directory.
func TestAuthMatrix(t *testing.T) {
	for _, c := range matrixCallers {
		for _, repo := range matrixRepos {
			for _, ep := range endpoints {
				t.Run(c.name+"/"+repo+"/"+ep.name, func(t *testing.T) {
					t.Parallel()
					w := newWorld(t, matrixAuth(), matrixUsers, registry.Options{}, repo)
					x := w.seeds[repo]
					path := "/v2/" + repo + strings.ReplaceAll(ep.path(x), "REPO", repo)
					var body []byte
					if ep.body != nil {
						body = ep.body(x)
					}
					want := ep.ok
					switch {
					case c.name == "mallory" || (c.user == "" && !allowed("", repo, ep.access)):
						want = 401
					case !allowed(c.user, repo, ep.access):
						want = 403
					}
					before := tree(t, w.root)
					st, h, b := w.as(c.user, c.pass).do(ep.method, path, body, ep.header)
					if st != want {
						t.Fatalf("%s %s as %s: %d, want %d; %s", ep.method, path, c.name, st, want, b)
					}
					checkRefusal(t, ep.method, st, h, b)
					if st == 401 || st == 403 {
						if d := diffTrees(before, tree(t, w.root)); d != "" {
							t.Fatalf("refused request changed the data directory:\n%s", d)
						}
					}
				})
			}
		}
	}
}

// checkRefusal checks a 401's challenge and the error codes of 401 and
// 403 (HEAD responses have no body).
func checkRefusal(t testing.TB, method string, st int, h map[string][]string, body []byte) {
	t.Helper()
	hdr := func(k string) string {
		if v := h[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	switch st {
	case 401:
		if got := hdr("Www-Authenticate"); got != `Basic realm="octoserve"` {
			t.Fatalf("401 with WWW-Authenticate %q", got)
		}
		if method != "HEAD" && errorCode(body) != "UNAUTHORIZED" {
			t.Fatalf("401 body %s", body)
		}
	case 403:
		if hdr("Www-Authenticate") != "" {
			t.Fatal("403 with a challenge")
		}
		if method != "HEAD" && errorCode(body) != "DENIED" {
			t.Fatalf("403 body %s", body)
		}
	}
}

func TestAuthBaseAndCatalog(t *testing.T) {
	w := newWorld(t, matrixAuth(), matrixUsers, registry.Options{}, append(matrixRepos, "team-a/tools", "public/other")...)
	for _, c := range matrixCallers {
		for _, m := range []string{"GET", "HEAD"} {
			st, h, b := w.as(c.user, c.pass).do(m, "/v2/", nil, nil)
			want := 200
			if c.user == "" || c.name == "mallory" {
				want = 401
			}
			if st != want {
				t.Errorf("%s /v2/ as %s: %d, want %d", m, c.name, st, want)
			}
			checkRefusal(t, m, st, h, b)
		}
		st, h, b := w.as(c.user, c.pass).do("GET", "/v2/_catalog", nil, nil)
		var got struct{ Repositories []string }
		_ = json.Unmarshal(b, &got)
		want := []string{"public/base", "public/other", "team-a/app", "team-a/tools"}
		switch c.name {
		case "mallory":
			if st != 401 {
				t.Errorf("catalog as mallory: %d", st)
			}
			checkRefusal(t, "GET", st, h, b)
			continue
		case "anonymous":
			want = []string{"public/base", "public/other"}
		}
		if st != 200 || !slices.Equal(got.Repositories, want) {
			t.Errorf("catalog as %s: %d %v, want %v", c.name, st, got.Repositories, want)
		}
	}
	// Pagination counts only what the caller may see.
	alice := w.as("alice", "alice-pw")
	var pages []string
	path := "/v2/_catalog?n=1"
	for i := 0; path != "" && i < 10; i++ {
		st, h, b := alice.do("GET", path, nil, nil)
		var got struct{ Repositories []string }
		if st != 200 || json.Unmarshal(b, &got) != nil || len(got.Repositories) != 1 {
			t.Fatalf("page %s: %d %s", path, st, b)
		}
		pages = append(pages, got.Repositories...)
		path = ""
		if l := h.Get("Link"); l != "" {
			path = strings.TrimSuffix(strings.TrimPrefix(strings.Split(l, ";")[0], "<"), ">")
		}
	}
	if !slices.Equal(pages, []string{"public/base", "public/other", "team-a/app", "team-a/tools"}) {
		t.Fatalf("paged catalog %v", pages)
	}
	// Without any anonymous rule, an anonymous catalog request must log in.
	ac := matrixAuth()
	ac.Rules = ac.Rules[:3]
	w2 := newWorld(t, ac, matrixUsers, registry.Options{}, "public/base")
	st, h, b := w2.as("", "").do("GET", "/v2/_catalog", nil, nil)
	if st != 401 {
		t.Fatalf("anonymous catalog without anonymous rules: %d", st)
	}
	checkRefusal(t, "GET", st, h, b)
}

// TestAuthMount checks that a mount needs pull on its source: a source the
// caller may not pull is treated like one without the blob (202, an upload
// session, nothing linked), with or without "from".
func TestAuthMount(t *testing.T) {
	w := newWorld(t, matrixAuth(), matrixUsers, registry.Options{}, matrixRepos...)
	secret, public := w.seeds["secret/vault"], w.seeds["public/base"]
	alice := w.as("alice", "alice-pw")
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"mount=" + secret.layerD + "&from=secret/vault", 202},
		{"mount=" + secret.layerD, 202},
		{"mount=" + secret.configD + "&from=public/base", 202},
		{"mount=" + public.layerD + "&from=public/base", 201},
		{"mount=" + public.configD, 201},
	} {
		st, h, b := alice.do("POST", "/v2/team-a/app/blobs/uploads/?"+tc.query, nil, nil)
		if st != tc.want {
			t.Fatalf("%s: %d, want %d; %s", tc.query, st, tc.want, b)
		}
		if st == 202 && h.Get("Docker-Upload-UUID") == "" {
			t.Fatalf("%s: 202 without an upload session", tc.query)
		}
	}
	for _, d := range []string{secret.layerD, secret.configD} {
		if st, _, _ := alice.do("HEAD", "/v2/team-a/app/blobs/"+d, nil, nil); st != 404 {
			t.Fatalf("secret blob visible in team-a/app after refused mount: %d", st)
		}
	}
	if st, _, _ := alice.do("HEAD", "/v2/team-a/app/blobs/"+public.layerD, nil, nil); st != 200 {
		t.Fatalf("mounted public blob: %d", st)
	}
	// bob may pull team-a but not push: a mount is a push.
	if st, _, _ := w.as("bob", "bob-pw").do("POST", "/v2/team-a/app/blobs/uploads/?mount="+public.layerD+"&from=public/base", nil, nil); st != 403 {
		t.Fatalf("mount as bob: %d", st)
	}
}
