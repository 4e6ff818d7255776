package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
)

const (
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
	mtIndex    = "application/vnd.oci.image.index.v1+json"
	mtConfig   = "application/vnd.oci.image.config.v1+json"
	mtLayer    = "application/vnd.oci.image.layer.v1.tar"
	mtEmpty    = "application/vnd.oci.empty.v1+json"
	mtArtifact = "application/vnd.octoserve.crashtest.ref"
	mtPayload  = "application/vnd.octoserve.crashtest.payload"

	// maxImagesPerRound bounds each pusher's loop; the kill comes first.
	maxImagesPerRound = 400
	// maxResponseBytes bounds what any response body is read into memory.
	maxResponseBytes = 4 << 20
)

var emptyJSON = []byte("{}")

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Platform     *platform         `json:"platform,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// manifest is an OCI image manifest or index, as pushed and as parsed
// back when walking what the registry serves.
type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        *descriptor       `json:"config,omitempty"`
	Layers        []descriptor      `json:"layers,omitempty"`
	Manifests     []descriptor      `json:"manifests,omitempty"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// errTransport marks a request that got no HTTP answer: the server died.
var errTransport = errors.New("no answer from octoserve")

// errProtocol marks an answer no correct registry gives; it is recorded
// in the ledger and the image is abandoned.
var errProtocol = errors.New("unexpected answer")

// pusher pushes images for one worker during one round.
type pusher struct {
	c      *http.Client
	base   *url.URL
	l      *ledger
	rng    *rand.Rand
	bytes  *rand.ChaCha8
	round  int
	worker int
	repos  []string
	shared [][]byte // layers every pusher may use, so uploads of one digest race

	retry   *imagePlan // pushed first: the plan this worker was pushing when the server died
	current *imagePlan // the plan being pushed; kept in it when the server dies

	resume *openUpload // resumed first: the upload session open when the server died
	upload *openUpload // the upload session in use; kept in it when the server dies
	// resumed counts sessions resumed after a restart (from the stored
	// size the registry reports); resumeGone those a restart had ended.
	resumed, resumeGone int
}

// openUpload is an upload session a pusher was feeding.
type openUpload struct {
	repo, digest string
	data         []byte
	uri          string // the session's location, without host (the port changes)
	finishing    bool   // the PUT ?digest= was sent
}

// run pushes images until ctx is cancelled (the server was killed), the
// server stops answering, or maxImagesPerRound were pushed.
func (p *pusher) run(ctx context.Context) {
	// Handed on again if the server dies before they are done.
	p.current, p.upload = p.retry, p.resume
	if p.resume != nil {
		if err := p.resumeUpload(ctx, p.resume); errors.Is(err, errTransport) {
			p.l.transportError(p.round)
			return
		}
		p.upload = nil
	}
	if p.retry != nil {
		if _, err := p.pushPlan(ctx, p.retry); errors.Is(err, errTransport) {
			p.l.transportError(p.round)
			return
		}
		p.current = nil
	}
	for i := 0; i < maxImagesPerRound && ctx.Err() == nil; i++ {
		repo := p.repos[p.rng.IntN(len(p.repos))]
		tag := fmt.Sprintf("r%02d-w%d-%03d", p.round, p.worker, i)
		var err error
		switch k := p.rng.IntN(10); {
		case k < 4:
			_, err = p.image(ctx, repo, tag, false)
		case k < 5:
			_, err = p.image(ctx, repo, tag, true) // PUT by digest with ?tag=
		case k < 7:
			err = p.index(ctx, repo, tag)
		default:
			err = p.referrer(ctx, repo, tag)
		}
		if errors.Is(err, errTransport) {
			p.l.transportError(p.round)
			return
		}
		p.current = nil // an index or referrer failed after its images were pushed
	}
}

// randomBytes returns n bytes from the worker's generator.
func (p *pusher) randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = p.bytes.Read(b)
	return b
}

