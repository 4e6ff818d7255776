// Package backend opens the storage backend the configuration names: the
// one place that chooses between the filesystem and an S3 bucket.
package backend

import (
	"context"
	"fmt"

	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
	"github.com/octoserve/octoserve/internal/storage/s3"
)

// Open validates cfg and opens its backend. It returns the driver and a
// description for logs ("filesystem /var/lib/octoserve", "s3
// https://host/bucket/prefix"). An S3 bucket is asked once whether it is
// there and the credentials may use it, so that a wrong endpoint, bucket
// or key fails here with its cause rather than on the first request.
func Open(ctx context.Context, cfg config.Storage) (storage.Driver, string, error) {
	if err := cfg.Validate(); err != nil {
		return nil, "", err
	}
	if cfg.S3 != nil {
		d, err := s3.New(ctx, *cfg.S3)
		if err != nil {
			return nil, "", err
		}
		if err := d.CheckBucket(ctx); err != nil {
			return nil, "", err
		}
		return d, d.String(), nil
	}
	d, err := filesystem.New(cfg.Root)
	if err != nil {
		return nil, "", err
	}
	return d, fmt.Sprintf("filesystem %s", d.Root()), nil
}
