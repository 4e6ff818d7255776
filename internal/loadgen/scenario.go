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