// layerData picks a layer: shared, empty, small or up to 96 KiB.
func (p *pusher) layerData() []byte {
	switch k := p.rng.IntN(20); {
	case k < 5:
		return p.shared[p.rng.IntN(len(p.shared))]
	case k < 6:
		return nil
	case k < 15:
		return p.randomBytes(256 + p.rng.IntN(16<<10))
	default:
		return p.randomBytes(16<<10 + p.rng.IntN(80<<10))
	}
}

// imagePlan is an image to push: a retry pushes the same plan again.
type imagePlan struct {
	repo, tag string
	byDigest  bool
	config    []byte
	layers    [][]byte
}

// image pushes a config and 1–3 layers, then the manifest: by tag, by
// digest with ?tag= (byDigest), or by digest only (tag == "").
func (p *pusher) image(ctx context.Context, repo, tag string, byDigest bool) (*manifestRec, error) {
	plan := &imagePlan{repo: repo, tag: tag, byDigest: byDigest}
	plan.config = []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"history":[{"comment":"crashtest round %d worker %d %x"}]}`,
		p.round, p.worker, p.randomBytes(8)))
	seen := map[string]bool{}
	for range 1 + p.rng.IntN(3) {
		data := p.layerData()
		if d := sha256Digest(data); !seen[d] {
			seen[d] = true
			plan.layers = append(plan.layers, data)
		}
	}
	return p.pushPlan(ctx, plan)
}

// pushPlan pushes the blobs of plan, each in a randomly chosen way, then
// its manifest. While it runs, plan is the pusher's current one: if the
// server dies meanwhile, the next round's pusher retries it, as a client
// retries a push that failed, and so reuses what the crash left behind.
func (p *pusher) pushPlan(ctx context.Context, plan *imagePlan) (*manifestRec, error) {
	p.current = plan
	if err := p.pushBlob(ctx, plan.repo, plan.config); err != nil {
		return nil, err
	}
	m := manifest{SchemaVersion: 2, MediaType: mtManifest, Config: desc(mtConfig, plan.config)}
	for _, data := range plan.layers {
		if err := p.pushBlob(ctx, plan.repo, data); err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, *desc(mtLayer, data))
	}
	rec, err := p.putManifest(ctx, plan.repo, plan.tag, mtManifest, m, plan.byDigest)
	if err == nil {
		p.current = nil
	}
	return rec, err
}

// index pushes two images by digest and an index of both by tag.
func (p *pusher) index(ctx context.Context, repo, tag string) error {
	idx := manifest{SchemaVersion: 2, MediaType: mtIndex}
	for _, arch := range []string{"amd64", "arm64"} {
		child, err := p.image(ctx, repo, "", false)
		if err != nil {
			return err
		}
		d := desc(mtManifest, child.body)
		d.Platform = &platform{Architecture: arch, OS: "linux"}
		idx.Manifests = append(idx.Manifests, *d)
	}
	_, err := p.putManifest(ctx, repo, tag, mtIndex, idx, p.rng.IntN(4) == 0)
	return err
}

// referrer pushes an image, then an artifact whose subject is that image,
// tagged or (one time in two) by digest only.
func (p *pusher) referrer(ctx context.Context, repo, tag string) error {
	subject, err := p.image(ctx, repo, tag, false)
	if err != nil {
		return err
	}
	if err := p.pushBlob(ctx, repo, emptyJSON); err != nil {
		return err
	}
	payload := p.randomBytes(64 + p.rng.IntN(2<<10))
	if err := p.pushBlob(ctx, repo, payload); err != nil {
		return err
	}
	art := manifest{
		SchemaVersion: 2,
		MediaType:     mtManifest,
		ArtifactType:  mtArtifact,
		Config:        desc(mtEmpty, emptyJSON),
		Layers:        []descriptor{*desc(mtPayload, payload)},
		Subject:       desc(mtManifest, subject.body),
		Annotations:   map[string]string{"org.octoserve.crashtest": tag},
	}
	artTag := tag + "-ref"
	if p.rng.IntN(2) == 0 {
		artTag = ""
	}
	_, err = p.putManifest(ctx, repo, artTag, mtManifest, art, false)
	return err
}

func desc(mediaType string, data []byte) *descriptor {
	return &descriptor{MediaType: mediaType, Digest: sha256Digest(data), Size: int64(len(data))}
}

// putManifest pushes m as tag (by digest with ?tag= when byDigest, by
// digest alone when tag is empty) and records it.
func (p *pusher) putManifest(ctx context.Context, repo, tag, mediaType string, m manifest, byDigest bool) (*manifestRec, error) {
	body, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	rec := &manifestRec{repo: repo, digest: sha256Digest(body), mediaType: mediaType, body: body, tag: tag, round: p.round}
	if m.Subject != nil {
		rec.subject = m.Subject.Digest
	}
	path := "/v2/" + repo + "/manifests/"
	switch {
	case tag == "":
		path += rec.digest
	case byDigest:
		path += rec.digest + "?tag=" + url.QueryEscape(tag)
	default:
		path += tag
	}
	p.l.tryManifest(rec)
	resp, _, err := p.do(ctx, http.MethodPut, path, mediaType, body)
	if err != nil {
		return nil, err
	}
	if err := p.expect(resp, "PUT "+path, http.StatusCreated); err != nil {
		return nil, err
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != rec.digest {
		p.l.protocolError("PUT %s: Docker-Content-Digest %q, want %s", path, got, rec.digest)
		return nil, errProtocol
	}
	if rec.subject != "" && resp.Header.Get("OCI-Subject") != rec.subject {
		p.l.protocolError("PUT %s: OCI-Subject %q, want %s", path, resp.Header.Get("OCI-Subject"), rec.subject)
	}
	p.l.ackManifest(rec)
	return rec, nil
}

// pushBlob uploads data to repo in one of the spec's ways, chosen at
// random, and records it once the registry answered 201.
func (p *pusher) pushBlob(ctx context.Context, repo string, data []byte) error {
	d := sha256Digest(data)
	p.l.tryBlob(repo, d, data, p.round)
	p.upload = nil
	var err error
	switch p.rng.IntN(6) {
	case 0: // monolithic POST ?digest=
		err = p.monolithic(ctx, repo, d, data)
	case 1: // POST, then PUT with the whole body
		err = p.session(ctx, repo, d, data, 0, false)
	case 2: // POST, PATCH chunks with Content-Range, empty PUT
		err = p.session(ctx, repo, d, data, 1+p.rng.IntN(4), false)
	case 3: // POST, PATCH chunks, the last one in the PUT
		err = p.session(ctx, repo, d, data, 2+p.rng.IntN(3), true)
	case 4: // POST, one streamed PATCH without Content-Range, empty PUT
		err = p.streamed(ctx, repo, d, data)
	default: // mount from another repository (or anonymously), else upload
		err = p.mount(ctx, repo, d, data)
	}
	if err != nil {
		return err
	}
	p.upload = nil
	p.l.ackBlob(repo, d, p.round)
	return nil
}

func (p *pusher) monolithic(ctx context.Context, repo, d string, data []byte) error {
	path := "/v2/" + repo + "/blobs/uploads/?digest=" + url.QueryEscape(d)
	resp, _, err := p.do(ctx, http.MethodPost, path, "application/octet-stream", data)
	if err != nil {
		return err
	}
	return p.expectBlob(resp, "POST "+path, d)
}

// startSession opens an upload and returns its location.
func (p *pusher) startSession(ctx context.Context, repo string) (*url.URL, error) {
	path := "/v2/" + repo + "/blobs/uploads/"
	resp, _, err := p.do(ctx, http.MethodPost, path, "", nil)
	if err != nil {
		return nil, err
	}
	if err := p.expect(resp, "POST "+path, http.StatusAccepted); err != nil {
		return nil, err
	}
	return p.location(resp, "POST "+path)
}

func (p *pusher) location(resp *http.Response, what string) (*url.URL, error) {
	loc, err := p.base.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		p.l.protocolError("%s: bad Location %q", what, resp.Header.Get("Location"))
		return nil, errProtocol
	}
	return loc, nil
}

// session uploads data through an upload session in chunks PATCHes (0:
// everything in the PUT); with lastInPut the final chunk rides the PUT.
func (p *pusher) session(ctx context.Context, repo, d string, data []byte, chunks int, lastInPut bool) error {
	loc, err := p.startSession(ctx, repo)
	if err != nil {
		return err
	}
	p.upload = &openUpload{repo: repo, digest: d, data: data, uri: loc.RequestURI()}
	rest := data
	if chunks > 0 && len(data) > 0 {
		size := (len(data) + chunks - 1) / chunks
		off := 0
		for len(rest) > 0 {
			n := min(size, len(rest))
			if lastInPut && n == len(rest) {
				break
			}
			loc, err = p.patch(ctx, loc, rest[:n], fmt.Sprintf("%d-%d", off, off+n-1))
			if err != nil {
				return err
			}
			p.upload.uri = loc.RequestURI()
			off += n
			rest = rest[n:]
		}
	}
	return p.finish(ctx, loc, d, rest)
}

func (p *pusher) streamed(ctx context.Context, repo, d string, data []byte) error {
	loc, err := p.startSession(ctx, repo)
	if err != nil {
		return err
	}
	p.upload = &openUpload{repo: repo, digest: d, data: data, uri: loc.RequestURI()}
	if len(data) > 0 {
		if loc, err = p.patch(ctx, loc, data, ""); err != nil {
			return err
		}
		p.upload.uri = loc.RequestURI()
	}
	return p.finish(ctx, loc, d, nil)
}

// sessionGone judges an upload session that a restart ended. Without a
// PUT sent, it was lost: the registry had answered 202 for it. With its
// PUT in flight, the upload finished: octoserve removes a session only
// after linking its blob, which must then be served whole.
func (p *pusher) sessionGone(ctx context.Context, u *openUpload, path string) error {
	if !u.finishing {
		p.l.protocolError("resuming: GET %s: 404 after the restart, though the registry had accepted the session (202) and no PUT was sent (blob %s)", path, u.digest)
		return errProtocol
	}
	p.resumeGone++
	blob := "/v2/" + u.repo + "/blobs/" + u.digest
	resp, body, err := p.do(ctx, http.MethodGet, blob, "", nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, u.data) {
		p.l.protocolError("resuming: GET %s: 404 after the restart, so its PUT ?digest= (in flight at the kill) finished, but GET %s answers %d with %s",
			path, blob, resp.StatusCode, show(body))
		return errProtocol
	}
	return nil
}

// resumeUpload continues, after a restart, the upload session u that was
// open when the server died, as a resuming client does: GET its status,
// PATCH what the registry says it lacks, PUT ?digest=. The registry may
// hold part of a chunk it never acknowledged, never more than was sent;
// a session the crash ended (404) is fine.
func (p *pusher) resumeUpload(ctx context.Context, u *openUpload) error {
	p.l.tryBlob(u.repo, u.digest, u.data, p.round)
	loc, err := p.base.Parse(u.uri)
	if err != nil {
		panic(err)
	}
	what := "resuming: GET " + loc.Path
	resp, body, err := p.do(ctx, http.MethodGet, loc.RequestURI(), "", nil)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusNotFound {
		return p.sessionGone(ctx, u, loc.Path)
	}
	if err := p.expect(resp, what, http.StatusNoContent); err != nil {
		return err
	}
	u.finishing = false // the session lives: no PUT finished it
	var first, last int64
	if _, err := fmt.Sscanf(resp.Header.Get("Range"), "%d-%d", &first, &last); err != nil || first != 0 {
		p.l.protocolError("%s: Range %q (body %q)", what, resp.Header.Get("Range"), body)
		return errProtocol
	}
	if last > 0 && last+1 > int64(len(u.data)) { // "0-0" may be an empty session

		p.l.protocolError("%s: the session holds %d bytes, the client sent only %d", what, last+1, len(u.data))
		return errProtocol
	}
	if loc, err = p.location(resp, what); err != nil {
		return err
	}
	// "0-0" is both an empty session and a one-byte one: try 0, then 1.
	starts := []int64{last + 1}
	if last == 0 {
		starts = []int64{0, 1}
	}
	for i, start := range starts {
		if start >= int64(len(u.data)) {
			break
		}
		rest := u.data[start:]
		req, err := http.NewRequestWithContext(ctx, http.MethodPatch, loc.String(), bytes.NewReader(rest))
		if err != nil {
			panic(err)
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", start, len(u.data)-1))
		resp, _, err := p.send(req)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && i+1 < len(starts) {
			continue
		}
		if err := p.expect(resp, fmt.Sprintf("resuming: PATCH %s from byte %d", loc.Path, start), http.StatusAccepted); err != nil {
			return err
		}
		if loc, err = p.location(resp, "resuming: PATCH "+loc.Path); err != nil {
			return err
		}
		break
	}
	if err := p.finish(ctx, loc, u.digest, nil); err != nil {
		return err
	}
	p.resumed++
	p.l.ackBlob(u.repo, u.digest, p.round)
	return nil
}

// patch sends one chunk and returns the next location.
func (p *pusher) patch(ctx context.Context, loc *url.URL, chunk []byte, contentRange string) (*url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, loc.String(), bytes.NewReader(chunk))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if contentRange != "" {
		req.Header.Set("Content-Range", contentRange)
	}
	resp, _, err := p.send(req)
	if err != nil {
		return nil, err
	}
	what := "PATCH " + loc.Path + " Content-Range " + contentRange
	if err := p.expect(resp, what, http.StatusAccepted); err != nil {
		return nil, err
	}
	return p.location(resp, what)
}

// finish PUTs ?digest= with body (possibly empty) to loc.
func (p *pusher) finish(ctx context.Context, loc *url.URL, d string, body []byte) error {
	if p.upload != nil {
		p.upload.finishing = true
	}
	u := *loc
	q := u.Query()
	q.Set("digest", d)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.ContentLength = int64(len(body))
	resp, _, err := p.send(req)
	if err != nil {
		return err
	}
	return p.expectBlob(resp, "PUT "+u.Path+" ("+strconv.Itoa(len(body))+" bytes)", d)
}

// mount asks for d from a repository known to hold it (anonymously when
// none is known); a 202 opens a session the blob is then PUT into.
func (p *pusher) mount(ctx context.Context, repo, d string, data []byte) error {
	path := "/v2/" + repo + "/blobs/uploads/?mount=" + url.QueryEscape(d)
	if from := p.l.ackedIn(d, repo, p.repos); from != "" {
		path += "&from=" + url.QueryEscape(from)
	}
	resp, _, err := p.do(ctx, http.MethodPost, path, "", nil)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusCreated {
		return p.expectBlob(resp, "POST "+path, d)
	}
	if err := p.expect(resp, "POST "+path, http.StatusAccepted); err != nil {
		return err
	}
	loc, err := p.location(resp, "POST "+path)
	if err != nil {
		return err
	}
	return p.finish(ctx, loc, d, data)
}

// expectBlob checks a blob's 201 and its Docker-Content-Digest.
func (p *pusher) expectBlob(resp *http.Response, what, d string) error {
	if err := p.expect(resp, what, http.StatusCreated); err != nil {
		return err
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != d {
		p.l.protocolError("%s: Docker-Content-Digest %q, want %s", what, got, d)
		return errProtocol
	}
	return nil
}

func (p *pusher) expect(resp *http.Response, what string, status int) error {
	if resp.StatusCode != status {
		p.l.protocolError("round %d worker %d: %s: status %d, want %d", p.round, p.worker, what, resp.StatusCode, status)
		return errProtocol
	}
	return nil
}

func (p *pusher) do(ctx context.Context, method, path, contentType string, body []byte) (*http.Response, []byte, error) {
	u, err := p.base.Parse(path)
	if err != nil {
		panic(err)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.ContentLength = int64(len(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return p.send(req)
}

// send runs req and reads the whole (bounded) response.
func (p *pusher) send(req *http.Request) (*http.Response, []byte, error) {
	resp, err := p.c.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s %s: %v", errTransport, req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading %s %s: %v", errTransport, req.Method, req.URL.Path, err)
	}
	return resp, b, nil
}
