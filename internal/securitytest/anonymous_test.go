package securitytest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/registry"
)

// emptyBasic is what containers/image (podman, skopeo, buildah) sends
// after a Basic challenge when it has no credentials: an empty user and an
// empty password.
var emptyBasic = map[string]string{"Authorization": "Basic Og=="}

// withHeaders is h and more, more winning.
func withHeaders(h, more map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// Issue 10, high: empty Basic credentials are anonymous on every endpoint
// of every repository, exactly as a request without Authorization: the
// same status as the matrix expects of an anonymous caller, and nothing
// changed when refused.
func TestEmptyBasicCredentialsAreAnonymous(t *testing.T) {
	for _, repo := range matrixRepos {
		for _, ep := range endpoints {
			t.Run(repo+"/"+ep.name, func(t *testing.T) {
				t.Parallel()
				w := newWorld(t, matrixAuth(), matrixUsers, registry.Options{}, repo)
				x := w.seeds[repo]
				path := "/v2/" + repo + strings.ReplaceAll(ep.path(x), "REPO", repo)
				var body []byte
				if ep.body != nil {
					body = ep.body(x)
				}
				want := ep.ok
				if !allowed("", repo, ep.access) {
					want = 401
				}
				before := tree(t, w.root)
				st, h, b := w.as("", "").do(ep.method, path, body, withHeaders(ep.header, emptyBasic))
				if st != want {
					t.Fatalf("%s %s with empty Basic credentials: %d, want %d as for an anonymous caller; %s", ep.method, path, st, want, b)
				}
				checkRefusal(t, ep.method, st, h, b)
				if st == 401 {
					if d := diffTrees(before, tree(t, w.root)); d != "" {
						t.Fatalf("refused request changed the data directory:\n%s", d)
					}
				}
			})
		}
	}
}

// Issue 10, high: every anonymous pull by podman, skopeo or buildah sent
// empty Basic credentials, which counted as a failed login, so after a
// burst of them a real user from the same address got 429. Empty
// credentials must never count; wrong ones still do.
func TestEmptyBasicCredentialsNeverCountAsFailedLogins(t *testing.T) {
	ac := matrixAuth()
	ac.FailedLogins = config.RateLimit{Burst: 3, PerMinute: 1}
	w := newWorld(t, ac, matrixUsers, registry.Options{}, "public/base", "team-a/app")
	anon := w.as("", "")
	for i := range 4 * ac.FailedLogins.Burst {
		for _, tc := range []struct {
			method, path string
			want         int
		}{
			{"GET", "/v2/", 401}, // the challenge that makes clients log in
			{"GET", "/v2/public/base/manifests/v1", 200},
			{"HEAD", "/v2/public/base/blobs/" + w.seeds["public/base"].layerD, 200},
			{"GET", "/v2/public/base/tags/list", 200},
			{"GET", "/v2/team-a/app/manifests/v1", 401},
			{"POST", "/v2/public/base/blobs/uploads/", 401},
		} {
			if st, _, b := anon.do(tc.method, tc.path, nil, emptyBasic); st != tc.want {
				t.Fatalf("round %d: %s %s with empty Basic credentials: %d, want %d; %s", i, tc.method, tc.path, st, tc.want, b)
			}
		}
		st, _, b := anon.do("GET", "/v2/_catalog", nil, emptyBasic)
		var cat struct{ Repositories []string }
		if st != 200 || json.Unmarshal(b, &cat) != nil || !slices.Equal(cat.Repositories, []string{"public/base"}) {
			t.Fatalf("round %d: anonymous catalog with empty Basic credentials: %d %s", i, st, b)
		}
	}
	alice := w.as("alice", "alice-pw")
	for _, path := range []string{"/v2/", "/v2/team-a/app/manifests/v1"} {
		if st, _, b := alice.do("GET", path, nil, nil); st != 200 {
			t.Fatalf("alice after anonymous pulls from her address: GET %s: %d, want 200; %s", path, st, b)
		}
	}
	// The limit itself still holds for wrong passwords from the address.
	mallory := w.as("bob", "wrong-password")
	for range ac.FailedLogins.Burst {
		if st, _, _ := mallory.do("GET", "/v2/", nil, nil); st != 401 {
			t.Fatalf("wrong password: %d, want 401", st)
		}
	}
	if st, _, _ := mallory.do("GET", "/v2/", nil, nil); st != 429 {
		t.Fatalf("wrong password past the burst: %d, want 429", st)
	}
	// Malformed credentials, and a password without a user, are no
	// anonymous caller.
	w = newWorld(t, ac, matrixUsers, registry.Options{}, "public/base")
	for _, h := range []string{"Basic Og", "Basic ", "Basic OmE=" /* ":a" */, "Bearer x"} {
		st, hdr, b := w.as("", "").do("GET", "/v2/public/base/manifests/v1", nil, map[string]string{"Authorization": h})
		if st != 401 {
			t.Errorf("%q: %d, want 401", h, st)
		}
		checkRefusal(t, "GET", st, hdr, b)
	}
}
