package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/octoserve/octoserve/internal/reference"
)

// Garbage collection.
//
// Mark, per repository: every manifest the repository holds is kept — or,
// with DeleteUntagged, those a tag reaches, and transitively their index
// children, their subjects and their referrers — and every blob a kept
// manifest references (config, layers) is live, as is every kept manifest's
// own blob. Sweep: manifests not kept (DeleteUntagged only), then layer
// links no kept manifest uses, then referrer entries whose manifest is gone,
// then blobs no repository links. A blob shared between repositories lives
// while any of them links it. Tags are never removed by a collection.
//
// Anything written or used after the cutoff — the run's start minus MinAge
// (and timestampSlack) — is kept whatever the mark says: it may belong to
// a push in progress (blobs uploaded, manifest not yet).
//
// A repository holding a manifest the collection cannot read (its bytes are
// missing or do not parse) is left alone: nothing in it is removed and
// everything it links stays live, since what that manifest references is
// unknown. The report names it; `octoserve verify` says more.
//
// Safety against a registry serving while GC runs, in this process or
// another (`octoserve gc` beside `octoserve serve`; nothing is shared but
// the storage), rests on two rules:
//
//  1. Writers refresh before they rely, then check. Linking a blob (upload
//     finish, mount) writes a new link file, then checks that the blob is
//     in place (an upload puts its own copy back if not; a mount answers
//     that it could not mount). Pushing a manifest touches (Driver.Touch)
//     the links of the blobs and child manifests it references — refusing
//     if one is gone — writes its own revision link, touches the same
//     links again, then checks that its bytes and every referenced blob
//     are in place; it writes its referrer entry and tags only after that.
//  2. GC moves a candidate aside (an atomic Move into _gc/), then looks
//     again — at the moved object's modification time; for a blob, for a
//     link to it in any repository; for a referrer entry, for its
//     manifest's revision link — and puts it back if anything refreshed or
//     linked it meanwhile. Only then is it deleted.
//
// Each side writes before it reads what the other writes (writer: refresh,
// then check; GC: move, then look), so at least one sees the other.
//
//   - A blob: GC removes it only if, after moving it, it found no link to
//     it anywhere. A writer that links the blob afterwards checks for the
//     blob afterwards too, finds it gone, and re-uploads or fails; a
//     writer that linked it before is seen.
//   - A layer link (or, with DeleteUntagged, a child's revision link) is a
//     candidate only if no manifest GC listed uses it and it was older than
//     the cutoff when listed. A manifest that uses it and that GC did not
//     list wrote its revision link after GC listed the repository's
//     manifests, hence after GC started, and its second touch comes after
//     that. If the touch comes before GC's move, the moved link is newer
//     than the cutoff and goes back; if after, the touch fails and the
//     push is refused (MANIFEST_BLOB_UNKNOWN: the client pushes again). The
//     first touch alone would not do: a push slower than MinAge between it
//     and its revision link would look old.
//   - A referrer entry is removed only if its manifest's revision link is
//     missing after the move; a push writes the entry after the link.
//
// A writer that finds something moved aside waits up to a second for GC to
// put it back before it gives up, so a push is refused only when what it
// needs is really gone. Blobs that a kept manifest or a surviving link
// names are never candidates, so reads of live content are never
// disturbed. A crash with objects in _gc/ is undone by RecoverGC (run
// before every collection and when serve starts), which moves them back;
// the next run decides again. Two collections at once are safe, but one
// may stop with an error when the other restores what it moved aside.

// GCOptions tune a collection.
type GCOptions struct {
	DryRun         bool          // report, change nothing
	DeleteUntagged bool          // also remove manifests no tag reaches
	MinAge         time.Duration // keep anything newer than this
	UploadMaxIdle  time.Duration // remove upload sessions idle longer (0: keep)
}

// GCReport says what a collection removed (or would remove, in a dry run).
type GCReport struct {
	Blobs      []string // digests of removed blobs
	BytesFreed int64
	Links      int      // blob links removed from repositories
	Manifests  []string // name@digest of removed manifests
	Referrers  int      // referrer entries of removed manifests
	Uploads    int      // abandoned upload sessions removed
	Skipped    []string // repositories left alone, and why

	Cutoff time.Time // anything written or used after it was kept
}

const graveDir = "_gc"

// timestampSlack widens the grace period by how far a stored object's
// modification time may lag the clock: Linux stamps files from a clock
// that advances once per scheduler tick (up to 10ms), so an object written
// just after a run began may carry a time just before it. A backend with
// coarser times (object stores: 1s) needs MinAge of at least that.
const timestampSlack = 50 * time.Millisecond

