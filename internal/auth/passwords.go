package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

func bcryptCompare(hash, pass []byte) error { return bcrypt.CompareHashAndPassword(hash, pass) }

// hashes are the htpasswd file's password hashes, with a dummy hash at
// every cost the file uses, so that a check can do the same bcrypt work
// whoever it is for.
type hashes struct {
	users   map[string][]byte // user -> bcrypt hash
	costs   []int             // the costs in the file, ascending; DefaultCost when empty
	dummies map[int][]byte    // cost -> hash of a random password
}

func newHashes(users map[string][]byte) (hashes, error) {
	h := hashes{users: users, dummies: map[int][]byte{}}
	for _, hash := range users {
		if c, err := bcrypt.Cost(hash); err == nil && !slices.Contains(h.costs, c) {
			h.costs = append(h.costs, c)
		}
	}
	if len(h.costs) == 0 {
		h.costs = []int{bcrypt.DefaultCost}
	}
	slices.Sort(h.costs)
	for _, c := range h.costs {
		dummy, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), c)
		if err != nil {
			return hashes{}, fmt.Errorf("preparing password checks: %w", err)
		}
		h.dummies[c] = dummy
	}
	return h, nil
}

// belowTopCost lists, sorted, the users whose hash is cheaper than the
// file's most expensive one: they make every check pay for one bcrypt
// per cost.
func (h hashes) belowTopCost() []string {
	top := h.costs[len(h.costs)-1]
	var names []string
	for u, hash := range h.users {
		if c, err := bcrypt.Cost(hash); err == nil && c < top {
			names = append(names, u)
		}
	}
	slices.Sort(names)
	return names
}

func (h hashes) costList() string {
	s := make([]string, len(h.costs))
	for i, c := range h.costs {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// check verifies a password so that its timing tells nothing about the
// user: it runs one bcrypt comparison at each cost in the file, in
// ascending order, against the user's own hash at the user's cost and
// against dummy hashes at every other cost (all of them for an unknown
// user). Known and unknown users, cheap and expensive hashes, right and
// wrong passwords all cost the same comparisons, and bcrypt compares in
// constant time. The check holds one of the bcrypt workers throughout; it
// gives up waiting for one when ctx ends.
func (a *Authenticator) check(ctx context.Context, user, pass string) (bool, error) {
	select {
	case a.bcrypts <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-a.bcrypts }()
	own, known := a.users[user]
	ownCost := -1
	if known {
		ownCost, _ = bcrypt.Cost(own)
	}
	good := false
	for _, c := range a.costs {
		if c == ownCost {
			good = a.compare(own, []byte(pass)) == nil
		} else {
			_ = a.compare(a.dummies[c], []byte(pass))
		}
	}
	return known && good, nil
}
