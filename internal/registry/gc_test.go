package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/storage"
)

// settle waits until the store's clock has moved past everything stored
// so far, so that a collection started now with MinAge 0 sees all of it
// as old: the window is waited out on the store's own clock (a few
// milliseconds on a local disk), not guessed.
func settle(t testing.TB, reg *Registry) {
	t.Helper()
	ctx := context.Background()
	var newest time.Time
	err := reg.d.Walk(ctx, "", func(e storage.Entry) error {
		if e.ModTime.After(newest) {
			newest = e.ModTime
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		now, err := reg.storeNow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if now.After(newest) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store's clock stayed at %v", now)
		}
		time.Sleep(time.Millisecond) // the clock advances by itself; poll it
	}
}

// pushImage stores config and layers in repo and a manifest over them
// under tag, and returns the manifest's digest.
func pushImage(t testing.TB, reg *Registry, repo, tag string, layers ...[]byte) reference.Digest {
	t.Helper()
	d, err := tryPushImage(reg, repo, tag, layers...)
	if err != nil {
		t.Fatalf("push %s:%s: %v", repo, tag, err)
	}
	return d
}

func tryPushImage(reg *Registry, repo, tag string, layers ...[]byte) (reference.Digest, error) {
	ctx := context.Background()
	var descs []any
	for _, b := range append([][]byte{[]byte(`{"tag":"` + tag + `"}`)}, layers...) {
		d := reference.FromBytes("sha256", b)
		if err := reg.PutBlob(ctx, repo, d, Chunk{Body: bytes.NewReader(b), Start: -1, Length: int64(len(b))}); err != nil {
			return "", err
		}
		descs = append(descs, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(b)})
	}
	body, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaTypeOCIManifest, "config": descs[0], "layers": descs[1:]})
	res, err := reg.PutManifest(ctx, repo, tag, MediaTypeOCIManifest, body, nil)
	if err != nil {
		return "", err
	}
	return res.Digest, nil
}

