//go:build replicas

// Package replicas tests several octoserve replicas sharing one S3 bucket
// behind a load balancer (issue 12): any replica answers any request, at
// once, with nothing but the bucket shared between them. make
// test-replicas (scripts/test-replicas.sh) starts versitygw, the replicas
// and HAProxy (round-robin, no stickiness) and runs these scenarios with
// the cluster described in the environment:
//
//	REPLICAS_LB               the balancer's host:port
//	REPLICAS_ADDRS            each replica's host:port, space-separated, in
//	                          the balancer's order (servers r1, r2, ...)
//	REPLICAS_PIDS             each replica's process, in the same order
//	REPLICAS_BIN              the octoserve binary (for gc and verify)
//	REPLICAS_STORE_CONFIG     the storage file the replicas run on
//	REPLICAS_HAPROXY_STATS    the balancer's statistics (HTTP on a unix socket)
//	REPLICAS_HAPROXY_BACKEND  the backend's name in them
//
// Scenarios talk to a replica directly when the point is which replica
// answers (a request on one, the next on another), and through the
// balancer when the point is what a client of the service sees.
package replicas

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/backend"
)

// replica is one octoserve process of the cluster.
type replica struct {
	name string // the balancer's name for it: r1, r2, ...
	addr string
	pid  int
}

func (r replica) base() string { return "http://" + r.addr }

// cluster is what scripts/test-replicas.sh started.
type cluster struct {
	lb          string
	replicas    []replica
	bin         string
	storeConfig string
	stats       string
	backend     string
}

func (c *cluster) lbBase() string { return "http://" + c.lb }

// bases returns the base URL of every replica.
func (c *cluster) bases() []string {
	var out []string
	for _, r := range c.replicas {
		out = append(out, r.base())
	}
	return out
}

var (
	cl *cluster
	// runID keeps repository names apart when the scenarios run more than
	// once against one cluster.
	runID string
)

func TestMain(m *testing.M) {
	c, err := loadCluster()
	if err != nil {
		fmt.Fprintf(os.Stderr, "replicas: %v; run `make test-replicas` (scripts/test-replicas.sh starts the cluster)\n", err)
		os.Exit(2)
	}
	cl = c
	var b [4]byte
	_, _ = rand.Read(b[:])
	runID = hex.EncodeToString(b[:])
	os.Exit(m.Run())
}

func loadCluster() (*cluster, error) {
	get := func(k string) (string, error) {
		v := os.Getenv(k)
		if v == "" {
			return "", fmt.Errorf("%s is not set", k)
		}
		return v, nil
	}
	c := &cluster{}
	var addrs, pids string
	for _, v := range []struct {
		key string
		dst *string
	}{
		{"REPLICAS_LB", &c.lb}, {"REPLICAS_ADDRS", &addrs}, {"REPLICAS_PIDS", &pids},
		{"REPLICAS_BIN", &c.bin}, {"REPLICAS_STORE_CONFIG", &c.storeConfig},
		{"REPLICAS_HAPROXY_STATS", &c.stats}, {"REPLICAS_HAPROXY_BACKEND", &c.backend},
	} {
		s, err := get(v.key)
		if err != nil {
			return nil, err
		}
		*v.dst = s
	}
	as, ps := strings.Fields(addrs), strings.Fields(pids)
	if len(as) != len(ps) || len(as) < 2 {
		return nil, fmt.Errorf("REPLICAS_ADDRS %q and REPLICAS_PIDS %q: want the same number, two or more", addrs, pids)
	}
	for i, a := range as {
		pid, err := strconv.Atoi(ps[i])
		if err != nil {
			return nil, fmt.Errorf("REPLICAS_PIDS: %v", err)
		}
		c.replicas = append(c.replicas, replica{name: fmt.Sprintf("r%d", i+1), addr: a, pid: pid})
	}
	return c, nil
}

// openStore opens the bucket the replicas share, as the test's own
// storage driver: to look at what the registry keeps there (upload
// state, the housekeeping lease), never to change it.
func openStore(t *testing.T) storage.Driver {
	t.Helper()
	cfg, err := config.Load(cl.storeConfig)
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := backend.Open(context.Background(), cfg.Storage)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// repoName is a repository of this run.
func repoName(what string) string { return "replicas/" + what + "-" + runID }
