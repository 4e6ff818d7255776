package auth

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"strconv"
	"sync"
	"time"
)

const (
	// verifiedEntries bounds the cache of verified credentials.
	verifiedEntries = 4096
	// verifiedPerUser bounds one user's share of it. A user has one
	// password that verifies, now that passwords bcrypt cannot check whole
	// are refused (ValidatePassword); should bcrypt ever accept more than
	// one, they still take no more than these few places.
	verifiedPerUser = 4
)

// verified remembers recently verified credentials for a while so that a
// client's every request does not pay for a bcrypt check. Entries are
// keyed by an HMAC of user and password under a per-process random key,
// so the cache never holds a password or a reusable hash of one. When
// full it drops the least recently used entry, one at a time; a user at
// their quota drops their own least recently used entry instead, so no
// one user's logins can push out everyone else's.
type verified struct {
	mu      sync.Mutex
	key     [32]byte
	max     int
	ttl     time.Duration
	now     func() time.Time
	lru     *list.List // of *login, most recently used first
	byKey   map[[32]byte]*list.Element
	perUser map[string][]*list.Element // a user's entries, least recently used first
}

type login struct {
	key     [32]byte
	user    string
	expires time.Time
}

func newVerified(max int, ttl time.Duration) *verified {
	v := &verified{max: max, ttl: ttl, now: time.Now, lru: list.New(),
		byKey: map[[32]byte]*list.Element{}, perUser: map[string][]*list.Element{}}
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

// has reports whether user and pass were verified within the ttl, and
// marks them used.
func (v *verified) has(user, pass string) bool {
	k := v.sum(user, pass)
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.byKey[k]
	if !ok {
		return false
	}
	if v.now().After(e.Value.(*login).expires) {
		v.remove(e)
		return false
	}
	v.touch(e)
	return true
}

// add remembers user and pass as verified.
func (v *verified) add(user, pass string) {
	k := v.sum(user, pass)
	v.mu.Lock()
	defer v.mu.Unlock()
	expires := v.now().Add(v.ttl)
	if e, ok := v.byKey[k]; ok {
		e.Value.(*login).expires = expires
		v.touch(e)
		return
	}
	if own := v.perUser[user]; len(own) >= verifiedPerUser {
		v.remove(own[0])
	} else if v.lru.Len() >= v.max {
		v.remove(v.lru.Back())
	}
	e := v.lru.PushFront(&login{key: k, user: user, expires: expires})
	v.byKey[k] = e
	v.perUser[user] = append(v.perUser[user], e)
}

// touch makes e the most recently used entry, overall and of its user.
func (v *verified) touch(e *list.Element) {
	v.lru.MoveToFront(e)
	user := e.Value.(*login).user
	own := v.perUser[user]
	i := indexOf(own, e)
	v.perUser[user] = append(append(own[:i:i], own[i+1:]...), e)
}

func (v *verified) remove(e *list.Element) {
	l := v.lru.Remove(e).(*login)
	delete(v.byKey, l.key)
	own := v.perUser[l.user]
	i := indexOf(own, e)
	if own = append(own[:i:i], own[i+1:]...); len(own) == 0 {
		delete(v.perUser, l.user)
	} else {
		v.perUser[l.user] = own
	}
}

func indexOf(entries []*list.Element, e *list.Element) int {
	for i, x := range entries {
		if x == e {
			return i
		}
	}
	panic("auth: cache entry missing from its user's list")
}
