package auth

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/config"
)

// compileGlob turns a repository glob into an anchored regexp. '*' matches
// any run of characters within one path component (never '/'); '**'
// matches any run of characters including '/', so "team-a/**" matches
// every repository below team-a/ at any depth (but not "team-a" itself)
// and "**" matches every repository. Other characters match themselves and
// must be ones a repository name can hold.
func compileGlob(glob string) (*regexp.Regexp, error) {
	if glob == "" {
		return nil, fmt.Errorf("empty repository glob")
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(glob); i++ {
		c := glob[i]
		switch {
		case c == '*':
			n := 1
			for i+n < len(glob) && glob[i+n] == '*' {
				n++
			}
			switch n {
			case 1:
				b.WriteString("[^/]*")
			case 2:
				b.WriteString(".*")
			default:
				return nil, fmt.Errorf("repository glob %q: use * or **, not %d stars", glob, n)
			}
			i += n - 1
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '/', c == '-', c == '_', c == '.':
			b.WriteString(regexp.QuoteMeta(string(c)))
		default:
			return nil, fmt.Errorf("repository glob %q: character %q cannot appear in a repository name", glob, c)
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

type rule struct {
	glob          string
	re            *regexp.Regexp
	users         map[string]bool // "*": every authenticated user
	actions       map[api.Access]bool
	anonymousPull bool
}

// policy is the compiled access rules. Rules only grant: a request is
// allowed when any rule matching its repository grants its action to the
// caller, and refused otherwise.
type policy struct {
	rules []rule
}

var actionNames = map[string]api.Access{"pull": api.AccessPull, "push": api.AccessPush, "delete": api.AccessDelete}

// newPolicy compiles the rules, expanding groups. It returns the names of
// users the rules mention that are not in known (for a warning).
func newPolicy(rules []config.AccessRule, groups map[string][]string, known map[string][]byte) (*policy, []string, error) {
	unknown := map[string]bool{}
	note := func(u string) {
		if _, ok := known[u]; !ok && u != "*" {
			unknown[u] = true
		}
	}
	for g, members := range groups {
		if g == "" {
			return nil, nil, fmt.Errorf("auth.groups: empty group name")
		}
		for _, u := range members {
			note(u)
		}
	}
	p := &policy{}
	for i, rc := range rules {
		where := fmt.Sprintf("auth.rules[%d] (%s)", i, rc.Repository)
		re, err := compileGlob(rc.Repository)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", where, err)
		}
		r := rule{glob: rc.Repository, re: re, users: map[string]bool{}, actions: map[api.Access]bool{}, anonymousPull: rc.AnonymousPull}
		for _, u := range rc.Users {
			if u == "" {
				return nil, nil, fmt.Errorf("%s: empty user name", where)
			}
			note(u)
			r.users[u] = true
		}
		for _, g := range rc.Groups {
			members, ok := groups[g]
			if !ok {
				return nil, nil, fmt.Errorf("%s: group %q is not defined in auth.groups", where, g)
			}
			for _, u := range members {
				r.users[u] = true
			}
		}
		for _, a := range rc.Actions {
			acc, ok := actionNames[a]
			if !ok {
				return nil, nil, fmt.Errorf("%s: unknown action %q (want pull, push or delete)", where, a)
			}
			r.actions[acc] = true
		}
		switch {
		case len(r.actions) > 0 && len(rc.Users)+len(rc.Groups) == 0:
			return nil, nil, fmt.Errorf("%s: actions without users or groups", where)
		case len(r.actions) == 0 && len(rc.Users)+len(rc.Groups) > 0:
			return nil, nil, fmt.Errorf("%s: users or groups without actions", where)
		case len(r.actions) == 0 && !r.anonymousPull:
			return nil, nil, fmt.Errorf("%s: grants nothing", where)
		}
		p.rules = append(p.rules, r)
	}
	var names []string
	for u := range unknown {
		names = append(names, u)
	}
	sort.Strings(names)
	return p, names, nil
}

// allowed reports whether user ("" for an anonymous caller) may do a to
// repository name.
func (p *policy) allowed(user, name string, a api.Access) bool {
	for i := range p.rules {
		r := &p.rules[i]
		if !r.re.MatchString(name) {
			continue
		}
		if a == api.AccessPull && r.anonymousPull {
			return true
		}
		if user != "" && r.actions[a] && (r.users[user] || r.users["*"]) {
			return true
		}
	}
	return false
}

// anonymousPulls reports whether any rule lets anonymous callers pull.
func (p *policy) anonymousPulls() bool {
	for _, r := range p.rules {
		if r.anonymousPull {
			return true
		}
	}
	return false
}
