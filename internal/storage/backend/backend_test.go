package backend

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
	"github.com/octoserve/octoserve/internal/storage/s3"
	"github.com/octoserve/octoserve/internal/storage/s3/s3test"
)

var ctx = context.Background()

func TestOpenFilesystem(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data")
	d, desc, err := Open(ctx, config.Storage{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*filesystem.Driver); !ok || desc != "filesystem "+root {
		t.Fatalf("Open = %T, %q", d, desc)
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]config.Storage{
		"nothing":             {},
		"both":                {Root: t.TempDir(), S3: &s3.Config{Bucket: "b"}},
		"bucket with no name": {S3: &s3.Config{Region: "x"}},
	} {
		if _, _, err := Open(ctx, cfg); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

func s3Config(t *testing.T) s3.Config {
	srv := s3test.Require(t)
	return s3.Config{Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Prefix: s3test.Prefix(t)}
}

func TestOpenS3(t *testing.T) {
	cfg := s3Config(t)
	d, desc, err := Open(ctx, config.Storage{S3: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*s3.Driver); !ok || !strings.Contains(desc, cfg.Bucket+"/"+cfg.Prefix) {
		t.Fatalf("Open = %T, %q", d, desc)
	}
	if err := d.PutContent(ctx, "probe", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteAll(ctx, ""); err != nil {
		t.Fatal(err)
	}
}

// A wrong bucket or key fails at Open, naming the bucket.
func TestOpenS3ChecksTheBucket(t *testing.T) {
	s3test.Require(t) // skip or fail here, not in each subtest
	for name, change := range map[string]func(*s3.Config){
		"missing bucket": func(c *s3.Config) {
			c.Bucket = "no-such-bucket-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		},
		"wrong secret": func(c *s3.Config) { c.SecretKey = "wrong" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := s3Config(t)
			change(&cfg)
			_, _, err := Open(ctx, config.Storage{S3: &cfg})
			if err == nil || !strings.Contains(err.Error(), cfg.Bucket) {
				t.Fatalf("Open = %v", err)
			}
		})
	}
}
