package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/storage"
)

// Garbage collection, safe beside any number of processes serving the same
// store; the protocol that makes it safe is in protocol.go.
//
// Mark, per repository in the catalog: every manifest the repository holds
// is kept — or, with DeleteUntagged, those a tag reaches, transitively
// their index children, their subjects and their referrers, and every
// young one — and the repository holds live each kept manifest's own
// digest and every blob a kept image manifest references (config and
// layers). Sweep: manifests not kept (DeleteUntagged only), referrer
// entries whose manifest is gone, and then, in one walk over blobs/, each
// blob's links from repositories that do not hold it live, and the blob
// itself once no link to it is left. Tags are never removed.
//
// What "still used" means when the collector looks again after marking an
// object (protocol.go), beyond the object being young:
//   - a manifest link or a blob link: nothing more — a push of the
//     manifest rewrites its link, an index pushed over it touches it, an
//     upload, a mount or a manifest push touches or writes a blob link;
//   - a referrer entry: its manifest's link exists;
//   - a blob: any link to it exists.
//
// A repository holding a manifest the collection cannot read (its bytes
// are missing or do not parse) is left alone: nothing in it is removed and
// everything it links stays live, since what that manifest references is
// unknown. The report names it; `octoserve verify` says more.

// GCOptions tune a collection.
type GCOptions struct {
	DryRun         bool          // report, change nothing
	DeleteUntagged bool          // also remove manifests no tag reaches
	MinAge         time.Duration // keep anything newer than this
	// ClockSkew widens MinAge by how far the clocks of the store's nodes
	// may disagree (0 for a local disk; see config gc.clockSkew).
	ClockSkew     time.Duration
	UploadMaxIdle time.Duration // remove upload sessions idle longer (0: keep)
	// Owner names this collector in the lease (default: host and pid);
	// LeaseTTL is the lease's term (default DefaultLeaseTTL).
	Owner    string
	LeaseTTL time.Duration
	// CacheExpiry removes cached manifests (fetched by a pull-through
	// cache) not used for this long, and CacheMaxBytes the least recently
	// used beyond that many bytes held only by cached repositories; 0
	// turns either off (expire.go).
	CacheExpiry   time.Duration
	CacheMaxBytes int64
}

// DefaultLeaseTTL is the housekeeping lease's default term; it is renewed
// every third of it while a run lasts.
const DefaultLeaseTTL = time.Minute

func (o GCOptions) lease() (string, time.Duration) {
	owner, ttl := o.Owner, o.LeaseTTL
	if owner == "" {
		host, _ := os.Hostname()
		owner = fmt.Sprintf("%s pid %d", host, os.Getpid())
	}
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	return owner, ttl
}

// GCReport says what a collection removed (or would remove, in a dry run).
type GCReport struct {
	// Cutoff: anything written or used at or after it was kept.
	Cutoff     time.Time
	Blobs      []string // digests of removed blobs
	BytesFreed int64
	Links      int      // blob links removed from repositories
	Manifests  []string // name@digest of removed manifests
	Referrers  int      // referrer entries of removed manifests
	Uploads    int      // abandoned upload sessions removed
	Skipped    []string // repositories left alone, and why
	Expired    []string // name@digest of cached manifests removed by expiry or the size cap
	CacheBytes int64    // bytes only cached repositories held, when a size cap is set
}

// gcRun is the state of one collection.
type gcRun struct {
	r       *Registry
	opts    GCOptions
	lease   *Lease
	cutoff  time.Time
	report  *GCReport
	live    map[reference.Digest]map[string]bool // digest -> repositories holding it live
	skipped map[string]bool                      // repositories left alone
	gone    map[string]bool                      // name@digest of manifests a dry run would remove
}