// pullComplete fails unless manifest ref of repo and everything it
// references read back and hash right.
func pullComplete(t testing.TB, reg *Registry, repo, ref string) {
	t.Helper()
	ctx := context.Background()
	m, err := reg.GetManifest(ctx, repo, ref)
	if err != nil {
		t.Fatalf("pull %s:%s: %v", repo, ref, err)
	}
	var mf manifestFields
	json.Unmarshal(m.Body, &mf)
	for _, desc := range append([]Descriptor{*mf.Config}, mf.Layers...) {
		d := reference.Digest(desc.Digest)
		rc, _, err := reg.OpenBlob(ctx, repo, d)
		if err != nil {
			t.Fatalf("pull %s:%s: blob %s: %v", repo, ref, d, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if reference.FromBytes("sha256", b) != d {
			t.Fatalf("pull %s:%s: blob %s corrupt", repo, ref, d)
		}
	}
}

// After 20 images sharing layers are pushed and half deleted, gc frees
// exactly the bytes of the layers only the deleted ones used.
func TestGCFreesExactlyUnsharedLayers(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	shared := bytes.Repeat([]byte("shared base layer "), 1000)
	var wantFreed int64
	digests := map[int]reference.Digest{}
	for i := 0; i < 20; i++ {
		own := bytes.Repeat([]byte(fmt.Sprintf("layer of image %d ", i)), 100+i)
		repo := []string{"team/a", "team/b"}[i%2]
		digests[i] = pushImage(t, reg, repo, fmt.Sprintf("v%d", i), shared, own)
		if i >= 10 {
			m, _ := reg.GetManifest(ctx, repo, digests[i].String())
			wantFreed += int64(len(own)) + int64(len(fmt.Sprintf(`{"tag":"v%d"}`, i))) + int64(len(m.Body))
		}
	}
	for i := 10; i < 20; i++ {
		repo := []string{"team/a", "team/b"}[i%2]
		if err := reg.DeleteManifest(ctx, repo, digests[i].String()); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, reg)
	dry, err := reg.CollectGarbage(ctx, GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	report, err := reg.CollectGarbage(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if report.BytesFreed != wantFreed || len(report.Blobs) != 30 {
		t.Fatalf("freed %d bytes in %d blobs, want %d bytes in 30 (layer, config, manifest of 10 images)", report.BytesFreed, len(report.Blobs), wantFreed)
	}
	if dry.BytesFreed != report.BytesFreed {
		t.Fatalf("dry run predicted %d bytes, the run freed %d", dry.BytesFreed, report.BytesFreed)
	}
	for i := 0; i < 10; i++ {
		pullComplete(t, reg, []string{"team/a", "team/b"}[i%2], fmt.Sprintf("v%d", i))
	}
	if again, _ := reg.CollectGarbage(ctx, GCOptions{}); again.BytesFreed != 0 {
		t.Fatalf("a second run freed %d more bytes", again.BytesFreed)
	}
	if v, err := reg.Verify(ctx, VerifyOptions{}); err != nil || len(v.Problems) > 0 {
		t.Fatalf("verify after gc: %v %v", err, v.Problems)
	}
}

func TestGCDryRunChangesNothing(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	d := pushImage(t, reg, "r", "v1", []byte("layer"))
	reg.DeleteManifest(ctx, "r", d.String())
	before := tree(t, root)
	settle(t, reg)
	report, err := reg.CollectGarbage(ctx, GCOptions{DryRun: true, DeleteUntagged: true})
	if err != nil || len(report.Blobs) != 3 {
		t.Fatalf("dry run: %+v %v", report, err)
	}
	if after := tree(t, root); after != before {
		t.Fatalf("dry run changed the store:\n%s\n---\n%s", before, after)
	}
}

// tree lists the files under root with their sizes, leaving out the
// housekeeping lease and clock (_gc) and the filesystem driver's own
// files (_fs), which every collection writes.
func tree(t *testing.T, root string) string {
	var out bytes.Buffer
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() && (info.Name() == "_gc" || info.Name() == "_fs") {
			return filepath.SkipDir
		}
		if err == nil && !info.IsDir() {
			fmt.Fprintf(&out, "%s %d\n", p, info.Size())
		}
		return nil
	})
	return out.String()
}

// DeleteUntagged keeps what tags reach, with index children and referrers
// of kept manifests, and removes the rest.
func TestGCDeleteUntagged(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	child := pushImage(t, reg, "r", "child", []byte("child layer"))
	orphan := pushImage(t, reg, "r", "orphan", []byte("orphan layer"))
	childBody, _ := reg.GetManifest(ctx, "r", child.String())
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaTypeOCIIndex,
		"manifests": []any{map[string]any{"mediaType": MediaTypeOCIManifest, "digest": child, "size": len(childBody.Body)}}})
	if _, err := reg.PutManifest(ctx, "r", "multi", MediaTypeOCIIndex, index, nil); err != nil {
		t.Fatal(err)
	}
	sig, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaTypeOCIManifest, "artifactType": "application/x-sig",
		"config":  map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": reference.FromBytes("sha256", []byte("{}")), "size": 2},
		"layers":  []any{},
		"subject": map[string]any{"mediaType": MediaTypeOCIManifest, "digest": child, "size": len(childBody.Body)}})
	reg.PutBlob(ctx, "r", reference.FromBytes("sha256", []byte("{}")), Chunk{Body: bytes.NewReader([]byte("{}")), Start: -1, Length: 2})
	sigRes, err := reg.PutManifest(ctx, "r", reference.FromBytes("sha256", sig).String(), MediaTypeOCIManifest, sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"child", "orphan"} {
		reg.DeleteManifest(ctx, "r", tag)
	}
	settle(t, reg)
	report, err := reg.CollectGarbage(ctx, GCOptions{DeleteUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Manifests) != 1 || report.Manifests[0] != "r@"+orphan.String() {
		t.Fatalf("removed manifests %v, want only the orphan", report.Manifests)
	}
	pullComplete(t, reg, "r", child.String())
	if _, err := reg.GetManifest(ctx, "r", sigRes.Digest.String()); err != nil {
		t.Fatalf("referrer of a kept manifest removed: %v", err)
	}
	if _, err := reg.GetManifest(ctx, "r", orphan.String()); err == nil {
		t.Fatal("untagged manifest survived")
	}
}

