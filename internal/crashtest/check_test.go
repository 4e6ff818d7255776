package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/octoserve/octoserve/internal/storage"
)

const manifestAccept = mtManifest + ", " + mtIndex

// maxFailures bounds how many problems one check reports.
const maxFailures = 40

// checker compares what a restarted octoserve serves with the ledger.
type checker struct {
	c        *http.Client
	base     string
	store    storage.Driver // the server's store, to describe what it holds
	l        *ledger
	failures []string
	requests int
	since    int // check only what was pushed in this round or later (0: all)
	// in-flight pushes (attempted, never acknowledged) found complete or absent
	inflightVisible, inflightAbsent int
	blobDone                        map[key]bool // (repo, digest) verified present and right
	walked                          map[key]bool // (repo, manifest digest) walked completely
}

func newChecker(c *http.Client, base string, store storage.Driver, l *ledger) *checker {
	return &checker{c: c, base: base, store: store, l: l, blobDone: map[key]bool{}, walked: map[key]bool{}}
}

func (k *checker) fail(format string, args ...any) {
	if len(k.failures) < maxFailures {
		k.failures = append(k.failures, fmt.Sprintf(format, args...))
	} else if len(k.failures) == maxFailures {
		k.failures = append(k.failures, "... (more failures left out)")
	}
}

func (k *checker) full() bool { return len(k.failures) > maxFailures }

type answer struct {
	status int
	header http.Header
	body   []byte
}

