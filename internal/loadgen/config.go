package loadgen

import (
	"fmt"
	"time"
)

// Config sizes the scenarios. DefaultConfig is the full run the issue
// asks for; QuickConfig the one-minute smoke run.
type Config struct {
	BigBytes     int           // the big blob pushed and pulled
	PullReps     int           // pulls of the big blob per round
	SmallBlobs   int           // small blobs pushed
	SmallBytes   int           // size of each
	SmallClients int           // concurrent small-blob pushers
	Duration     time.Duration // length of each timed request loop
	Tags         int           // tags of the "tag list" repository
	ManyTags     int           // tags of the paginated tag list
	ManyRepos    int           // repositories of the paginated catalog
	PageSize     int           // n of every paginated request
	SetupClients int           // concurrency of untimed setup requests
	ImageLayers  int           // layers of the image pulled concurrently
	LayerBytes   int           // size of each of those layers
	ImageClients int           // concurrent pullers of that image
	ChunkedBytes int           // blob pushed in chunks
	ChunkBytes   int           // chunk size
	Conns        int           // concurrent connections of the memory scenario
	GCBlobs      int           // blobs in the garbage-collection root
	GCBlobBytes  int           // size of each
	GCRepos      int           // repositories they are spread over
	GCLayers     int           // layers per manifest there; half the blobs are referenced
}

const mib = 1 << 20

// DefaultConfig is the full bench.
func DefaultConfig() Config {
	return Config{
		BigBytes: 256 * mib, PullReps: 3,
		SmallBlobs: 1000, SmallBytes: 16 << 10, SmallClients: 8,
		Duration: 5 * time.Second,
		Tags:     100, ManyTags: 10000, ManyRepos: 10000, PageSize: 1000,
		SetupClients: 16,
		ImageLayers:  10, LayerBytes: 4 * mib, ImageClients: 32,
		ChunkedBytes: 128 * mib, ChunkBytes: 5 * mib,
		Conns:   1000,
		GCBlobs: 100000, GCBlobBytes: 512, GCRepos: 10, GCLayers: 50,
	}
}

// QuickConfig shrinks every size so that `make bench BENCH_QUICK=1`
// takes about a minute; the figures are only a smoke test.
func QuickConfig() Config {
	c := DefaultConfig()
	c.BigBytes, c.PullReps = 64*mib, 2
	c.SmallBlobs = 200
	c.Duration = time.Second
	c.ManyTags, c.ManyRepos = 300, 300
	c.LayerBytes, c.ImageClients = mib, 32
	c.ChunkedBytes = 20 * mib
	c.Conns = 300
	c.GCBlobs, c.GCLayers = 2000, 20
	return c
}

// Describe is a one-line summary of the sizes, for the report.
func (c Config) Describe() string {
	return fmt.Sprintf("big blob %d MiB (pulled %d times per round); %d small blobs of %d KiB; timed request loops of %s; "+
		"tag list of %d tags; paginated lists of %d tags and %d repositories (n=%d); image of %d layers of %d KiB pulled by %d clients; "+
		"chunked upload of %d MiB in %d MiB chunks; %d concurrent connections; gc root of %d blobs of %d bytes in %d repositories, half referenced",
		c.BigBytes/mib, c.PullReps, c.SmallBlobs, c.SmallBytes>>10, c.Duration, c.Tags, c.ManyTags, c.ManyRepos, c.PageSize,
		c.ImageLayers, c.LayerBytes>>10, c.ImageClients, c.ChunkedBytes/mib, c.ChunkBytes/mib, c.Conns, c.GCBlobs, c.GCBlobBytes, c.GCRepos)
}