// A blob uploaded moments ago, whose manifest is not pushed yet, survives
// a collection with the default grace period.
func TestGCKeepsRecentUploads(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, t.TempDir())
	b := []byte("pushed, manifest pending")
	d := reference.FromBytes("sha256", b)
	reg.PutBlob(ctx, "r", d, Chunk{Body: bytes.NewReader(b), Start: -1, Length: int64(len(b))})
	report, err := reg.CollectGarbage(ctx, GCOptions{MinAge: time.Hour})
	if err != nil || len(report.Blobs) != 0 || report.Links != 0 {
		t.Fatalf("report %+v, err %v", report, err)
	}
	if _, err := reg.StatBlob(ctx, "r", d); err != nil {
		t.Fatal(err)
	}
}

// Pushes running while collections run back to back, with a grace period
// far shorter than a real one, lose nothing: a push may be refused (its
// blobs, uploaded longer than the grace period before a run began, were
// collected: the client pushes again), but every image whose manifest push
// succeeded pulls completely. Halfway through, each pusher waits until a
// collection has freed some of what was deleted, so that collections free
// garbage while pushes go on however fast or slow the machine is.
func TestGCConcurrentWithPushes(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, t.TempDir())
	shared := []byte("base layer shared by every image")
	var (
		stop            = make(chan struct{})
		freedSome       = make(chan struct{}) // closed once a collection freed something
		collectorExited = make(chan struct{})
		gcErr           = make(chan error, 1)
		runs            int
		freed           int64
	)
	go func() {
		defer close(collectorExited)
		for {
			select {
			case <-stop:
				gcErr <- nil
				return
			default:
			}
			runs++
			report, err := reg.CollectGarbage(ctx, GCOptions{MinAge: 100 * time.Millisecond})
			if err != nil {
				gcErr <- err
				return
			}
			if freed == 0 && report.BytesFreed > 0 {
				close(freedSome)
			}
			freed += report.BytesFreed
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			repo := fmt.Sprintf("w%d", w)
			for i := 0; i < 25; i++ {
				if i == 13 { // v0, v3, ... v12 deleted by now
					select {
					case <-freedSome:
					case <-collectorExited:
						return // the collection's error is reported below
					case <-time.After(time.Minute):
						errs <- fmt.Errorf("%s: no collection freed anything in a minute after the first deletes", repo)
						return
					}
				}
				tag := fmt.Sprintf("v%d", i)
				d, err := pushRetrying(reg, repo, tag, shared, []byte(fmt.Sprintf("own %d %d", w, i)))
				if err != nil {
					errs <- err
					return
				}
				if i%3 == 0 { // garbage for the collector
					if err := reg.DeleteManifest(ctx, repo, d.String()); err != nil {
						errs <- err
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	if err := <-gcErr; err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := 0; w < 4; w++ {
		repo := fmt.Sprintf("w%d", w)
		tags, _, err := reg.Tags(ctx, repo, -1, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(tags) != 16 {
			t.Fatalf("%s has %d tags, want 16", repo, len(tags))
		}
		for _, tag := range tags {
			pullComplete(t, reg, repo, tag)
		}
	}
	if v, err := reg.Verify(ctx, VerifyOptions{}); err != nil || len(v.Problems) > 0 {
		t.Fatalf("verify: %v %v", err, v.Problems)
	}
	t.Logf("%d collections ran beside the pushes and freed %d bytes", runs, freed)
}

// pushRetryFor bounds how long a push refused beside collections is
// retried: a client pushes again until it gets through, and on a loaded
// machine several tries in a row may each be slower than the grace period.
const pushRetryFor = 2 * time.Minute

// pushRetrying pushes an image as tryPushImage does, again and again while
// it is refused, for up to pushRetryFor.
func pushRetrying(reg *Registry, repo, tag string, layers ...[]byte) (reference.Digest, error) {
	deadline := time.Now().Add(pushRetryFor)
	for tries := 1; ; tries++ {
		d, err := tryPushImage(reg, repo, tag, layers...)
		if err == nil {
			return d, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("push %s:%s refused %d times in %v: %w", repo, tag, tries, pushRetryFor, err)
		}
	}
}

func TestPurgeUploads(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	idle, _ := reg.StartUpload(ctx, "r", "")
	reg.AppendUpload(ctx, "r", idle, Chunk{Body: bytes.NewReader([]byte("abc")), Start: -1, Length: 3})
	live, _ := reg.StartUpload(ctx, "r", "")
	reg.AppendUpload(ctx, "r", live, Chunk{Body: bytes.NewReader([]byte("abcd")), Start: -1, Length: 4})
	old := time.Now().Add(-25 * time.Hour)
	filepath.Walk(filepath.Join(root, sessionDir("r", idle)), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			os.Chtimes(p, old, old)
		}
		return nil
	})
	if n, err := reg.PurgeUploads(ctx, 24*time.Hour, true); err != nil || n != 1 {
		t.Fatalf("dry run: would purge %d, %v", n, err)
	}
	if _, err := reg.UploadSize(ctx, "r", idle); err != nil {
		t.Fatalf("a dry run removed the idle upload: %v", err)
	}
	n, err := reg.PurgeUploads(ctx, 24*time.Hour, false)
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v", n, err)
	}
	if _, err := reg.UploadSize(ctx, "r", idle); err == nil {
		t.Fatal("idle upload still answers")
	}
	if size, err := reg.UploadSize(ctx, "r", live); err != nil || size != 4 {
		t.Fatalf("live upload: %d %v", size, err)
	}
}

func TestVerifyFindsCorruption(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	pushImage(t, reg, "r", "v1", []byte("layer bytes"))
	if v, err := reg.Verify(ctx, VerifyOptions{}); err != nil || len(v.Problems) != 0 {
		t.Fatalf("clean store: %v %v", err, v.Problems)
	}
	layer := reference.FromBytes("sha256", []byte("layer bytes"))
	os.WriteFile(filepath.Join(root, blobPath(layer)), []byte("layer bytez"), 0o644)
	os.WriteFile(filepath.Join(root, tagPath("r", "dangling")), []byte(reference.FromBytes("sha256", []byte("x"))), 0o644)
	v, err := reg.Verify(ctx, VerifyOptions{})
	if err != nil || len(v.Problems) != 2 || len(v.Quarantined) != 0 {
		t.Fatalf("problems %v, quarantined %v, %v; want the corrupt blob and the dangling tag, nothing moved", v.Problems, v.Quarantined, err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, blobPath(layer))); string(b) != "layer bytez" {
		t.Fatal("verify without quarantine changed the blob")
	}
}

// verify quarantines a blob whose bytes differ from its digest: it is no
// longer served, and the next honest push of the bytes stores them anew.
func TestVerifyQuarantinesAndPushRepairs(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	pushImage(t, reg, "r", "v1", []byte("layer bytes"))
	layer := reference.FromBytes("sha256", []byte("layer bytes"))
	os.WriteFile(filepath.Join(root, blobPath(layer)), []byte("layer bytez"), 0o644)
	v, err := reg.Verify(ctx, VerifyOptions{Quarantine: true})
	if err != nil || len(v.Quarantined) != 1 || v.Quarantined[0] != layer.String() {
		t.Fatalf("quarantined %v (problems %v), %v", v.Quarantined, v.Problems, err)
	}
	if _, err := reg.StatBlob(ctx, "r", layer); err == nil {
		t.Fatal("a quarantined blob is still served")
	}
	if b, err := os.ReadFile(filepath.Join(root, quarantinePath(layer))); err != nil || string(b) != "layer bytez" {
		t.Fatalf("quarantine holds %q, %v", b, err)
	}
	if err := reg.PutBlob(ctx, "other", layer, Chunk{Body: bytes.NewReader([]byte("layer bytes")), Start: -1, Length: 11}); err != nil {
		t.Fatal(err)
	}
	pullComplete(t, reg, "r", "v1")
	if v, err := reg.Verify(ctx, VerifyOptions{}); err != nil || len(v.Problems) != 0 {
		t.Fatalf("after the repairing push: %v %v", v.Problems, err)
	}
}

// pushReferrer pushes an artifact whose subject is manifest subject of
// repo, under tag (by digest when tag is empty), and returns its digest.
func pushReferrer(t *testing.T, reg *Registry, repo, tag string, subject reference.Digest) reference.Digest {
	t.Helper()
	ctx := context.Background()
	sm, err := reg.GetManifest(ctx, repo, subject.String())
	if err != nil {
		t.Fatal(err)
	}
	empty := []byte("{}")
	if err := reg.PutBlob(ctx, repo, reference.FromBytes("sha256", empty), Chunk{Body: bytes.NewReader(empty), Start: -1, Length: 2}); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaTypeOCIManifest, "artifactType": "application/x-sig",
		"config":  map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": reference.FromBytes("sha256", empty), "size": 2},
		"layers":  []any{},
		"subject": map[string]any{"mediaType": MediaTypeOCIManifest, "digest": subject, "size": len(sm.Body)}})
	d := reference.FromBytes("sha256", body)
	ref := tag
	if ref == "" {
		ref = d.String()
	}
	if _, err := reg.PutManifest(ctx, repo, ref, MediaTypeOCIManifest, body, nil); err != nil {
		t.Fatal(err)
	}
	return d
}

