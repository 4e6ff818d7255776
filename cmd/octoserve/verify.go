package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/octoserve/octoserve/internal/registry"
)

func verifyMain(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	store := addStoreFlags(fs)
	readOnly := fs.Bool("read-only", false, "report only: do not quarantine blobs whose bytes do not match their digest")
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, reg, err := store.open()
	if err != nil {
		return err
	}
	report, err := reg.Verify(context.Background(), registry.VerifyOptions{Quarantine: !*readOnly})
	if err != nil {
		return err
	}
	for _, n := range report.Notes {
		fmt.Println("NOTE", n)
	}
	for _, p := range report.Problems {
		fmt.Println("PROBLEM", p)
	}
	for _, q := range report.Quarantined {
		fmt.Println("QUARANTINED", q, "(moved to _quarantine/: no longer served; the next push of these bytes stores them again)")
	}
	fmt.Printf("verified %d blobs, %d repositories, %d manifests, %d tags: %d problems\n",
		report.Blobs, report.Repositories, report.Manifests, report.Tags, len(report.Problems))
	if len(report.Problems) > 0 {
		return errors.New("the store is inconsistent")
	}
	return nil
}
