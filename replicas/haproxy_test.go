//go:build replicas

package replicas

import (
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// serverStatus returns the state HAProxy gives each server of the
// backend (UP, DOWN, "UP 1/2", ...), read from its statistics page (CSV,
// HTTP on a unix socket; scripts/lib/haproxy.sh).
func serverStatus() (map[string]string, error) {
	hc := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", cl.stats)
		}},
	}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://haproxy/;csv")
	if err != nil {
		return nil, fmt.Errorf("reading HAProxy's statistics: %w", err)
	}
	defer resp.Body.Close()
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("HAProxy's statistics are not CSV: %v", err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[strings.TrimPrefix(name, "# ")] = i
	}
	px, sv, st := col["pxname"], col["svname"], col["status"]
	out := map[string]string{}
	for _, row := range rows[1:] {
		if len(row) > st && row[px] == cl.backend && row[sv] != "BACKEND" {
			out[row[sv]] = row[st]
		}
	}
	return out, nil
}

// waitStatus polls HAProxy until server name is in state want.
func waitStatus(name, want string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		all, err := serverStatus()
		if err != nil {
			return err
		}
		if all[name] == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("HAProxy still says %s is %q after %v, waiting for %s (all: %v)", name, all[name], within, want, all)
		}
		time.Sleep(20 * time.Millisecond) // then look again
	}
}
