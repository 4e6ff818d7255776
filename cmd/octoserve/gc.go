package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/octoserve/octoserve/internal/registry"
)

func gcMain(args []string) error {
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	store := addStoreFlags(fs)
	dryRun := fs.Bool("dry-run", false, "report what would be removed, remove nothing")
	untagged := fs.Bool("delete-untagged", false, "also remove manifests no tag, kept index or kept subject reaches")
	minAge := fs.Duration("min-age", -1, "keep anything written or used more recently (default gc.minAge, 1h)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, reg, err := store.open()
	if err != nil {
		return err
	}
	opts := registry.GCOptions{
		DryRun:         *dryRun,
		DeleteUntagged: *untagged || cfg.GC.DeleteUntagged,
		MinAge:         cfg.GC.MinAge,
		ClockSkew:      cfg.GC.ClockSkew,
		UploadMaxIdle:  cfg.Uploads.MaxIdle,
		CacheExpiry:    cfg.Proxy.Expiry,
		CacheMaxBytes:  cfg.Proxy.MaxBytes,
	}
	if *minAge >= 0 {
		opts.MinAge = *minAge
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := reg.CollectGarbage(ctx, opts)
	if report != nil {
		printGCReport(report, opts.DryRun)
	}
	return err
}

func printGCReport(r *registry.GCReport, dryRun bool) {
	verb := "removed"
	if dryRun {
		verb = "would remove"
	}
	fmt.Printf("cutoff %s: anything written or used at or after it was kept\n", r.Cutoff.UTC().Format(time.RFC3339Nano))
	for _, m := range r.Manifests {
		fmt.Printf("%s manifest %s\n", verb, m)
	}
	for _, b := range r.Blobs {
		fmt.Printf("%s blob %s\n", verb, b)
	}
	for _, s := range r.Skipped {
		fmt.Printf("skipped repository %s\n", s)
	}
	for _, m := range r.Expired {
		fmt.Printf("%s cached manifest %s (proxy.expiry or proxy.maxBytes)\n", verb, m)
	}
	fmt.Printf("%s %d blobs (%d bytes freed), %d blob links, %d manifests, %d referrer entries, %d abandoned uploads\n",
		verb, len(r.Blobs), r.BytesFreed, r.Links, len(r.Manifests), r.Referrers, r.Uploads)
}
