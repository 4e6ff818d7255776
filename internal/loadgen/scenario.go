// Package loadgen is octoserve's load generator: a client of the
// distribution API that drives the same scenarios against any registry
// (octoserve, the reference registry, ...), measures the physical limits of
// the machine it runs on, and turns the samples into the bench report.
//
// Every measurement is a Sample written as one JSON line; a run of
// `make bench` collects them from several processes (one per server
// lifetime) and Report aggregates them. Nothing here starts a registry:
// scripts/bench.sh does, and hands the generator a URL and a PID.
package loadgen

// Sample is one measured figure of one scenario against one target in one
// round.
type Sample struct {
	Scenario string  `json:"scenario"`
	Target   string  `json:"target"`
	Round    int     `json:"round"`
	Value    float64 `json:"value"`
}

// Targets named in samples. Limit samples are the machine's own figures.
const (
	TargetOctoserve = "octoserve"
	TargetReference = "reference"
	TargetLimit     = "limit"
	// TargetSendfile is octoserve built to serve blobs with sendfile(2):
	// the pull scenarios' A/B.
	TargetSendfile = "octoserve-sendfile"
)

// Targets of the other sections of the report (sections.go): each names
// what ran and how, so that samples of one scenario from several sections
// never mix.
const (
	TargetS3Octoserve = "s3-octoserve"          // octoserve on versitygw
	TargetS3Redirect  = "s3-octoserve-redirect" // the same with storage.s3.redirect
	TargetS3Reference = "s3-reference"          // the reference registry's s3-aws driver on it

	TargetReplicasDirect = "replicas-direct" // one octoserve on the bucket, no balancer
	TargetReplicasLB1    = "replicas-lb1"    // one replica behind HAProxy
	TargetReplicasLB2    = "replicas-lb2"    // two
	TargetReplicasLB3    = "replicas-lb3"    // three

	TargetMetricsOff = "metrics-off" // metrics.addr empty
	TargetMetricsOn  = "metrics-on"  // metrics.addr set

	TargetCacheUpstream = "cache-upstream" // the upstream registry, pulled directly
	TargetCacheFirst    = "cache-first"    // octoserve mirroring it, blob not held yet
	TargetCacheHit      = "cache-hit"      // the same octoserve, blob held

	// The same three behind a link paced to 1 Gbit/s between the
	// upstream and its clients (octoserve among them).
	TargetCacheUpstream1G = "cache-upstream-1g"
	TargetCacheFirst1G    = "cache-first-1g"
	TargetCacheHit1G      = "cache-hit-1g"
)

// Scenario describes a figure: how to read it and which physical limit it
// is compared with.
type Scenario struct {
	ID     string
	Title  string
	Unit   string
	Higher bool   // a higher value is better
	Limit  string // ID of the limit scenario it is a fraction of, if any
}

// Scenario IDs. The order of Scenarios is the order of the report.
const (
	PushBig       = "push-big"
	PullBig       = "pull-big"
	PushSmall     = "push-small"
	ManifestGet8  = "manifest-get-8"
	ManifestGet64 = "manifest-get-64"
	TagList       = "tag-list"
	TagsPaged     = "tags-paged"
	CatalogPaged  = "catalog-paged"
	ImagePull32   = "image-pull-32"
	Chunked       = "chunked-push"
	Conns1000     = "conns-get"
	ConnsRSS      = "conns-rss"
	ConnsFDs      = "conns-fds"
	GC            = "gc"
	StartTime     = "start-time"
	RSSAfter      = "rss-after"
	ManifestGet1  = "manifest-get-1"
	PushSmall1    = "push-small-1"
	CachePull     = "cache-pull"
	ManifestCPU   = "manifest-get-cpu"
	PushSmallCPU  = "push-small-cpu"
	TagPut        = "tag-put"
	CacheFirstB   = "cache-first-byte"

	LimitSHA256    = "limit-sha256"
	LimitFdatasync = "limit-fdatasync"
	LimitPush      = "limit-push"
	LimitPull      = "limit-loopback-bytes"
	LimitConst8    = "limit-const-8"
	LimitConst64   = "limit-const-64"
	LimitTagConst8 = "limit-tagconst-8"
)

// Scenarios lists every figure of the report, registry scenarios first.
var Scenarios = []Scenario{
	{PushBig, "push one big blob (POST, PATCH, PUT)", "MiB/s", true, LimitPush},
	{PullBig, "pull it, client verifies the digest", "MiB/s", true, LimitPull},
	{PushSmall, "push small blobs, 8 clients (POST, PUT)", "blobs/s", true, ""},
	{ManifestGet8, "manifest GET by tag, 8 clients", "req/s", true, LimitConst8},
	{ManifestGet64, "manifest GET by tag, 64 clients", "req/s", true, LimitConst64},
	{TagList, "tag list (100 tags), 8 clients", "req/s", true, LimitTagConst8},
	{TagPut, "manifest PUT by tag (a new tag each), 16 clients", "req/s", true, ""},
	{TagsPaged, "tag list of a big repository, paginated (n=1000)", "tags/s", true, ""},
	{CatalogPaged, "catalog of many repositories, paginated (n=1000)", "repos/s", true, ""},
	{ImagePull32, "10-layer image pulled by 32 clients, digests verified", "MiB/s", true, LimitPull},
	{Chunked, "chunked upload, 5 MiB chunks", "MiB/s", true, LimitPush},
	{Conns1000, "manifest GET over many concurrent connections", "req/s", true, ""},
	{ConnsRSS, "peak server RSS under those connections", "MiB", false, ""},
	{ConnsFDs, "peak server open descriptors under those connections", "fds", false, ""},
	{GC, "garbage collection over a root of many blobs (offline)", "s", false, ""},
	{StartTime, "server start on that root, until a manifest GET answers", "ms", false, ""},
	{RSSAfter, "server RSS after the run", "MiB", false, ""},
	{ManifestGet1, "manifest GET by tag, 1 client, median latency", "µs", false, ""},
	{PushSmall1, "push one small blob (POST, PUT), 1 client, median latency", "ms", false, ""},
	{ManifestCPU, "server CPU per manifest GET (8 clients)", "µs", false, ""},
	{PushSmallCPU, "server CPU per small blob push (8 clients)", "µs", false, ""},
	{CachePull, "pull a big blob, client verifies the digest", "MiB/s", true, ""},
	{CacheFirstB, "that pull's first byte, after the request", "ms", false, ""},

	{LimitSHA256, "sha256 on one core", "MiB/s", true, ""},
	{LimitFdatasync, "write + fdatasync of the big blob", "MiB/s", true, ""},
	{LimitPush, "push bound: min(sha256, fdatasync)", "MiB/s", true, ""},
	{LimitPull, "trivial Go server, same bytes, client verifies the digest", "MiB/s", true, ""},
	{LimitConst8, "trivial Go server, constant manifest body, 8 clients", "req/s", true, ""},
	{LimitConst64, "trivial Go server, constant manifest body, 64 clients", "req/s", true, ""},
	{LimitTagConst8, "trivial Go server, constant tag-list body, 8 clients", "req/s", true, ""},
}

// Lookup returns the scenario with id.
func Lookup(id string) (Scenario, bool) {
	for _, s := range Scenarios {
		if s.ID == id {
			return s, true
		}
	}
	return Scenario{}, false
}
