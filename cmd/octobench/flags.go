package main

import (
	"flag"
	"time"

	"github.com/octoserve/octoserve/internal/loadgen"
)

// sizeFlags override single sizes of the chosen configuration; zero keeps
// the configuration's value.
type sizeFlags struct {
	bigMiB, pullReps, smallBlobs, tags, manyTags, manyRepos *int
	layerKiB, chunkedMiB, conns, gcBlobs                    *int
	duration                                                *time.Duration
}

func addSizeFlags(fs *flag.FlagSet) sizeFlags {
	return sizeFlags{
		bigMiB:     fs.Int("big-mib", 0, "big blob size in MiB (default 256; quick 64)"),
		pullReps:   fs.Int("pull-reps", 0, "pulls of the big blob per round (default 3)"),
		smallBlobs: fs.Int("small-blobs", 0, "small blobs pushed (default 1000)"),
		tags:       fs.Int("tags", 0, "tags of the tag-list repository (default 100)"),
		manyTags:   fs.Int("many-tags", 0, "tags of the paginated list (default 10000)"),
		manyRepos:  fs.Int("many-repos", 0, "repositories of the paginated catalog (default 10000)"),
		layerKiB:   fs.Int("layer-kib", 0, "layer size of the concurrently pulled image in KiB (default 4096)"),
		chunkedMiB: fs.Int("chunked-mib", 0, "size of the chunked upload in MiB (default 128)"),
		conns:      fs.Int("conns", 0, "concurrent connections of the memory scenario (default 1000)"),
		gcBlobs:    fs.Int("gc-blobs", 0, "blobs in the garbage-collection root (default 100000)"),
		duration:   fs.Duration("duration", 0, "length of each timed request loop (default 5s)"),
	}
}

func (f sizeFlags) apply(cfg *loadgen.Config) {
	set := func(dst *int, v, unit int) {
		if v > 0 {
			*dst = v * unit
		}
	}
	set(&cfg.BigBytes, *f.bigMiB, 1<<20)
	set(&cfg.PullReps, *f.pullReps, 1)
	set(&cfg.SmallBlobs, *f.smallBlobs, 1)
	set(&cfg.Tags, *f.tags, 1)
	set(&cfg.ManyTags, *f.manyTags, 1)
	set(&cfg.ManyRepos, *f.manyRepos, 1)
	set(&cfg.LayerBytes, *f.layerKiB, 1<<10)
	set(&cfg.ChunkedBytes, *f.chunkedMiB, 1<<20)
	set(&cfg.Conns, *f.conns, 1)
	set(&cfg.GCBlobs, *f.gcBlobs, 1)
	if *f.duration > 0 {
		cfg.Duration = *f.duration
	}
}