// gcRun is the state of one collection.
type gcRun struct {
	r      *Registry
	opts   GCOptions
	cutoff time.Time
	report *GCReport
	live   map[reference.Digest]bool
	gone   map[string]bool // name@digest of manifests a dry run would remove
}

// CollectGarbage runs one collection.
func (r *Registry) CollectGarbage(ctx context.Context, opts GCOptions) (*GCReport, error) {
	if err := r.RecoverGC(ctx); err != nil {
		return nil, err
	}
	g := &gcRun{r: r, opts: opts, cutoff: time.Now().Add(-opts.MinAge - timestampSlack), report: &GCReport{}, live: map[reference.Digest]bool{}, gone: map[string]bool{}}
	g.report.Cutoff = g.cutoff
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
		n, err := r.PurgeUploads(ctx, opts.UploadMaxIdle, opts.DryRun)
		g.report.Uploads = n
		if err != nil {
			return g.report, err
		}
	}
	return g.report, nil
}

func (g *gcRun) young(t time.Time) bool { return !t.Before(g.cutoff) }

// unreadableError is a manifest whose revision link exists but whose bytes
// are missing or do not parse.
type unreadableError struct {
	d   reference.Digest
	why string
}

func (e *unreadableError) Error() string { return fmt.Sprintf("manifest %s %s", e.d, e.why) }

// readManifest reads manifest d of name. It returns nil, "", nil when the
// manifest was deleted since the listing, and an *unreadableError when
// its link exists but its bytes are missing or do not parse.
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

// repository marks what repository name keeps and sweeps its manifests
// (with DeleteUntagged), its unreferenced blob links and the referrer
// entries of manifests that are gone.
func (g *gcRun) repository(ctx context.Context, name string) error {
	revs, err := g.r.listRevisions(ctx, name)
	if err != nil {
		return err
	}
	kept, err := g.keptManifests(ctx, name, revs)
	if err != nil {
		return g.unreadable(ctx, name, revs, err)
	}
	referenced := map[reference.Digest]bool{}
	for _, rev := range revs {
		if !kept[rev.digest] {
			continue
		}
		mf, mediaType, err := g.readManifest(ctx, name, rev.digest)
		if err != nil {
			return g.unreadable(ctx, name, revs, err)
		}
		if mf == nil {
			continue // deleted since the listing
		}
		g.live[rev.digest] = true
		if isImageManifest(mediaType) {
			referenced[reference.Digest(mf.Config.Digest)] = true
			for _, l := range mf.Layers {
				referenced[reference.Digest(l.Digest)] = true
			}
		}
	}
	for _, rev := range revs {
		if !kept[rev.digest] {
			if err := g.removeManifest(ctx, name, rev.digest); err != nil {
				return err
			}
		}
	}
	links, err := g.r.listLayerLinks(ctx, name)
	if err != nil {
		return err
	}
	for _, l := range links {
		if referenced[l.digest] || g.young(l.modTime) {
			g.live[l.digest] = true
			continue
		}
		removed, err := g.bury(ctx, layerLink(name, l.digest), nil)
		if err != nil {
			return err
		}
		if removed {
			g.report.Links++
		} else {
			g.live[l.digest] = true
		}
	}
	return g.sweepReferrers(ctx, name)
}

// unreadable handles err from marking repository name: an unreadable
// manifest leaves the repository as it is, with everything it links or
// holds live; any other error stops the collection.
func (g *gcRun) unreadable(ctx context.Context, name string, revs []entry, err error) error {
	var bad *unreadableError
	if !errors.As(err, &bad) {
		return err
	}
	g.report.Skipped = append(g.report.Skipped, fmt.Sprintf("%s: %v; nothing removed from this repository", name, bad))
	for _, rev := range revs {
		g.live[rev.digest] = true
	}
	links, err := g.r.listLayerLinks(ctx, name)
	if err != nil {
		return err
	}
	for _, l := range links {
		g.live[l.digest] = true
	}
	return nil
}

