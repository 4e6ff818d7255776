package auth

// Regression tests for the authentication findings of issue 10. They drive
// the real API (api.New with the Authenticator's options) on a temporary
// root and watch the bcrypt comparisons through Authenticator.compare, so
// that they test the mechanism (how many checks run, which ones run at
// once, at what cost) and never the clock.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
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
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// account is an htpasswd entry to create: a password hashed at a cost.
type account struct {
	pass string
	cost int
}

// compareCall is one bcrypt comparison the Authenticator made.
type compareCall struct {
	pass string
	cost int
}

// testAuth is an Authenticator in front of a real API, an unguarded API on
// the same registry for seeding, and a record of every bcrypt comparison.
// While held, comparisons wait inside compare until released.
type testAuth struct {
	t       *testing.T
	a       *Authenticator
	guarded http.Handler
	open    http.Handler

	mu      sync.Mutex
	calls   []compareCall
	inside  []string // passwords of the comparisons in progress
	hold    bool
	release chan struct{}
}

func newTestAuth(t *testing.T, c config.Auth, accounts map[string]account) *testAuth {
	t.Helper()
	users := map[string][]byte{}
	for u, acc := range accounts {
		h, err := bcrypt.GenerateFromPassword([]byte(acc.pass), acc.cost)
		if err != nil {
			t.Fatal(err)
		}
		users[u] = h
	}
	if c.FailedLogins.Burst == 0 {
		c.FailedLogins = config.RateLimit{Burst: 1000, PerMinute: 1000}
	}
	a, err := newAuthenticator(c, users, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := filesystem.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(d, registry.Options{})
	ta := &testAuth{t: t, a: a, guarded: api.New(reg, a.APIOptions()...), open: api.New(reg), release: make(chan struct{})}
	a.compare = ta.compare
	return ta
}

func (ta *testAuth) compare(hash, pass []byte) error {
	cost, err := bcrypt.Cost(hash)
	if err != nil {
		ta.t.Errorf("compare with a malformed hash: %v", err)
	}
	ta.mu.Lock()
	ta.calls = append(ta.calls, compareCall{string(pass), cost})
	ta.inside = append(ta.inside, string(pass))
	hold, release := ta.hold, ta.release
	ta.mu.Unlock()
	if hold {
		<-release
	}
	err = bcrypt.CompareHashAndPassword(hash, pass)
	ta.mu.Lock()
	ta.inside = slices.Delete(ta.inside, slices.Index(ta.inside, string(pass)), slices.Index(ta.inside, string(pass))+1)
	ta.mu.Unlock()
	return err
}

// holdCompares makes every comparison from now on wait for releaseCompares.
func (ta *testAuth) holdCompares() {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.hold = true
}

func (ta *testAuth) releaseCompares() {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if ta.hold {
		ta.hold = false
		close(ta.release)
	}
}

// comparing returns the passwords of the comparisons in progress, sorted.
func (ta *testAuth) comparing() []string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return slices.Sorted(slices.Values(ta.inside))
}

// takeCalls returns the comparisons made since the last call.
func (ta *testAuth) takeCalls() []compareCall {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	c := ta.calls
	ta.calls = nil
	return c
}

// basic is an Authorization header value for user and pass.
func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// do sends a request from remote through the guarded API.
func (ta *testAuth) do(remote, authorization, method, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = remote
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	w := httptest.NewRecorder()
	ta.guarded.ServeHTTP(w, r)
	return w
}

