package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// MediaTypeOCIManifest is the manifest type every scenario pushes.
const MediaTypeOCIManifest = "application/vnd.oci.image.manifest.v1+json"

// RandomBytes returns n pseudo-random bytes from seed: incompressible,
// and the same for the same seed in every process (the physical-limit
// server sends the very bytes the registries store).
func RandomBytes(seed uint64, n int) []byte {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// configBlob is the image config every pushed manifest names.
var configBlob = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

type imageManifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

// manifestFor returns the OCI image manifest of configBlob and layers.
func manifestFor(layers ...[]byte) []byte {
	m := imageManifest{
		SchemaVersion: 2,
		MediaType:     MediaTypeOCIManifest,
		Config:        descriptor{"application/vnd.oci.image.config.v1+json", Digest(configBlob), int64(len(configBlob))},
		Layers:        []descriptor{},
	}
	for _, l := range layers {
		m.Layers = append(m.Layers, descriptor{"application/vnd.oci.image.layer.v1.tar", Digest(l), int64(len(l))})
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	return b
}

// metaLayer is the one layer of the image whose manifest and tags the
// metadata scenarios read.
var metaLayer = RandomBytes(7, 1024)

// MetaManifest is the manifest the GET scenarios fetch; its size sets the
// constant body of the trivial server's line.
func MetaManifest() []byte { return manifestFor(metaLayer) }

// metaTags are the tags of the "tag list" scenario.
func metaTags(n int) []string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf("v1.%d.%d", i/10, i%10)
	}
	return tags
}

// TagListBody is the body a registry answers for the tag list of repo
// holding metaTags(n): the trivial server's constant for that row.
func TagListBody(repo string, n int) []byte {
	tags := append([]string{"latest"}, metaTags(n-1)...)
	b, _ := json.Marshal(struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{repo, tags})
	return b
}

// pushImage uploads the config and layers to repo and tags the manifest.
func pushImage(ctx context.Context, c *Client, repo, tag string, layers ...[]byte) ([]byte, error) {
	if _, err := c.PushTwoStep(ctx, repo, configBlob); err != nil {
		return nil, fmt.Errorf("config blob: %w", err)
	}
	for i, l := range layers {
		if _, err := c.PushPatched(ctx, repo, l); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	m := manifestFor(layers...)
	if err := c.PutManifest(ctx, repo, tag, MediaTypeOCIManifest, m); err != nil {
		return nil, fmt.Errorf("manifest %s:%s: %w", repo, tag, err)
	}
	return m, nil
}
