package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Repositories the scenarios use.
const (
	repoBig     = "bench/big"
	repoSmall   = "bench/small"
	MetaRepo    = "bench/meta"
	repoTags    = "bench/tags"
	repoCatalog = "bench/catalog/r"
	repoImage   = "bench/image"
	repoChunked = "bench/chunked"
)

// big pushes one big blob with POST, PATCH, PUT and pulls it back.
func (r *Runner) big(ctx context.Context) error {
	c, err := r.client(1)
	if err != nil {
		return err
	}
	defer c.Close()
	data := RandomBytes(1, r.Cfg.BigBytes)
	start := time.Now()
	d, err := c.PushPatched(ctx, repoBig, data)
	if err != nil {
		return err
	}
	r.emit(PushBig, mibPerSec(int64(len(data)), time.Since(start)))
	var total int64
	start = time.Now()
	for range r.Cfg.PullReps {
		n, err := c.PullBlob(ctx, repoBig, d)
		if err != nil {
			return err
		}
		total += n
	}
	r.emit(PullBig, mibPerSec(total, time.Since(start)))
	return nil
}

// small pushes many small blobs from several clients, as POST then PUT
// with the body.
func (r *Runner) small(ctx context.Context) error {
	n, size := r.Cfg.SmallBlobs, r.Cfg.SmallBytes
	c, err := r.client(r.Cfg.SmallClients)
	if err != nil {
		return err
	}
	defer c.Close()
	data := RandomBytes(uint64(100+r.Round), n*size)
	cpu, err := startCPU(r.CPUPIDs)
	if err != nil {
		return err
	}
	start := time.Now()
	err = forEach(ctx, r.Cfg.SmallClients, n, func(ctx context.Context, i int) error {
		_, err := c.PushTwoStep(ctx, repoSmall, data[i*size:(i+1)*size])
		return err
	})
	if err != nil {
		return err
	}
	r.emit(PushSmall, perSec(int64(n), time.Since(start)))
	return r.emitCPU(PushSmallCPU, cpu, int64(n))
}

// emitCPU emits the CPU time per request a meter measured, when the
// runner measures CPU.
func (r *Runner) emitCPU(id string, m *cpuMeter, n int64) error {
	if len(r.CPUPIDs) == 0 {
		return nil
	}
	v, err := m.perRequest(n)
	if err != nil {
		return err
	}
	r.emit(id, v)
	return nil
}

// meta pushes an image with Tags tags, then times manifest GETs by tag
// (8 and 64 clients) and tag lists.
func (r *Runner) meta(ctx context.Context) error {
	c, err := r.client(64)
	if err != nil {
		return err
	}
	defer c.Close()
	m, err := pushImage(ctx, c, MetaRepo, "latest", metaLayer)
	if err != nil {
		return err
	}
	tags := metaTags(r.Cfg.Tags - 1)
	err = forEach(ctx, r.Cfg.SetupClients, len(tags), func(ctx context.Context, i int) error {
		return c.PutManifest(ctx, MetaRepo, tags[i], MediaTypeOCIManifest, m)
	})
	if err != nil {
		return err
	}
	if got, err := c.GetManifest(ctx, MetaRepo, "latest"); err != nil || string(got) != string(m) {
		return fmt.Errorf("manifest read back differs (%v)", err)
	}
	if n, err := c.ListAll(ctx, "/v2/"+MetaRepo+"/tags/list", "tags"); err != nil || n != r.Cfg.Tags {
		return fmt.Errorf("tag list has %d tags, want %d (%v)", n, r.Cfg.Tags, err)
	}
	getManifest := func(ctx context.Context) error {
		_, err := c.GetManifest(ctx, MetaRepo, "latest")
		return err
	}
	for _, run := range []struct {
		id, cpuID string
		clients   int
	}{{ManifestGet8, ManifestCPU, 8}, {ManifestGet64, "", 64}} {
		cpu, err := startCPU(r.CPUPIDs)
		if err != nil {
			return err
		}
		n, d, err := forDuration(ctx, run.clients, r.Cfg.Duration, getManifest)
		if err != nil {
			return err
		}
		r.emit(run.id, perSec(n, d))
		if run.cpuID != "" {
			if err := r.emitCPU(run.cpuID, cpu, n); err != nil {
				return err
			}
		}
	}
	n, d, err := forDuration(ctx, 8, r.Cfg.Duration, func(ctx context.Context) error {
		_, _, err := c.get(ctx, "/v2/"+MetaRepo+"/tags/list")
		return err
	})
	if err != nil {
		return err
	}
	r.emit(TagList, perSec(n, d))
	return nil
}

// manyTags tags one manifest ManyTags times, then walks the paginated tag
// list for Duration.
func (r *Runner) manyTags(ctx context.Context) error {
	c, err := r.client(r.Cfg.SetupClients)
	if err != nil {
		return err
	}
	defer c.Close()
	m, err := pushImage(ctx, c, repoTags, "t0", metaLayer)
	if err != nil {
		return err
	}
	start := time.Now()
	err = forEach(ctx, r.Cfg.SetupClients, r.Cfg.ManyTags-1, func(ctx context.Context, i int) error {
		return c.PutManifest(ctx, repoTags, fmt.Sprintf("t%d", i+1), MediaTypeOCIManifest, m)
	})
	if err != nil {
		return err
	}
	r.emit(TagPut, perSec(int64(r.Cfg.ManyTags-1), time.Since(start)))
	return r.walk(ctx, c, TagsPaged, "/v2/"+repoTags+"/tags/list"+pageQuery(r.Cfg.PageSize), "tags", r.Cfg.ManyTags)
}