// seedBlob uploads data into repo through the unguarded API and returns
// its digest.
func (ta *testAuth) seedBlob(repo string, data []byte) string {
	ta.t.Helper()
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	r := httptest.NewRequest("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, strings.NewReader(string(data)))
	r.ContentLength = int64(len(data))
	w := httptest.NewRecorder()
	ta.open.ServeHTTP(w, r)
	if w.Code != http.StatusCreated {
		ta.t.Fatalf("seeding %s: %d %s", repo, w.Code, w.Body)
	}
	return d
}

// waitFor polls cond until it holds; the deadline only stops a test that
// would otherwise hang, it is never what the test measures.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// tokensTaken is how many failed-login tokens client has used (or holds
// for checks in progress); the limiter's clock is frozen by the caller.
func (ta *testAuth) tokensTaken(client string) float64 {
	l := ta.a.limit
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.buckets[client]; ok {
		return l.burst - b.tokens
	}
	return 0
}

func freezeLimiter(a *Authenticator) {
	now := time.Unix(1_000_000, 0)
	a.limit.now = func() time.Time { return now }
}

var pullEverything = []config.AccessRule{{Repository: "**", Users: []string{"*"}, Actions: []string{"pull", "push"}}}

// Issue 10, medium 2: concurrent wrong passwords from one address were all
// checked, because a failure counted only after its bcrypt finished. With
// a burst of one, only one of eight concurrent guesses may reach bcrypt.
func TestConcurrentFailedLoginsCountBeforeTheCheck(t *testing.T) {
	const n = 8
	ta := newTestAuth(t, config.Auth{Rules: pullEverything, FailedLogins: config.RateLimit{Burst: 1, PerMinute: 1}},
		map[string]account{"alice": {"right", bcrypt.MinCost}})
	ta.a.bcrypts = make(chan struct{}, n) // workers are no bottleneck: only the limit may hold a guess back
	freezeLimiter(ta.a)
	ta.holdCompares()
	codes := make(chan int, n)
	for i := range n {
		go func() {
			codes <- ta.do(fmt.Sprintf("10.0.0.1:%d", 1000+i), basic("alice", fmt.Sprint("guess-", i)), "GET", "/v2/").Code
		}()
	}
	// Once every request is answered or inside bcrypt, none can still be
	// on its way to a check.
	var got []int
	waitFor(t, "every guess is answered or being checked", func() bool {
		for len(codes) > 0 {
			got = append(got, <-codes)
		}
		return len(got)+len(ta.comparing()) == n
	})
	ta.releaseCompares()
	for len(got) < n {
		got = append(got, <-codes)
	}
	if calls := ta.takeCalls(); len(calls) != 1 {
		t.Fatalf("%d of %d concurrent guesses reached bcrypt with a burst of 1", len(calls), n)
	}
	slices.Sort(got)
	want := append([]int{401}, slices.Repeat([]int{429}, n-1)...)
	if !slices.Equal(got, want) {
		t.Fatalf("answers %v, want %v", got, want)
	}
}

// Issue 10, medium 2: one address's flood of password checks must not
// queue another address's login behind it. With two bcrypt workers and
// one client's first guess held inside bcrypt, that client's second guess
// must wait for the first, and a login from another address must get the
// free worker.
func TestOneClientsChecksDoNotStarveAnother(t *testing.T) {
	ta := newTestAuth(t, config.Auth{Rules: pullEverything, FailedLogins: config.RateLimit{Burst: 10, PerMinute: 1}},
		map[string]account{"alice": {"right", bcrypt.MinCost}})
	ta.a.bcrypts = make(chan struct{}, 2)
	freezeLimiter(ta.a)
	ta.holdCompares()
	done := make(chan string, 3)
	send := func(remote, pass string) {
		go func() {
			w := ta.do(remote, basic("alice", pass), "GET", "/v2/")
			done <- fmt.Sprintf("%s %d", pass, w.Code)
		}()
	}
	send("10.0.0.1:1000", "flood-1")
	waitFor(t, "the first guess is being checked", func() bool { return len(ta.comparing()) == 1 })
	send("10.0.0.1:1001", "flood-2")
	// The second guess has arrived when it is checked too, or when it
	// holds a token of its client's bucket while it waits.
	waitFor(t, "the second guess has arrived", func() bool {
		return len(ta.comparing()) == 2 || ta.tokensTaken("10.0.0.1") == 2
	})
	send("10.0.0.2:1000", "right")
	waitFor(t, "two checks are in progress", func() bool { return len(ta.comparing()) == 2 })
	inside := ta.comparing()
	ta.releaseCompares()
	var results []string
	for range 3 {
		results = append(results, <-done)
	}
	slices.Sort(results)
	if !slices.Equal(inside, []string{"flood-1", "right"}) {
		t.Fatalf("checks in progress %v: the second address's login waits behind the first address's guesses", inside)
	}
	if want := []string{"flood-1 401", "flood-2 401", "right 200"}; !slices.Equal(results, want) {
		t.Fatalf("answers %v, want %v", results, want)
	}
}

// Issue 10, medium 3: the catalog and a mount without "from" asked the
// Permit about every repository, and the Permit verified the password
// again, uncached, whenever the cached login had expired: one bcrypt per
// repository. The caller must be resolved once per request. The cache's
// clock jumps an hour at every look, so every cached login has expired by
// the next look.
func TestOneCheckPerRequestWhateverTheRepositories(t *testing.T) {
	ta := newTestAuth(t, config.Auth{Rules: pullEverything}, map[string]account{"alice": {"right", bcrypt.MinCost}})
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	ta.a.cache.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Hour)
		return now
	}
	const repos = 30
	var last string
	for i := range repos {
		last = ta.seedBlob(fmt.Sprintf("team/r%02d", i), []byte(fmt.Sprint("blob ", i)))
	}
	alice := basic("alice", "right")
	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"catalog", "GET", "/v2/_catalog", 200},
		{"catalog page", "GET", "/v2/_catalog?n=5&last=team/r10", 200},
		{"mount without from", "POST", "/v2/team/new/blobs/uploads/?mount=" + last, 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta.takeCalls()
			w := ta.do("10.0.0.1:1000", alice, tc.method, tc.path)
			if w.Code != tc.want {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if calls := ta.takeCalls(); len(calls) != 1 {
				t.Fatalf("%d bcrypt checks for one request over %d repositories, want 1", len(calls), repos)
			}
		})
	}
	var cat struct{ Repositories []string }
	if err := json.Unmarshal(ta.do("10.0.0.1:1000", alice, "GET", "/v2/_catalog").Body.Bytes(), &cat); err != nil || len(cat.Repositories) != repos+1 {
		t.Fatalf("catalog %v (%v), want %d repositories", cat.Repositories, err, repos+1)
	}
}

