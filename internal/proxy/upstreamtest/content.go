package upstreamtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Media types of the content made here.
const (
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// Digest is the sha256 digest of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// RandomBytes returns n pseudo-random bytes (fast; not for secrets).
func RandomBytes(n int) []byte {
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rand.Uint32())
	}
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

// Image is a one-platform OCI image whose layers are real gzipped
// tarballs (runtimes unpack them).
type Image struct {
	Platform  string // os/arch[/variant]
	Manifest  []byte
	Digest    string
	Config    []byte
	Layers    [][]byte
	MediaType string
}

// Blobs maps digest to bytes for the config and layers.
func (img Image) Blobs() map[string][]byte {
	out := map[string][]byte{Digest(img.Config): img.Config}
	for _, l := range img.Layers {
		out[Digest(l)] = l
	}
	return out
}

// NewImage makes an image for platform with one layer per size, each a
// tarball holding one file of that many random bytes.
func NewImage(t testing.TB, platform string, sizes ...int) Image {
	t.Helper()
	parts := strings.Split(platform, "/")
	if len(parts) < 2 {
		t.Fatalf("platform %q is not os/arch", platform)
	}
	img := Image{Platform: platform, MediaType: MediaTypeManifest}
	var diffIDs []string
	var layerDescs []map[string]any
	for i, size := range sizes {
		tarball := tarOf(t, fmt.Sprintf("data/%s-%d.bin", strings.ReplaceAll(platform, "/", "-"), i), RandomBytes(size))
		layer := gzipOf(t, tarball)
		img.Layers = append(img.Layers, layer)
		diffIDs = append(diffIDs, Digest(tarball))
		layerDescs = append(layerDescs, descriptor(mediaTypeLayer, layer))
	}
	config := map[string]any{"architecture": parts[1], "os": parts[0], "rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}}
	if len(parts) > 2 {
		config["variant"] = parts[2]
	}
	img.Config = mustJSON(t, config)
	img.Manifest = mustJSON(t, map[string]any{
		"schemaVersion": 2, "mediaType": MediaTypeManifest,
		"config": descriptor(mediaTypeConfig, img.Config), "layers": layerDescs,
	})
	img.Digest = Digest(img.Manifest)
	return img
}

// Index is an OCI index of one image per platform.
type Index struct {
	Manifest []byte
	Digest   string
	Images   []Image
}

// NewIndex joins images in an index.
func NewIndex(t testing.TB, images ...Image) Index {
	t.Helper()
	var descs []map[string]any
	for _, img := range images {
		d := descriptor(img.MediaType, img.Manifest)
		parts := strings.Split(img.Platform, "/")
		p := map[string]any{"os": parts[0], "architecture": parts[1]}
		if len(parts) > 2 {
			p["variant"] = parts[2]
		}
		d["platform"] = p
		descs = append(descs, d)
	}
	m := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": MediaTypeIndex, "manifests": descs})
	return Index{Manifest: m, Digest: Digest(m), Images: images}
}

func descriptor(mediaType string, b []byte) map[string]any {
	return map[string]any{"mediaType": mediaType, "digest": Digest(b), "size": len(b)}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tarOf(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "data/", Mode: 0o755, ModTime: mtime}); err != nil {
		t.Fatal(err)
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Pusher pushes content to a registry over plain HTTP, without auth (the
// registry behind a Front, not the Front).
type Pusher struct {
	Base   string // http://host:port
	Client *http.Client
}

// NewPusher pushes to the registry at base.
func NewPusher(base string) *Pusher {
	return &Pusher{Base: strings.TrimRight(base, "/"), Client: &http.Client{Transport: &http.Transport{Proxy: nil}}}
}

// Blob uploads b to repo (POST, then PUT with the digest).
func (p *Pusher) Blob(t testing.TB, repo string, b []byte) string {
	t.Helper()
	d := Digest(b)
	resp := p.do(t, http.MethodPost, p.Base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting an upload to %s: %s", repo, resp.Status)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", d)
	loc.RawQuery = q.Encode()
	resp = p.do(t, http.MethodPut, loc.String(), "application/octet-stream", b)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("uploading %s to %s: %s", d, repo, resp.Status)
	}
	return d
}

// Manifest puts body as ref (tag or digest) of repo.
func (p *Pusher) Manifest(t testing.TB, repo, ref, mediaType string, body []byte) {
	t.Helper()
	resp := p.do(t, http.MethodPut, p.Base+"/v2/"+repo+"/manifests/"+ref, mediaType, body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("putting manifest %s of %s: %s", ref, repo, resp.Status)
	}
}

// Delete deletes ref (a tag or digest) of repo.
func (p *Pusher) Delete(t testing.TB, repo, ref string) {
	t.Helper()
	resp := p.do(t, http.MethodDelete, p.Base+"/v2/"+repo+"/manifests/"+ref, "", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deleting %s of %s: %s", ref, repo, resp.Status)
	}
}

// Image pushes img's blobs and manifest, tagged tag ("" : by digest only).
func (p *Pusher) Image(t testing.TB, repo, tag string, img Image) {
	t.Helper()
	for _, b := range img.Blobs() {
		p.Blob(t, repo, b)
	}
	ref := img.Digest
	if tag != "" {
		ref = tag
	}
	p.Manifest(t, repo, ref, img.MediaType, img.Manifest)
}

// Index pushes every image of idx and then idx, tagged tag.
func (p *Pusher) Index(t testing.TB, repo, tag string, idx Index) {
	t.Helper()
	for _, img := range idx.Images {
		p.Image(t, repo, "", img)
	}
	p.Manifest(t, repo, tag, MediaTypeIndex, idx.Manifest)
}

func (p *Pusher) do(t testing.TB, method, url, contentType string, body []byte) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}
