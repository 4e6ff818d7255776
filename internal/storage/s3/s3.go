package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/octoserve/octoserve/internal/storage"
)

// S3's limits, and the driver's defaults.
const (
	minPartSize     = 5 << 20 // every part but the last
	maxPartSize     = 5 << 30 // a part, and a CopyObject source
	maxParts        = 10000   // parts in one upload
	DefaultPartSize = 8 << 20 // Config.PartSize when zero
	deleteBatch     = 1000    // keys in one DeleteObjects
	listPage        = 1000    // keys in one ListObjectsV2 page
	maxAttempts     = 5       // tries of one request (SDK retryer)
	maxIdleConns    = 256     // connections kept open to the endpoint
	defaultRegion   = "us-east-1"
	// DefaultRedirectExpiry is Config.RedirectExpiry when zero.
	DefaultRedirectExpiry = 20 * time.Minute
	// maxRedirectExpiry is the longest a SigV4 presigned URL may live.
	maxRedirectExpiry = 7 * 24 * time.Hour
)

// tokenKey is the user metadata key of the random token each write
// carries (sent as x-amz-meta-octoserve-write).
const tokenKey = "octoserve-write"

// Config says which bucket to use and how to reach it. It is also the
// storage.s3 section of octoserve's configuration file (internal/config).
type Config struct {
	// Endpoint is the service's URL (http:// or https://); "" is AWS S3's
	// endpoint for Region.
	Endpoint string `yaml:"endpoint"`
	// Region signs requests; "" takes it from the AWS environment
	// (AWS_REGION, ~/.aws/config), else us-east-1.
	Region string `yaml:"region"`
	Bucket string `yaml:"bucket"`
	// Prefix puts every key below Prefix + "/" ("" = the whole bucket).
	Prefix string `yaml:"prefix"`
	// PathStyle addresses the bucket as ENDPOINT/BUCKET rather than
	// BUCKET.ENDPOINT (most services other than AWS need it).
	PathStyle bool `yaml:"pathStyle"`
	// AccessKey and SecretKey are static credentials; when both are ""
	// the standard AWS chain is used (environment, shared files, web
	// identity, instance or container role).
	AccessKey string `yaml:"accessKey"`
	SecretKey string `yaml:"secretKey"`
	// PartSize is a Writer's buffer and the size of its multipart parts
	// (default 8 MiB; 5 MiB to 5 GiB). An object may have 10,000 parts.
	PartSize int64 `yaml:"partSize"`
	// Redirect turns on RedirectURL: presigned GET URLs valid for
	// RedirectExpiry (default 20m, at most 7 days).
	Redirect       bool          `yaml:"redirect"`
	RedirectExpiry time.Duration `yaml:"redirectExpiry"`
}

// Validate reports settings that cannot work, naming the field.
func (c Config) Validate() error {
	if c.Bucket == "" {
		return fmt.Errorf("bucket must be set")
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("endpoint %q must be an http:// or https:// URL", c.Endpoint)
		}
	}
	if err := storage.CheckDir(c.Prefix); err != nil {
		return fmt.Errorf("prefix: %w (no leading, trailing or double slash)", err)
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return fmt.Errorf("accessKey and secretKey must be set together (or neither, for the AWS credential chain)")
	}
	if c.PartSize != 0 && (c.PartSize < minPartSize || c.PartSize > maxPartSize) {
		return fmt.Errorf("partSize %d must be between 5 MiB and 5 GiB (0: 8 MiB)", c.PartSize)
	}
	if c.RedirectExpiry < 0 || c.RedirectExpiry > maxRedirectExpiry {
		return fmt.Errorf("redirectExpiry %v must be between 0 (20m) and 168h", c.RedirectExpiry)
	}
	return nil
}

var (
	_ storage.Driver     = (*Driver)(nil)
	_ storage.Redirector = (*Driver)(nil)
)