// Issue 10, low: an unknown user was checked against a dummy hash of the
// file's highest cost, but a known user with a lower cost only at that
// cost, so timing told the two apart. Whatever costs the file mixes, every
// check must run the same bcrypt work: the same costs, in the same order.
func TestEveryCheckRunsTheSameBcryptWork(t *testing.T) {
	ta := newTestAuth(t, config.Auth{Rules: pullEverything}, map[string]account{
		"low":  {"low-pw", bcrypt.MinCost},
		"mid":  {"mid-pw", bcrypt.MinCost + 1},
		"high": {"high-pw", bcrypt.MinCost + 2},
		"also": {"also-pw", bcrypt.MinCost},
	})
	var want []int
	for i, tc := range []struct {
		name, user, pass string
		code             int
	}{
		{"unknown user", "nobody", "x", 401},
		{"low cost, right password", "low", "low-pw", 200},
		{"low cost, wrong password", "low", "nope", 401},
		{"middle cost, right password", "mid", "mid-pw", 200},
		{"highest cost, right password", "high", "high-pw", 200},
		{"highest cost, wrong password", "high", "nope", 401},
		{"another low-cost user", "also", "nope", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta.takeCalls()
			if w := ta.do(fmt.Sprintf("10.0.1.%d:1000", i), basic(tc.user, tc.pass), "GET", "/v2/"); w.Code != tc.code {
				t.Fatalf("%d, want %d", w.Code, tc.code)
			}
			var costs []int
			for _, c := range ta.takeCalls() {
				costs = append(costs, c.cost)
			}
			if want == nil {
				want = costs
			}
			if !slices.Equal(costs, want) || !slices.Contains(costs, bcrypt.MinCost+2) {
				t.Fatalf("bcrypt costs %v, want %v like every other check (and the highest cost, %d, among them)", costs, want, bcrypt.MinCost+2)
			}
		})
	}
}

