package crashtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
)

// key names a blob or manifest (ref a digest) or a tag (ref a tag) in a
// repository.
type key struct{ repo, ref string }

func (k key) String() string { return k.repo + "@" + k.ref }

// manifestRec is a manifest a pusher sent.
type manifestRec struct {
	repo      string
	digest    string
	mediaType string
	body      []byte
	tag       string // "" when pushed by digest only
	subject   string // "" without a subject
	round     int
}

// ledger records what the pushers attempted (before sending the request)
// and what the registry acknowledged (after its 201 arrived). Content is
// kept by digest so any served byte can be compared.
type ledger struct {
	mu             sync.Mutex
	content        map[string][]byte // digest -> bytes, every blob and manifest attempted
	blobsTried     map[key]int       // (repo, digest) -> round first attempted
	blobsAcked     map[key]int       // (repo, digest) -> round acknowledged
	manifestsTried map[key]*manifestRec
	manifestsAcked map[key]*manifestRec
	tagsTried      map[key]string // (repo, tag) -> manifest digest
	tagsAcked      map[key]string
	tagRound       map[key]int             // (repo, tag) -> round first acknowledged
	referrersTried map[key]map[string]bool // (repo, subject) -> referrer digests
	referrersAcked map[key]map[string]bool
	repos          map[string]bool
	protocol       []string // answers that no correct registry gives
	pushed         map[int]*roundStats
	tagged         chan struct{} // closed when the first tag is acknowledged
}

type roundStats struct{ blobsAcked, manifestsAcked, tagsAcked, transportErrs int }

func newLedger() *ledger {
	return &ledger{
		content:        map[string][]byte{},
		blobsTried:     map[key]int{},
		blobsAcked:     map[key]int{},
		manifestsTried: map[key]*manifestRec{},
		manifestsAcked: map[key]*manifestRec{},
		tagsTried:      map[key]string{},
		tagsAcked:      map[key]string{},
		tagRound:       map[key]int{},
		referrersTried: map[key]map[string]bool{},
		referrersAcked: map[key]map[string]bool{},
		repos:          map[string]bool{},
		pushed:         map[int]*roundStats{},
		tagged:         make(chan struct{}),
	}
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (l *ledger) stats(round int) *roundStats {
	s, ok := l.pushed[round]
	if !ok {
		s = &roundStats{}
		l.pushed[round] = s
	}
	return s
}

func (l *ledger) tryBlob(repo, d string, data []byte, round int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.repos[repo] = true
	l.content[d] = data
	k := key{repo, d}
	if _, ok := l.blobsTried[k]; !ok {
		l.blobsTried[k] = round
	}
}

func (l *ledger) ackBlob(repo, d string, round int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := key{repo, d}
	if _, ok := l.blobsAcked[k]; !ok {
		l.blobsAcked[k] = round
	}
	l.stats(round).blobsAcked++
}

// ackedIn returns a repository other than repo holding blob d, if any.
func (l *ledger) ackedIn(d, repo string, repos []string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range repos {
		if r == repo {
			continue
		}
		if _, ok := l.blobsAcked[key{r, d}]; ok {
			return r
		}
	}
	return ""
}

func (l *ledger) tryManifest(m *manifestRec) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.repos[m.repo] = true
	l.content[m.digest] = m.body
	k := key{m.repo, m.digest}
	if _, ok := l.manifestsTried[k]; !ok {
		l.manifestsTried[k] = m
	}
	if m.tag != "" {
		l.tagsTried[key{m.repo, m.tag}] = m.digest
	}
	if m.subject != "" {
		sk := key{m.repo, m.subject}
		if l.referrersTried[sk] == nil {
			l.referrersTried[sk] = map[string]bool{}
		}
		l.referrersTried[sk][m.digest] = true
	}
}

func (l *ledger) ackManifest(m *manifestRec) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := key{m.repo, m.digest}
	if _, ok := l.manifestsAcked[k]; !ok {
		l.manifestsAcked[k] = m
	}
	st := l.stats(m.round)
	st.manifestsAcked++
	if m.tag != "" {
		tk := key{m.repo, m.tag}
		if len(l.tagsAcked) == 0 {
			close(l.tagged)
		}
		l.tagsAcked[tk] = m.digest
		if _, ok := l.tagRound[tk]; !ok {
			l.tagRound[tk] = m.round
		}
		st.tagsAcked++
	}
	if m.subject != "" {
		sk := key{m.repo, m.subject}
		if l.referrersAcked[sk] == nil {
			l.referrersAcked[sk] = map[string]bool{}
		}
		l.referrersAcked[sk][m.digest] = true
	}
}

func (l *ledger) protocolError(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.protocol) < 50 {
		l.protocol = append(l.protocol, fmt.Sprintf(format, args...))
	}
}

func (l *ledger) transportError(round int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats(round).transportErrs++
}

// totals counts what was acknowledged over all rounds so far.
func (l *ledger) totals() (blobs, manifests, tags int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.blobsAcked), len(l.manifestsAcked), len(l.tagsAcked)
}

func sortedKeys[V any](m map[key]V) []key {
	ks := make([]key, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].repo != ks[j].repo {
			return ks[i].repo < ks[j].repo
		}
		return ks[i].ref < ks[j].ref
	})
	return ks
}