// catalog creates ManyRepos repositories (a mounted config and a manifest
// each), then walks the paginated catalog for Duration.
func (r *Runner) catalog(ctx context.Context) error {
	c, err := r.client(r.Cfg.SetupClients)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.PushTwoStep(ctx, repoCatalog+"0", configBlob); err != nil {
		return err
	}
	m := manifestFor()
	err = forEach(ctx, r.Cfg.SetupClients, r.Cfg.ManyRepos, func(ctx context.Context, i int) error {
		repo := fmt.Sprintf("%s%d", repoCatalog, i)
		if i > 0 {
			if err := c.Mount(ctx, repo, repoCatalog+"0", Digest(configBlob)); err != nil {
				return err
			}
		}
		return c.PutManifest(ctx, repo, "latest", MediaTypeOCIManifest, m)
	})
	if err != nil {
		return err
	}
	// The other scenarios' repositories are listed too.
	return r.walk(ctx, c, CatalogPaged, "/v2/_catalog"+pageQuery(r.Cfg.PageSize), "repositories", r.Cfg.ManyRepos)
}

// walk lists first to the end, again and again for Duration, and emits
// entries per second. Each walk must see at least want entries.
func (r *Runner) walk(ctx context.Context, c *Client, id, first, field string, want int) error {
	var entries int64
	n, d, err := forDuration(ctx, 1, r.Cfg.Duration, func(ctx context.Context) error {
		got, err := c.ListAll(ctx, first, field)
		if err == nil && got < want {
			err = fmt.Errorf("%s listed %d entries, want at least %d", first, got, want)
		}
		entries += int64(got)
		return err
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: no complete walk", first)
	}
	r.emit(id, perSec(entries, d))
	return nil
}

// image pushes an image of ImageLayers layers, then ImageClients clients
// pull all of it at once, each verifying every digest.
func (r *Runner) image(ctx context.Context) error {
	c, err := r.client(r.Cfg.ImageClients)
	if err != nil {
		return err
	}
	defer c.Close()
	layers := make([][]byte, r.Cfg.ImageLayers)
	for i := range layers {
		layers[i] = RandomBytes(uint64(200+i), r.Cfg.LayerBytes)
	}
	if _, err := pushImage(ctx, c, repoImage, "v1", layers...); err != nil {
		return err
	}
	var mu sync.Mutex
	var total int64
	start := time.Now()
	err = forEach(ctx, r.Cfg.ImageClients, r.Cfg.ImageClients, func(ctx context.Context, _ int) error {
		n, err := pullImage(ctx, c, repoImage, "v1")
		mu.Lock()
		total += n
		mu.Unlock()
		return err
	})
	if err != nil {
		return err
	}
	r.emit(ImagePull32, mibPerSec(total, time.Since(start)))
	return nil
}

// pullImage fetches repo:tag, its config and its layers, verifying each.
func pullImage(ctx context.Context, c *Client, repo, tag string) (int64, error) {
	b, err := c.GetManifest(ctx, repo, tag)
	if err != nil {
		return 0, err
	}
	var m imageManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, fmt.Errorf("manifest %s:%s: %w", repo, tag, err)
	}
	total := int64(len(b))
	for _, desc := range append([]descriptor{m.Config}, m.Layers...) {
		n, err := c.PullBlob(ctx, repo, desc.Digest)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// chunked pushes ChunkedBytes in ChunkBytes PATCHes with Content-Range.
func (r *Runner) chunked(ctx context.Context) error {
	c, err := r.client(1)
	if err != nil {
		return err
	}
	defer c.Close()
	data := RandomBytes(3, r.Cfg.ChunkedBytes)
	start := time.Now()
	if _, err := c.PushChunked(ctx, repoChunked, data, r.Cfg.ChunkBytes); err != nil {
		return err
	}
	r.emit(Chunked, mibPerSec(int64(len(data)), time.Since(start)))
	return nil
}

// conns opens Conns connections that each GET the meta manifest in a loop
// for Duration, sampling the server's RSS and descriptors meanwhile.
func (r *Runner) conns(ctx context.Context) error {
	c, err := r.client(r.Cfg.Conns)
	if err != nil {
		return err
	}
	defer c.Close()
	sampler := startSampler(r.PID, 20*time.Millisecond)
	n, d, err := forDuration(ctx, r.Cfg.Conns, r.Cfg.Duration, func(ctx context.Context) error {
		_, err := c.GetManifest(ctx, MetaRepo, "latest")
		return err
	})
	peakRSS, peakFDs, serr := sampler.stop()
	if err != nil {
		return err
	}
	r.emit(Conns1000, perSec(n, d))
	if r.PID > 0 {
		if serr != nil {
			return serr
		}
		r.emit(ConnsRSS, peakRSS)
		r.emit(ConnsFDs, float64(peakFDs))
	}
	return nil
}