// get sends a GET or HEAD; a transport error is a failure (the server is
// supposed to be up) and yields status 0.
func (k *checker) get(method, path, accept string) answer {
	k.requests++
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, k.base+path, nil)
	if err != nil {
		panic(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := k.c.Do(req)
	if err != nil {
		k.fail("%s %s: %v", method, path, err)
		return answer{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		k.fail("%s %s: reading body: %v", method, path, err)
		return answer{}
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// show describes a served body briefly for failure messages.
func show(b []byte) string {
	if len(b) > 200 {
		return fmt.Sprintf("%q... (%d bytes, %s)", b[:200], len(b), sha256Digest(b))
	}
	return fmt.Sprintf("%q (%d bytes, %s)", b, len(b), sha256Digest(b))
}

// onDisk describes what the store holds for a blob or manifest digest
// (and a tag) in repo, following the layout documented in
// internal/registry/registry.go, so a failure shows what was visible.
func (k *checker) onDisk(repo, d, tag string) string {
	alg, hex, ok := strings.Cut(d, ":")
	var parts []string
	ctx := context.Background()
	stat := func(label, key string) {
		info, err := k.store.Stat(ctx, key)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			parts = append(parts, label+": absent")
		case err != nil:
			parts = append(parts, fmt.Sprintf("%s: %v", label, err))
		default:
			parts = append(parts, fmt.Sprintf("%s: %d bytes", label, info.Size))
		}
	}
	if ok && len(hex) > 2 {
		stat("blob file", "blobs/"+alg+"/"+hex[:2]+"/"+hex)
		stat("blob link", "blobs/"+alg+"/"+hex[:2]+"/"+hex+".repos/"+strings.ReplaceAll(repo, "/", "~"))
		stat("manifest link", "repositories/"+repo+"/_manifests/revisions/"+alg+"/"+hex)
	}
	if tag != "" {
		b, err := k.store.GetContent(ctx, "repositories/"+repo+"/_manifests/tags/"+tag)
		if err != nil {
			parts = append(parts, "tag file: absent")
		} else {
			parts = append(parts, fmt.Sprintf("tag file: %q", b))
		}
	}
	return "[on disk: " + strings.Join(parts, "; ") + "]"
}

// blob checks that blob d of repo is served, whole and right, by GET and
// HEAD. want is the pushed content (nil if unknown); why says who
// requires the blob.
func (k *checker) blob(repo, d string, size int64, why string) {
	kk := key{repo, d}
	if k.blobDone[kk] || k.full() {
		return
	}
	k.blobDone[kk] = true
	path := "/v2/" + repo + "/blobs/" + d
	a := k.get(http.MethodGet, path, "")
	if a.status == 0 {
		return
	}
	if a.status != http.StatusOK {
		k.fail("%s: GET %s: status %d, want 200; body %s %s", why, path, a.status, show(a.body), k.onDisk(repo, d, ""))
		return
	}
	if got := sha256Digest(a.body); got != d {
		k.fail("%s: GET %s served %s, whose digest is %s %s", why, path, show(a.body), got, k.onDisk(repo, d, ""))
		return
	}
	if size >= 0 && int64(len(a.body)) != size {
		k.fail("%s: GET %s served %d bytes, the descriptor says %d", why, path, len(a.body), size)
	}
	h := k.get(http.MethodHead, path, "")
	if h.status != http.StatusOK {
		k.fail("%s: HEAD %s: status %d after GET answered 200", why, path, h.status)
		return
	}
	if cl := h.header.Get("Content-Length"); cl != strconv.Itoa(len(a.body)) {
		k.fail("%s: HEAD %s: Content-Length %q, the blob has %d bytes", why, path, cl, len(a.body))
	}
	if dg := h.header.Get("Docker-Content-Digest"); dg != "" && dg != d {
		k.fail("%s: HEAD %s: Docker-Content-Digest %q", why, path, dg)
	}
}

// manifest fetches manifest ref (tag or digest) of repo by GET and HEAD,
// checks it is whole and (want != "") has digest want, and walks
// everything it references: config and layers must be served and hash
// right, child manifests likewise, recursively. It returns the body.
func (k *checker) manifest(repo, ref, want, why string, depth int) []byte {
	if k.full() {
		return nil
	}
	path := "/v2/" + repo + "/manifests/" + ref
	tag := ""
	if !strings.Contains(ref, ":") {
		tag = ref
	}
	a := k.get(http.MethodGet, path, manifestAccept)
	if a.status == 0 {
		return nil
	}
	if a.status != http.StatusOK {
		k.fail("%s: GET %s: status %d, want 200; body %s %s", why, path, a.status, show(a.body), k.onDisk(repo, want, tag))
		return nil
	}
	got := sha256Digest(a.body)
	if want != "" && got != want {
		k.fail("%s: GET %s served %s, want manifest %s (%s) %s", why, path, show(a.body), want, show(k.content(want)), k.onDisk(repo, want, tag))
		return nil
	}
	if dg := a.header.Get("Docker-Content-Digest"); dg != got {
		k.fail("%s: GET %s: Docker-Content-Digest %q, body digest %s", why, path, dg, got)
	}
	h := k.get(http.MethodHead, path, manifestAccept)
	if h.status != http.StatusOK || h.header.Get("Content-Length") != strconv.Itoa(len(a.body)) {
		k.fail("%s: HEAD %s: status %d Content-Length %q, GET served %d bytes", why, path, h.status, h.header.Get("Content-Length"), len(a.body))
	}
	if pushed := k.content(got); pushed != nil && !bytes.Equal(pushed, a.body) {
		k.fail("%s: GET %s: served bytes differ from the pushed ones", why, path)
	}
	k.walk(repo, got, a.header.Get("Content-Type"), a.body, why, depth)
	return a.body
}

func (k *checker) content(d string) []byte {
	k.l.mu.Lock()
	defer k.l.mu.Unlock()
	return k.l.content[d]
}

// walk checks everything manifest d (body b, served as mediaType)
// references, once per check.
func (k *checker) walk(repo, d, mediaType string, b []byte, why string, depth int) {
	kk := key{repo, d}
	if k.walked[kk] {
		return
	}
	k.walked[kk] = true
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		k.fail("%s: manifest %s of %s is not JSON: %v: %s", why, d, repo, err, show(b))
		return
	}
	if m.MediaType != "" && m.MediaType != mediaType {
		k.fail("%s: manifest %s of %s served as %q but its mediaType is %q", why, d, repo, mediaType, m.MediaType)
	}
	inner := why + " -> " + repo + "@" + d
	switch mediaType {
	case mtManifest:
		if m.Config == nil {
			k.fail("%s: manifest %s of %s has no config", why, d, repo)
			return
		}
		k.blob(repo, m.Config.Digest, m.Config.Size, inner+" config")
		for _, l := range m.Layers {
			k.blob(repo, l.Digest, l.Size, inner+" layer")
		}
	case mtIndex:
		if depth >= 2 {
			k.fail("%s: index %s of %s nests too deep", why, d, repo)
			return
		}
		for _, c := range m.Manifests {
			body := k.manifest(repo, c.Digest, c.Digest, inner+" child", depth+1)
			if body != nil && int64(len(body)) != c.Size {
				k.fail("%s: child %s has %d bytes, the index says %d", inner, c.Digest, len(body), c.Size)
			}
		}
	default:
		k.fail("%s: manifest %s of %s served with Content-Type %q", why, d, repo, mediaType)
	}
}

// run checks what the ledger holds from round k.since on (everything when
// since is 0) against the server:
//   - every acknowledged blob, manifest (by digest) and tag is served
//     byte-identical, with everything it references;
//   - every blob or manifest digest ever attempted is either 404 or
//     exactly the pushed bytes;
//   - every listed tag was attempted by a pusher and resolves to its
//     manifest, complete; every acknowledged tag is listed;
//   - referrers lists hold every acknowledged referrer and nothing that
//     does not resolve.
func (k *checker) run() {
	k.l.mu.Lock()
	blobsTried := maps.Clone(k.l.blobsTried)
	blobsAcked := maps.Clone(k.l.blobsAcked)
	manifestsTried := maps.Clone(k.l.manifestsTried)
	manifestsAcked := maps.Clone(k.l.manifestsAcked)
	tagsTried := maps.Clone(k.l.tagsTried)
	tagsAcked := maps.Clone(k.l.tagsAcked)
	tagRound := maps.Clone(k.l.tagRound)
	refTried := map[key]bool{} // subjects with a referrer pushed since k.since
	for sk, set := range k.l.referrersTried {
		for d := range set {
			if k.l.manifestsTried[key{sk.repo, d}].round >= k.since {
				refTried[sk] = true
			}
		}
	}
	refAcked := map[key]map[string]bool{}
	for sk, set := range k.l.referrersAcked {
		refAcked[sk] = maps.Clone(set)
	}
	repos := maps.Clone(k.l.repos)
	k.l.mu.Unlock()

	// Acknowledged blobs.
	for _, kk := range sortedKeys(blobsAcked) {
		if blobsAcked[kk] < k.since {
			continue
		}
		k.blob(kk.repo, kk.ref, -1, fmt.Sprintf("blob acknowledged in round %d", blobsAcked[kk]))
	}
	// Acknowledged manifests, by digest and walked.
	for _, kk := range sortedKeys(manifestsAcked) {
		m := manifestsAcked[kk]
		if m.round < k.since {
			continue
		}
		body := k.manifest(kk.repo, kk.ref, kk.ref, fmt.Sprintf("manifest acknowledged in round %d (tag %q)", m.round, m.tag), 0)
		if body != nil && !bytes.Equal(body, m.body) {
			k.fail("manifest %s of %s: served bytes differ from the acknowledged push", kk.ref, kk.repo)
		}
	}
	// Acknowledged tags.
	for _, kk := range sortedKeys(tagsAcked) {
		if tagRound[kk] < k.since {
			continue
		}
		k.manifest(kk.repo, kk.ref, tagsAcked[kk], "acknowledged tag "+kk.String(), 0)
	}
	// Attempted, unacknowledged blobs: absent or exactly right.
	for _, kk := range sortedKeys(blobsTried) {
		if _, ok := blobsAcked[kk]; ok || blobsTried[kk] < k.since || k.full() {
			continue
		}
		path := "/v2/" + kk.repo + "/blobs/" + kk.ref
		a := k.get(http.MethodGet, path, "")
		switch {
		case a.status == 0:
		case a.status == http.StatusNotFound:
			k.inflightAbsent++
		case a.status == http.StatusOK:
			k.inflightVisible++
			if sha256Digest(a.body) != kk.ref {
				k.fail("unacknowledged blob: GET %s served %s %s", path, show(a.body), k.onDisk(kk.repo, kk.ref, ""))
			} else {
				k.blob(kk.repo, kk.ref, -1, "unacknowledged but visible blob")
			}
		default:
			k.fail("unacknowledged blob: GET %s: status %d, want 200 or 404; body %s", path, a.status, show(a.body))
		}
	}
	// Attempted, unacknowledged manifests: absent or complete.
	for _, kk := range sortedKeys(manifestsTried) {
		if _, ok := manifestsAcked[kk]; ok || manifestsTried[kk].round < k.since || k.full() {
			continue
		}
		path := "/v2/" + kk.repo + "/manifests/" + kk.ref
		a := k.get(http.MethodGet, path, manifestAccept)
		switch a.status {
		case 0:
		case http.StatusNotFound:
			k.inflightAbsent++
		case http.StatusOK:
			k.inflightVisible++
			k.manifest(kk.repo, kk.ref, kk.ref, "unacknowledged but visible manifest", 0)
		default:
			k.fail("unacknowledged manifest: GET %s: status %d, want 200 or 404; body %s", path, a.status, show(a.body))
		}
	}
	// Tag lists: everything listed is complete; everything acknowledged is listed.
	for _, repo := range slices.Sorted(maps.Keys(repos)) {
		listed, ok := k.tags(repo, tagsAcked)
		if !ok {
			continue
		}
		set := map[string]bool{}
		for _, tag := range listed {
			set[tag] = true
			want, tried := tagsTried[key{repo, tag}]
			if !tried {
				k.fail("tags/list of %s lists %q, which no pusher sent", repo, tag)
				continue
			}
			if _, acked := tagsAcked[key{repo, tag}]; !acked {
				k.inflightVisible++
				k.manifest(repo, tag, want, "listed but unacknowledged tag "+repo+":"+tag, 0)
			}
		}
		for kk := range tagsAcked {
			if kk.repo == repo && !set[kk.ref] {
				k.fail("acknowledged tag %s is missing from tags/list (%d tags listed) %s", kk, len(listed), k.onDisk(repo, tagsAcked[kk], kk.ref))
			}
		}
	}
	// Referrers.
	for _, sk := range sortedKeys(refTried) {
		k.referrers(sk, refAcked[sk], manifestsTried)
	}
}

// tags lists every tag of repo, following Link pages (bounded).
func (k *checker) tags(repo string, acked map[key]string) ([]string, bool) {
	var all []string
	path := "/v2/" + repo + "/tags/list?n=500"
	for page := 0; page < 100 && path != ""; page++ {
		a := k.get(http.MethodGet, path, "")
		if a.status == http.StatusNotFound && page == 0 {
			// A repository that never got anything acknowledged may not exist.
			for kk := range acked {
				if kk.repo == repo {
					k.fail("GET %s: 404 but tag %s was acknowledged", path, kk)
					break
				}
			}
			return nil, false
		}
		if a.status != http.StatusOK {
			if a.status != 0 {
				k.fail("GET %s: status %d; body %s", path, a.status, show(a.body))
			}
			return nil, false
		}
		var list struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(a.body, &list); err != nil {
			k.fail("GET %s: not a tag list: %v: %s", path, err, show(a.body))
			return nil, false
		}
		all = append(all, list.Tags...)
		path = nextLink(a.header.Get("Link"))
	}
	return all, true
}

// nextLink extracts the path of a Link: <...>; rel="next" header.
func nextLink(h string) string {
	start, end := strings.Index(h, "<"), strings.Index(h, ">")
	if start < 0 || end < start || !strings.Contains(h, `rel="next"`) {
		return ""
	}
	u, err := url.Parse(h[start+1 : end])
	if err != nil {
		return ""
	}
	return u.RequestURI()
}

// referrers checks the referrers list of subject sk.ref in sk.repo: every
// acknowledged referrer is in it, and every entry is a manifest a pusher
// sent with that subject, served complete.
func (k *checker) referrers(sk key, acked map[string]bool, tried map[key]*manifestRec) {
	if k.full() {
		return
	}
	path := "/v2/" + sk.repo + "/referrers/" + sk.ref
	a := k.get(http.MethodGet, path, "")
	if a.status == 0 {
		return
	}
	if a.status != http.StatusOK {
		k.fail("GET %s: status %d, want 200; body %s", path, a.status, show(a.body))
		return
	}
	var idx manifest
	if err := json.Unmarshal(a.body, &idx); err != nil {
		k.fail("GET %s: not an index: %v: %s", path, err, show(a.body))
		return
	}
	listed := map[string]bool{}
	for _, d := range idx.Manifests {
		listed[d.Digest] = true
		rec, ok := tried[key{sk.repo, d.Digest}]
		if !ok || rec.subject != sk.ref {
			k.fail("GET %s lists %s, which no pusher sent with that subject", path, d.Digest)
			continue
		}
		if d.Size != int64(len(rec.body)) || d.ArtifactType != mtArtifact {
			k.fail("GET %s: entry %s has size %d artifactType %q, want %d %q", path, d.Digest, d.Size, d.ArtifactType, len(rec.body), mtArtifact)
		}
		k.manifest(sk.repo, d.Digest, d.Digest, "referrer listed by "+path, 0)
	}
	for d := range acked {
		if !listed[d] {
			k.fail("GET %s: acknowledged referrer %s is missing (%d listed) %s", path, d, len(idx.Manifests), k.onDisk(sk.repo, d, ""))
		}
	}
}