// CollectGarbage runs one collection under the housekeeping lease; it
// returns ErrBusy (wrapped) when another collection holds the lease.
func (r *Registry) CollectGarbage(ctx context.Context, opts GCOptions) (*GCReport, error) {
	owner, ttl := opts.lease()
	l, err := r.AcquireLease(ctx, owner, ttl)
	if err != nil {
		return nil, err
	}
	defer l.Release(context.WithoutCancel(ctx))
	now, err := r.storeNow(ctx)
	if err != nil {
		return nil, err
	}
	g := &gcRun{r: r, opts: opts, lease: l, cutoff: now.Add(-opts.MinAge - opts.ClockSkew),
		report: &GCReport{}, live: map[reference.Digest]map[string]bool{}, skipped: map[string]bool{}, gone: map[string]bool{}}
	g.report.Cutoff = g.cutoff
	if err := g.expireCache(ctx); err != nil {
		return g.report, err
	}
	repos, err := r.allRepositories(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range repos {
		if err := g.repository(ctx, name); err != nil {
			return g.report, err
		}
	}
	if err := g.sweepBlobs(ctx); err != nil {
		return g.report, err
	}
	if opts.UploadMaxIdle > 0 {
		n, err := r.purgeUploads(ctx, l, now.Add(-opts.UploadMaxIdle-opts.ClockSkew), opts.DryRun)
		g.report.Uploads = n
		if err != nil {
			return g.report, err
		}
	}
	return g.report, nil
}

func (g *gcRun) young(t time.Time) bool { return !t.Before(g.cutoff) }

func (g *gcRun) holdLive(d reference.Digest, name string) {
	if g.live[d] == nil {
		g.live[d] = map[string]bool{}
	}
	g.live[d][name] = true
}

// judge removes path unless it is used (protocol.go); a dry run only
// reports.
func (g *gcRun) judge(ctx context.Context, path string, stillUsed func() (bool, error)) (bool, error) {
	if g.opts.DryRun {
		return true, nil
	}
	return g.r.judge(ctx, g.lease, g.cutoff, path, stillUsed)
}

// unreadableError is a manifest whose link exists but whose bytes are
// missing or do not parse.
type unreadableError struct {
	d   reference.Digest
	why string
}

func (e *unreadableError) Error() string { return fmt.Sprintf("manifest %s %s", e.d, e.why) }

// readManifest reads manifest d of name. It returns nil, "", nil when the
// manifest was deleted since the listing, and an *unreadableError when its
// link exists but its bytes are missing or do not parse.
func (g *gcRun) readManifest(ctx context.Context, name string, d reference.Digest) (*manifestFields, string, error) {
	mt, err := g.r.d.GetContent(ctx, revisionLink(name, d))
	if isNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading manifest link %s in %s: %w", d, name, err)
	}
	body, err := g.r.manifestBytes(ctx, d)
	if isNotFound(err) {
		return nil, "", &unreadableError{d, "has a link but its bytes are missing"}
	}
	if err != nil {
		return nil, "", err
	}
	mf, mediaType, err := parseManifest(string(mt), body)
	if err != nil {
		return nil, "", &unreadableError{d, "does not parse: " + err.Error()}
	}
	return mf, mediaType, nil
}

// repository marks what repository name holds live and sweeps its
// manifests (with DeleteUntagged) and its dangling referrer entries.
func (g *gcRun) repository(ctx context.Context, name string) error {
	revs, err := g.r.listRevisions(ctx, name)
	if err != nil {
		return err
	}
	kept, err := g.keptManifests(ctx, name, revs)
	if err != nil {
		return g.unreadable(name, err)
	}
	for _, rev := range revs {
		if !kept[rev.digest] || g.gone[name+"@"+rev.digest.String()] {
			continue
		}
		mf, mediaType, err := g.readManifest(ctx, name, rev.digest)
		if err != nil {
			return g.unreadable(name, err)
		}
		if mf == nil {
			continue // deleted since the listing
		}
		g.holdLive(rev.digest, name)
		for _, d := range mf.referencedBlobs(mediaType) {
			g.holdLive(d, name)
		}
	}
	for _, rev := range revs {
		if !kept[rev.digest] {
			if err := g.removeManifest(ctx, name, rev.digest); err != nil {
				return err
			}
		}
	}
	return g.sweepReferrers(ctx, name)
}