// Driver stores objects in one bucket below one prefix.
type Driver struct {
	client   *s3sdk.Client
	presign  *s3sdk.PresignClient
	bucket   string
	prefix   string // "" or ending in "/"
	partSize int
	pool     *sync.Pool // *[]byte of partSize, shared by writers
	small    *sync.Pool // *[]byte of smallBuffer: a writer's first bytes
	redirect time.Duration
	where    string // for messages: endpoint/bucket/prefix

	// Thresholds of Compose, variables so that tests reach the paths
	// of multi-gigabyte objects with small ones.
	copyObjectMax int64 // largest source for one CopyObject
	copyPartMax   int64 // largest range for one UploadPartCopy
}

// New checks cfg and returns a driver for its bucket. It sends no
// request: a wrong endpoint or credentials show on first use.
func New(ctx context.Context, cfg Config, opts ...func(*s3sdk.Options)) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("s3 storage: %w", err)
	}
	var load []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		load = append(load, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" {
		load = append(load, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	load = append(load, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(
		func(tr *http.Transport) {
			// One endpoint serves every request: keep as many idle
			// connections to it as a busy registry has requests in flight.
			tr.MaxIdleConns = maxIdleConns
			tr.MaxIdleConnsPerHost = maxIdleConns
		})))
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("s3 storage: loading AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = defaultRegion
	}
	client := s3sdk.NewFromConfig(awsCfg, func(o *s3sdk.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		o.Retryer = newRetryer()
		for _, opt := range opts {
			opt(o)
		}
	})
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	expiry := cfg.RedirectExpiry
	if expiry == 0 {
		expiry = DefaultRedirectExpiry
	}
	d := &Driver{
		client:        client,
		presign:       s3sdk.NewPresignClient(client),
		bucket:        cfg.Bucket,
		partSize:      int(partSize),
		copyObjectMax: maxPartSize,
		copyPartMax:   1 << 30,
		where:         strings.TrimSuffix(cfg.Endpoint+"/"+cfg.Bucket+"/"+cfg.Prefix, "/"),
	}
	if cfg.Prefix != "" {
		d.prefix = cfg.Prefix + "/"
	}
	if cfg.Redirect {
		d.redirect = expiry
	}
	d.pool = &sync.Pool{New: func() any { b := make([]byte, d.partSize); return &b }}
	d.small = &sync.Pool{New: func() any { b := make([]byte, smallBuffer); return &b }}
	return d, nil
}

// newRetryer is the SDK's standard retryer without its client-side retry
// quota (which, once drained by a burst of failures, fails requests that
// would have succeeded), and retrying two 409s that say a write did not
// happen for a passing reason: the one AWS answers while a conflicting
// conditional write is in flight, as AWS advises; and versitygw's
// ExistingObjectIsDirectory, which its posix backend (objects as files)
// answers a write whose parent directory a concurrent delete of the last
// object below it removed at that moment — garbage collection removing a
// blob's last link while a push links it elsewhere. No key octoserve
// writes is ever a directory, so the write is sent again.
func newRetryer() aws.Retryer {
	r := retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.RateLimiter = ratelimit.None
	})
	return retry.AddWithErrorCodes(r, "ConditionalRequestConflict", "ExistingObjectIsDirectory")
}

// String names the store, for logs: ENDPOINT/BUCKET/PREFIX.
func (d *Driver) String() string { return "s3 " + d.where }

// key maps an object path to its key.
func (d *Driver) key(p string) (string, error) {
	if err := storage.CheckPath(p); err != nil {
		return "", err
	}
	return d.prefix + p, nil
}

// dirKey maps a directory to the prefix of the keys below it.
func (d *Driver) dirKey(dir string) (string, error) {
	if err := storage.CheckDir(dir); err != nil {
		return "", err
	}
	if dir == "" {
		return d.prefix, nil
	}
	return d.prefix + dir + "/", nil
}

// newToken returns a fresh write token.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// quote makes an ETag as If-Match wants it.
func quote(etag string) string { return `"` + etag + `"` }

// unquote strips an ETag's quotes: versions are kept bare.
func unquote(etag *string) string { return strings.Trim(aws.ToString(etag), `"`) }

// modTime is a Last-Modified at the resolution every request gives.
func modTime(t *time.Time) time.Time { return aws.ToTime(t).Truncate(time.Second) }