// With DeleteUntagged, a tagged referrer keeps its untagged subject (and
// what the subject references); an untagged referrer of a removed
// manifest goes with it, and so does its referrer entry.
func TestGCDeleteUntaggedFollowsSubjects(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	subject := pushImage(t, reg, "r", "subject", []byte("signed layer"))
	sig := pushReferrer(t, reg, "r", "subject-sig", subject)
	doomed := pushImage(t, reg, "r", "doomed", []byte("doomed layer"))
	doomedSig := pushReferrer(t, reg, "r", "", doomed)
	for _, tag := range []string{"subject", "doomed"} {
		if err := reg.DeleteManifest(ctx, "r", tag); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, reg)
	dry, err := reg.CollectGarbage(ctx, GCOptions{DeleteUntagged: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	report, err := reg.CollectGarbage(ctx, GCOptions{DeleteUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"r@" + doomed.String(), "r@" + doomedSig.String()}
	if fmt.Sprint(report.Manifests) != fmt.Sprint(want) && fmt.Sprint(report.Manifests) != fmt.Sprint([]string{want[1], want[0]}) {
		t.Fatalf("removed manifests %v, want %v", report.Manifests, want)
	}
	if report.Referrers != 1 || dry.Referrers != 1 || dry.BytesFreed != report.BytesFreed {
		t.Fatalf("referrer entries removed %d (dry run %d), bytes %d (dry run %d); want 1 entry and equal bytes",
			report.Referrers, dry.Referrers, report.BytesFreed, dry.BytesFreed)
	}
	pullComplete(t, reg, "r", subject.String())
	pullComplete(t, reg, "r", sig.String())
	if refs, err := reg.Referrers(ctx, "r", subject, ""); err != nil || len(refs) != 1 {
		t.Fatalf("referrers of the kept subject: %v %v", refs, err)
	}
	if refs, err := reg.Referrers(ctx, "r", doomed, ""); err != nil || len(refs) != 0 {
		t.Fatalf("referrers of the removed manifest: %v %v", refs, err)
	}
	if v, err := reg.Verify(ctx, VerifyOptions{}); err != nil || len(v.Problems) > 0 {
		t.Fatalf("verify: %v %v", err, v.Problems)
	}
}

// A referrer entry left pointing at a missing manifest (a crash inside a
// manifest delete) is removed; verify is clean afterwards.
func TestGCRemovesDanglingReferrerEntry(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	subject := pushImage(t, reg, "r", "v1", []byte("layer"))
	sig := pushReferrer(t, reg, "r", "", subject)
	if err := os.Remove(filepath.Join(root, revisionLink("r", sig))); err != nil {
		t.Fatal(err)
	}
	if v, _ := reg.Verify(ctx, VerifyOptions{}); len(v.Problems) != 1 {
		t.Fatalf("verify before gc: %v, want the dangling referrer entry", v.Problems)
	}
	settle(t, reg)
	report, err := reg.CollectGarbage(ctx, GCOptions{})
	if err != nil || report.Referrers != 1 {
		t.Fatalf("report %+v, %v; want one referrer entry removed", report, err)
	}
	if v, err := reg.Verify(ctx, VerifyOptions{}); err != nil || len(v.Problems) > 0 {
		t.Fatalf("verify after gc: %v %v", err, v.Problems)
	}
	pullComplete(t, reg, "r", "v1")
}

// A repository holding a manifest whose bytes are gone or corrupt is left
// alone (what it references is unknown), and the report says so; other
// repositories are collected as usual.
func TestGCLeavesRepositoryWithUnreadableManifest(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	broken := pushImage(t, reg, "broken", "v1", []byte("layer of the broken repository"))
	old := pushImage(t, reg, "broken", "v2", []byte("layer of a deleted image"))
	if err := reg.DeleteManifest(ctx, "broken", old.String()); err != nil {
		t.Fatal(err)
	}
	gone := pushImage(t, reg, "fine", "v1", []byte("layer of a deleted image elsewhere"))
	if err := reg.DeleteManifest(ctx, "fine", gone.String()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, blobPath(broken)), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	reg = newRegistry(t, root) // no cached copy of the manifest
	before := tree(t, filepath.Join(root, "repositories", "broken"))
	settle(t, reg)
	report, err := reg.CollectGarbage(ctx, GCOptions{DeleteUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Skipped) != 1 || !strings.HasPrefix(report.Skipped[0], "broken: manifest "+broken.String()) {
		t.Fatalf("skipped %q, want the broken repository", report.Skipped)
	}
	if after := tree(t, filepath.Join(root, "repositories", "broken")); after != before {
		t.Fatalf("the broken repository changed:\n%s\n---\n%s", before, after)
	}
	if len(report.Blobs) != 3 { // config, layer and manifest of fine@gone
		t.Fatalf("removed blobs %v, want the 3 of the deleted image in fine", report.Blobs)
	}
	for _, b := range []string{"layer of the broken repository", "layer of a deleted image"} {
		if _, err := reg.StatBlob(ctx, "broken", reference.FromBytes("sha256", []byte(b))); err != nil {
			t.Fatalf("blob of the skipped repository: %v", err)
		}
	}
}

// A blob link without its blob (a push that failed beside a collection) is
// a note for verify, not corruption, and the next collection removes it.
func TestLinkWithoutBlob(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := newRegistry(t, root)
	pushImage(t, reg, "r", "v1", []byte("layer"))
	if err := reg.linkBlob(ctx, "r", reference.FromBytes("sha256", []byte("never stored"))); err != nil {
		t.Fatal(err)
	}
	v, err := reg.Verify(ctx, VerifyOptions{})
	if err != nil || len(v.Problems) != 0 || len(v.Notes) != 1 {
		t.Fatalf("verify: problems %v notes %v (%v); want one note", v.Problems, v.Notes, err)
	}
	settle(t, reg)
	if report, err := reg.CollectGarbage(ctx, GCOptions{}); err != nil || report.Links != 1 || len(report.Blobs) != 0 {
		t.Fatalf("gc: %+v %v; want the link removed and nothing else", report, err)
	}
	if v, _ := reg.Verify(ctx, VerifyOptions{}); len(v.Notes)+len(v.Problems) != 0 {
		t.Fatalf("after gc: %v %v", v.Problems, v.Notes)
	}
	pullComplete(t, reg, "r", "v1")
}