// unreadable handles err from marking repository name: an unreadable
// manifest leaves the repository as it is, with everything it links live;
// any other error stops the collection.
func (g *gcRun) unreadable(name string, err error) error {
	var bad *unreadableError
	if !errors.As(err, &bad) {
		return err
	}
	g.report.Skipped = append(g.report.Skipped, fmt.Sprintf("%s: %v; nothing removed from this repository", name, bad))
	g.skipped[name] = true
	return nil
}

// keptManifests returns the manifests of name that survive: all of them,
// or with DeleteUntagged those reachable from tags and young ones.
func (g *gcRun) keptManifests(ctx context.Context, name string, revs []entry) (map[reference.Digest]bool, error) {
	kept := map[reference.Digest]bool{}
	have := map[reference.Digest]bool{}
	var queue []reference.Digest
	add := func(d reference.Digest) {
		if have[d] && !kept[d] {
			kept[d] = true
			queue = append(queue, d)
		}
	}
	for _, rev := range revs {
		have[rev.digest] = true
	}
	for _, rev := range revs {
		if !g.opts.DeleteUntagged || g.young(rev.modTime) {
			add(rev.digest)
		}
	}
	if !g.opts.DeleteUntagged {
		return kept, nil
	}
	tags, err := g.r.tagTargets(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, d := range tags {
		add(d)
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		mf, _, err := g.readManifest(ctx, name, d)
		if err != nil {
			return nil, err
		}
		if mf == nil {
			continue // deleted since the listing
		}
		for _, child := range mf.Manifests {
			add(reference.Digest(child.Digest))
		}
		if mf.Subject != nil {
			add(reference.Digest(mf.Subject.Digest))
		}
		referrers, err := g.r.referrerDigests(ctx, name, d)
		if err != nil {
			return nil, err
		}
		for _, ref := range referrers {
			add(ref)
		}
	}
	// Every manifest is read once more when marking, so an unreadable one
	// that nothing keeps still leaves the repository alone.
	for _, rev := range revs {
		if !kept[rev.digest] {
			if _, _, err := g.readManifest(ctx, name, rev.digest); err != nil {
				return nil, err
			}
		}
	}
	return kept, nil
}

// removeManifest removes the link of manifest d of name, which nothing
// keeps, unless it is young by now. No tag pointed at it when the
// collection looked; one written since belongs to a push that also
// rewrote its link, so tags are left alone. Its referrer entry goes in
// sweepReferrers, its bytes' link and bytes in sweepBlobs.
func (g *gcRun) removeManifest(ctx context.Context, name string, d reference.Digest) error {
	removed, err := g.judge(ctx, revisionLink(name, d), nil)
	if err != nil || !removed {
		return err
	}
	g.report.Manifests = append(g.report.Manifests, name+"@"+d.String())
	if g.opts.DryRun {
		g.gone[name+"@"+d.String()] = true
	}
	return nil
}

// sweepReferrers removes the referrer entries of name whose manifest is
// gone: removed by this collection, or by a manifest delete that a crash
// interrupted. A push writes its entry after its manifest link.
func (g *gcRun) sweepReferrers(ctx context.Context, name string) error {
	for _, alg := range algorithms {
		dir := repoPath(name) + "/_referrers/" + alg
		subjects, err := g.r.d.Names(ctx, dir, "", 0)
		if err != nil {
			return fmt.Errorf("listing %s: %w", dir, err)
		}
		for _, s := range subjects {
			if !s.Dir {
				continue
			}
			if err := g.sweepReferrersOf(ctx, name, dir+"/"+s.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *gcRun) sweepReferrersOf(ctx context.Context, name, dir string) error {
	entries, err := g.r.listNames(ctx, dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		d, err := referrerDigest(e)
		if err != nil {
			continue // not ours
		}
		link := revisionLink(name, d)
		if g.gone[name+"@"+d.String()] {
			g.report.Referrers++
			continue
		}
		if ok, err := g.r.exists(ctx, link); err != nil || ok {
			if err != nil {
				return err
			}
			continue
		}
		removed, err := g.judge(ctx, dir+"/"+e, func() (bool, error) { return g.r.exists(ctx, link) })
		if err != nil {
			return err
		}
		if removed {
			g.report.Referrers++
		}
	}
	return nil
}

// blobGroup is one blob as the walk over blobs/ finds it: its bytes (if
// any) and its links.
type blobGroup struct {
	digest reference.Digest
	data   *storage.Info
	links  []storage.Entry // Name is the repository key
}

// sweepBlobs walks blobs/ once, removing the links no repository holds
// live and the blobs no link is left to.
func (g *gcRun) sweepBlobs(ctx context.Context) error {
	return g.r.walkBlobs(ctx, func(b *blobGroup) error { return g.sweepBlob(ctx, b) })
}

func (g *gcRun) sweepBlob(ctx context.Context, b *blobGroup) error {
	holders := g.live[b.digest]
	left := 0
	for _, l := range b.links {
		name := repoName(l.Name)
		if holders[name] || g.skipped[name] || g.young(l.ModTime) {
			left++
			continue
		}
		removed, err := g.judge(ctx, blobLink(name, b.digest), nil)
		if err != nil {
			return err
		}
		if removed {
			g.report.Links++
		} else {
			left++
		}
	}
	if b.data == nil || left > 0 || len(holders) > 0 || g.young(b.data.ModTime) {
		return nil
	}
	removed, err := g.judge(ctx, blobPath(b.digest), func() (bool, error) {
		links, err := g.r.d.Names(ctx, linksDir(b.digest), "", 1)
		return len(links) > 0, err
	})
	if err != nil || !removed {
		return err
	}
	g.report.Blobs = append(g.report.Blobs, b.digest.String())
	g.report.BytesFreed += b.data.Size
	return nil
}

// walkBlobs calls fn for every blob under blobs/, in one walk: a blob's
// bytes sort just before its links ("<hex>" < "<hex>.repos/..."), so each
// blob's objects arrive together.
func (r *Registry) walkBlobs(ctx context.Context, fn func(*blobGroup) error) error {
	var cur *blobGroup
	flush := func() error {
		if cur == nil {
			return nil
		}
		b := cur
		cur = nil
		return fn(b)
	}
	err := r.d.Walk(ctx, "blobs", func(e storage.Entry) error {
		d, link, ok := parseBlobKey(e.Name)
		if !ok {
			return nil // not ours
		}
		if cur != nil && cur.digest != d {
			if err := flush(); err != nil {
				return err
			}
		}
		if cur == nil {
			cur = &blobGroup{digest: d}
		}
		if link == "" {
			info := e.Info
			cur.data = &info
		} else {
			cur.links = append(cur.links, storage.Entry{Name: link, Info: e.Info})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// parseBlobKey reads "<alg>/<xx>/<hex>" (a blob's bytes) or
// "<alg>/<xx>/<hex>.repos/<repo>" (a link) under blobs/.
func parseBlobKey(key string) (d reference.Digest, repo string, ok bool) {
	parts := strings.Split(key, "/")
	if len(parts) < 3 {
		return "", "", false
	}
	hex := parts[2]
	switch len(parts) {
	case 3:
	case 4:
		var isLinks bool
		hex, isLinks = strings.CutSuffix(hex, ".repos")
		if !isLinks || parts[3] == "" {
			return "", "", false
		}
		repo = parts[3]
	default:
		return "", "", false
	}
	d, err := reference.ParseDigest(parts[0] + ":" + hex)
	if err != nil || d.Hex()[:2] != parts[1] {
		return "", "", false
	}
	return d, repo, true
}