// Issue 10, low: bcrypt reads only the first 72 bytes of a password, and a
// NUL ends what it reads, so a 72-byte password accepted any suffix, and
// every variant was a new key of the verified-credentials cache. Such
// passwords cannot be checked whole, so they are refused without a check.
func TestPasswordsBcryptCannotCheckWholeAreRefused(t *testing.T) {
	long := strings.Repeat("0123456789abcdef", 4) + "01234567" // 72 bytes
	ta := newTestAuth(t, config.Auth{Rules: pullEverything}, map[string]account{
		"alice": {long, bcrypt.MinCost},
		"bob":   {"short", bcrypt.MinCost},
	})
	for i, tc := range []struct {
		name, user, pass string
		code, checks     int
	}{
		{"72 bytes", "alice", long, 200, 1},
		{"73 bytes", "alice", long + "x", 401, 0},
		{"a long suffix", "alice", long + strings.Repeat("y", 200), 401, 0},
		{"unknown user, 73 bytes", "nobody", long + "x", 401, 0},
		{"short", "bob", "short", 200, 1},
		{"NUL and a repeat", "bob", "short\x00short", 401, 0},
		{"NUL at the end", "bob", "short\x00", 401, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta.takeCalls()
			ta.a.cache = newVerified(16, time.Minute) // every case starts uncached
			w := ta.do(fmt.Sprintf("10.0.2.%d:1000", i), basic(tc.user, tc.pass), "GET", "/v2/")
			if w.Code != tc.code {
				t.Fatalf("%d, want %d", w.Code, tc.code)
			}
			if calls := ta.takeCalls(); len(calls) != tc.checks {
				t.Fatalf("%d bcrypt checks, want %d", len(calls), tc.checks)
			}
		})
	}
}

// Issue 10, low: one user's password variants filled the cache of
// verified credentials, and a full cache was cleared whole, so every other
// user paid for bcrypt again. Now a flood of variants, even if bcrypt
// accepted them, must not push another user's login out.
func TestCredentialVariantsDoNotEvictOtherUsers(t *testing.T) {
	long := strings.Repeat("z", 72)
	ta := newTestAuth(t, config.Auth{Rules: pullEverything}, map[string]account{
		"alice": {long, bcrypt.MinCost},
		"bob":   {"bob-pw", bcrypt.MinCost},
	})
	ta.a.cache = newVerified(16, time.Hour)
	if w := ta.do("10.0.3.1:1000", basic("bob", "bob-pw"), "GET", "/v2/"); w.Code != 200 {
		t.Fatalf("bob: %d", w.Code)
	}
	for i := range 40 {
		ta.do("10.0.3.2:1000", basic("alice", long+fmt.Sprint(i)), "GET", "/v2/")
	}
	ta.takeCalls()
	if w := ta.do("10.0.3.1:1000", basic("bob", "bob-pw"), "GET", "/v2/"); w.Code != 200 {
		t.Fatalf("bob after the flood: %d", w.Code)
	}
	if calls := ta.takeCalls(); len(calls) != 0 {
		t.Fatalf("bob's login was pushed out of the cache by alice's variants (%d checks)", len(calls))
	}
}

// The cache of verified credentials evicts the least recently used entry,
// one at a time, and holds only a few entries per user, so that neither a
// full cache nor one user's many passwords cost everyone else a check.
func TestVerifiedCacheLRUAndPerUserQuota(t *testing.T) {
	const size = 8
	v := newVerified(size, time.Hour)
	for i := range size {
		v.add(fmt.Sprint("user", i), "pw")
	}
	if !v.has("user0", "pw") { // user0 is now the most recently used
		t.Fatal("user0 not cached")
	}
	v.add("user8", "pw")
	for i := range size + 1 {
		want := i != 1
		if got := v.has(fmt.Sprint("user", i), "pw"); got != want {
			t.Errorf("user%d cached = %v, want %v (only the least recently used, user1, goes)", i, got, want)
		}
	}
	// One user's many passwords take a few places, not everyone's.
	v = newVerified(2*size, time.Hour)
	for i := range size {
		v.add(fmt.Sprint("user", i), "pw")
	}
	for i := range 100 {
		v.add("user3", fmt.Sprint("variant-", i))
	}
	for i := range size {
		if i != 3 && !v.has(fmt.Sprint("user", i), "pw") {
			t.Errorf("user%d pushed out by user3's variants", i)
		}
	}
	if !v.has("user3", "variant-99") {
		t.Error("user3's latest password is not cached")
	}
}
