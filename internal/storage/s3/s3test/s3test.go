// Package s3test finds the S3 server that tests run against: the one
// scripts/test-s3.sh starts (versitygw on loopback) and describes in
// OCTOSERVE_TEST_S3_* variables. Without them a test skips, unless
// OCTOSERVE_TEST_S3_REQUIRED is set (the script sets it), when it fails:
// a run meant to test S3 never passes by skipping.
package s3test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The variables scripts/test-s3.sh exports.
const (
	EnvEndpoint  = "OCTOSERVE_TEST_S3_ENDPOINT"
	EnvRegion    = "OCTOSERVE_TEST_S3_REGION"
	EnvBucket    = "OCTOSERVE_TEST_S3_BUCKET"
	EnvAccessKey = "OCTOSERVE_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "OCTOSERVE_TEST_S3_SECRET_KEY"
	EnvRequired  = "OCTOSERVE_TEST_S3_REQUIRED"
)

// Server is where the test bucket is; it is addressed path-style.
type Server struct {
	Endpoint  string
	Region    string
	Bucket    string
	AccessKey string
	SecretKey string
}

// Require returns the test server, or ends t: skipped without one,
// failed when one is required.
func Require(t testing.TB) Server {
	t.Helper()
	s := Server{
		Endpoint:  os.Getenv(EnvEndpoint),
		Region:    os.Getenv(EnvRegion),
		Bucket:    os.Getenv(EnvBucket),
		AccessKey: os.Getenv(EnvAccessKey),
		SecretKey: os.Getenv(EnvSecretKey),
	}
	if s.Endpoint != "" && s.Bucket != "" {
		return s
	}
	if os.Getenv(EnvRequired) != "" {
		t.Fatalf("%s is set but %s or %s is not: the S3 tests must run against a server", EnvRequired, EnvEndpoint, EnvBucket)
	}
	t.Skipf("no S3 server: %s is not set (make test-s3 starts versitygw and runs these tests)", EnvEndpoint)
	return Server{}
}

// Prefix returns a key prefix for t that no other test or run uses.
func Prefix(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "test/" + name + "-" + hex.EncodeToString(b[:])
}

// EnvCapacity is the size in bytes of the test server's disk, set only
// for a server on a small filesystem that tests fill up.
const EnvCapacity = "OCTOSERVE_TEST_S3_CAPACITY"

// RequireSmall returns the capacity of a test server on a small
// filesystem, or ends t as Require does.
func RequireSmall(t testing.TB) int64 {
	t.Helper()
	n, err := strconv.ParseInt(os.Getenv(EnvCapacity), 10, 64)
	if err == nil && n > 0 {
		return n
	}
	if os.Getenv(EnvRequired) != "" {
		t.Fatalf("%s is set but %s is not a size: scripts/test-s3.sh runs this test in its nospace step", EnvRequired, EnvCapacity)
	}
	t.Skipf("no small S3 server: %s is not set (scripts/test-s3.sh nospace starts one)", EnvCapacity)
	return 0
}