// keptManifests returns the manifests of name that survive: all of them,
// or with DeleteUntagged those reachable from tags and recent pushes.
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
		referrers, err := g.r.Referrers(ctx, name, d, "")
		if err != nil {
			return nil, err
		}
		for _, ref := range referrers {
			add(reference.Digest(ref.Digest))
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

// removeManifest removes manifest d of name, which nothing keeps, unless it
// was refreshed meanwhile. No tag pointed at it when the collection looked;
// one written since belongs to a push that also rewrote its link, so tags
// are left alone. Its referrer entry goes in sweepReferrers.
func (g *gcRun) removeManifest(ctx context.Context, name string, d reference.Digest) error {
	removed, err := g.bury(ctx, revisionLink(name, d), nil)
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
// interrupted. A push writes its entry after its revision link, so an
// entry moved aside whose link is still missing is not one being pushed.
func (g *gcRun) sweepReferrers(ctx context.Context, name string) error {
	for _, alg := range algorithms {
		dir := repoPath(name) + "/_referrers/" + alg
		subjects, err := g.r.d.List(ctx, dir)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("listing %s: %w", dir, err)
		}
		for _, s := range subjects {
			entries, err := g.r.d.List(ctx, dir+"/"+s)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("listing referrers of %s:%s: %w", alg, s, err)
			}
			for _, e := range entries {
				d, err := reference.ParseDigest(strings.Replace(e, "-", ":", 1))
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
				removed, err := g.bury(ctx, dir+"/"+s+"/"+e, func() (bool, error) { return g.r.exists(ctx, link) })
				if err != nil {
					return err
				}
				if removed {
					g.report.Referrers++
				}
			}
		}
	}
	return nil
}

// sweepBlobs removes blobs that no manifest or link keeps.
func (g *gcRun) sweepBlobs(ctx context.Context) error {
	blobs, err := g.r.listBlobs(ctx)
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if g.live[b.digest] || g.young(b.modTime) {
			continue
		}
		removed, err := g.bury(ctx, blobPath(b.digest), func() (bool, error) { return g.linkedAnywhere(ctx, b.digest) })
		if err != nil {
			return err
		}
		if removed {
			g.report.Blobs = append(g.report.Blobs, b.digest.String())
			g.report.BytesFreed += b.size
		}
	}
	return nil
}

// linkedAnywhere reports whether any repository, as it is now, links d as
// a blob or a manifest.
func (g *gcRun) linkedAnywhere(ctx context.Context, d reference.Digest) (bool, error) {
	repos, err := g.r.allRepositories(ctx)
	if err != nil {
		return false, err
	}
	for _, name := range repos {
		for _, p := range []string{layerLink(name, d), revisionLink(name, d)} {
			if ok, err := g.r.exists(ctx, p); ok || err != nil {
				return ok, err
			}
		}
	}
	return false, nil
}

// bury removes the object at path unless, once moved aside, it turns out
// to be refreshed (its time is after the cutoff) or stillUsed says so; then
// it is put back, unless a writer has meanwhile written a new object at
// path, which wins. It reports whether the object was removed. In a dry
// run it only reports.
func (g *gcRun) bury(ctx context.Context, path string, stillUsed func() (bool, error)) (bool, error) {
	if g.opts.DryRun {
		return true, nil
	}
	grave := graveDir + "/" + path
	if err := g.r.d.Move(ctx, path, grave); err != nil {
		if isNotFound(err) {
			return false, nil // removed by someone else
		}
		return false, fmt.Errorf("moving %s aside: %w", path, err)
	}
	info, err := g.r.d.Stat(ctx, grave)
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", grave, err)
	}
	used := g.young(info.ModTime)
	if !used && stillUsed != nil {
		if used, err = stillUsed(); err != nil {
			used = true // when in doubt, keep
		}
	}
	if used {
		if err := g.r.restore(ctx, grave, path); err != nil {
			return false, err
		}
		return false, nil
	}
	if err := g.r.d.Delete(ctx, grave); err != nil {
		return false, fmt.Errorf("removing %s: %w", grave, err)
	}
	return true, nil
}

// restore moves grave back to path, or drops it when a writer has written
// path anew meanwhile: the newer object wins.
func (r *Registry) restore(ctx context.Context, grave, path string) error {
	ok, err := r.exists(ctx, path)
	if err == nil && ok {
		err = r.d.Delete(ctx, grave)
	} else if err == nil {
		err = r.d.Move(ctx, grave, path)
	}
	if err != nil {
		return fmt.Errorf("putting %s back: %w", path, err)
	}
	return nil
}

// RecoverGC moves back whatever a collection interrupted by a crash left
// aside; the next collection decides about it again.
func (r *Registry) RecoverGC(ctx context.Context) error {
	return r.restoreUnder(ctx, graveDir)
}

func (r *Registry) restoreUnder(ctx context.Context, dir string) error {
	children, err := r.d.List(ctx, dir)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	for _, c := range children {
		p := dir + "/" + c
		info, err := r.d.Stat(ctx, p)
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if info.IsDir {
			if err := r.restoreUnder(ctx, p); err != nil {
				return err
			}
			continue
		}
		if err := r.restore(ctx, p, strings.TrimPrefix(p, graveDir+"/")); err != nil {
			return err
		}
	}
	return nil
}
