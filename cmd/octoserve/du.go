package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"text/tabwriter"

	"github.com/octoserve/octoserve/internal/registry"
)

// du prints what each repository stores — all of it, what only it links
// (what deleting its content would free) and what it shares with others —
// and the registry's total, from one walk over the blobs. With --gc it
// also runs a dry-run collection with --delete-untagged to say what that
// would free.
func du(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("du", flag.ContinueOnError)
	store := addStoreFlags(fs)
	withGC := fs.Bool("gc", false, "also say what `gc --delete-untagged` would free now (a dry run: reads every manifest, takes the gc lease)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, reg, err := store.open()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	u, err := reg.Usage(ctx)
	if err != nil {
		return err
	}
	if err := printUsage(stdout, u); err != nil {
		return err
	}
	if !*withGC {
		return nil
	}
	report, err := reg.CollectGarbage(ctx, registry.GCOptions{
		DryRun: true, DeleteUntagged: true, MinAge: cfg.GC.MinAge, ClockSkew: cfg.GC.ClockSkew,
	})
	if err != nil {
		return fmt.Errorf("dry-run collection: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "gc --delete-untagged would free %d bytes (%s): %d blobs, %d manifests (keeping anything newer than %s)\n",
		report.BytesFreed, human(report.BytesFreed), len(report.Blobs), len(report.Manifests), cfg.GC.MinAge)
	return err
}

func duMain(args []string) error { return du(args, os.Stdout) }

func printUsage(out io.Writer, u *registry.Usage) error {
	names := make([]string, 0, len(u.Repositories))
	for name := range u.Repositories {
		names = append(names, name)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "BYTES\tONLY HERE\tSHARED\tBLOBS\t  REPOSITORY")
	for _, name := range names {
		r := u.Repositories[name]
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t  %s\n", r.Bytes, r.OwnBytes, r.SharedBytes, r.Blobs, name)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "registry: %d bytes (%s) in %d blobs, %d repositories; %d bytes in %d blobs no repository links (gc removes them); %d upload sessions holding %d bytes\n",
		u.Bytes, human(u.Bytes), u.Blobs, len(u.Repositories), u.UnlinkedBytes, u.UnlinkedBlobs, u.Uploads, u.UploadBytes)
	return err
}

// human writes n bytes with a binary unit.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
