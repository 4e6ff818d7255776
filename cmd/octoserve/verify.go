package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
)

func verifyMain(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	store := addStoreFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := store.load()
	if err != nil {
		return err
	}
	reg, _, err := openRegistry(cfg)
	if err != nil {
		return err
	}
	report, err := reg.Verify(context.Background())
	if err != nil {
		return err
	}
	for _, n := range report.Notes {
		fmt.Println("NOTE", n)
	}
	for _, p := range report.Problems {
		fmt.Println("PROBLEM", p)
	}
	fmt.Printf("verified %d blobs, %d repositories, %d manifests, %d tags: %d problems\n",
		report.Blobs, report.Repositories, report.Manifests, report.Tags, len(report.Problems))
	if len(report.Problems) > 0 {
		return errors.New("the store is inconsistent")
	}
	return nil
}
