package loadgen

import (
	"context"
	"fmt"
	"io"
	"time"
)

// GCProbe is the manifest the start-time measurement GETs on a filled root.
const GCProbe = "/v2/gc/0/manifests/m0"

// Fill pushes the garbage-collection root: GCBlobs small blobs spread over
// GCRepos repositories, half of each repository's blobs referenced by
// manifests of GCLayers layers (tagged m0, m1, ...), the other half
// referenced by nothing, so that a collection has both to keep and to
// remove.
func Fill(ctx context.Context, url string, cfg Config, log io.Writer) error {
	c, err := NewClient(url, cfg.SetupClients)
	if err != nil {
		return err
	}
	defer c.Close()
	size := cfg.GCBlobBytes
	data := RandomBytes(4, cfg.GCBlobs*size)
	blob := func(i int) []byte { return data[i*size : (i+1)*size] }
	repo := func(r int) string { return fmt.Sprintf("gc/%d", r) }
	start := time.Now()
	err = forEach(ctx, cfg.SetupClients, cfg.GCRepos, func(ctx context.Context, r int) error {
		_, err := c.PushTwoStep(ctx, repo(r), configBlob)
		return err
	})
	if err != nil {
		return err
	}
	err = forEach(ctx, cfg.SetupClients, cfg.GCBlobs, func(ctx context.Context, i int) error {
		if i%10000 == 0 && log != nil {
			fmt.Fprintf(log, "fill: %d/%d blobs after %.0fs\n", i, cfg.GCBlobs, time.Since(start).Seconds())
		}
		_, err := c.PushTwoStep(ctx, repo(i%cfg.GCRepos), blob(i))
		return err
	})
	if err != nil {
		return err
	}
	// Repository r holds blobs r, r+GCRepos, ...; its manifests reference
	// the first half of them, GCLayers at a time.
	perRepo := cfg.GCBlobs / cfg.GCRepos
	manifests := perRepo / 2 / cfg.GCLayers
	return forEach(ctx, cfg.SetupClients, cfg.GCRepos*manifests, func(ctx context.Context, k int) error {
		r, m := k%cfg.GCRepos, k/cfg.GCRepos
		layers := make([][]byte, cfg.GCLayers)
		for j := range layers {
			layers[j] = blob((m*cfg.GCLayers+j)*cfg.GCRepos + r)
		}
		return c.PutManifest(ctx, repo(r), fmt.Sprintf("m%d", m), MediaTypeOCIManifest, manifestFor(layers...))
	})
}
