package main

import (
	"log/slog"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/proxy"
	"github.com/octoserve/octoserve/internal/registry"
)

// mirrorOptions puts the pull-through cache cfg.Proxy describes, if any,
// in front of reg. The returned func stops its fetches.
func mirrorOptions(cfg config.Config, reg *registry.Registry, log *slog.Logger, m *monitor) ([]api.Option, func(), error) {
	if !cfg.Proxy.Enabled() {
		return nil, func() {}, nil
	}
	opts := []proxy.Option{proxy.WithLogger(log)}
	if m != nil {
		opts = append(opts, proxy.WithObserver(m.m.Cache()))
	}
	px, err := proxy.New(cfg.Proxy, reg, opts...)
	if err != nil {
		return nil, nil, err
	}
	for _, u := range cfg.Proxy.Upstreams {
		u = u.WithDefaults()
		log.Info("pull-through cache", "prefix", u.Prefix+"/", "upstream", u.URL, "namespaces", u.Namespaces,
			"revalidate", u.Revalidate, "push", u.Push, "default", u.Prefix == cfg.Proxy.DefaultUpstream)
	}
	if (cfg.Proxy.Expiry > 0 || cfg.Proxy.MaxBytes > 0) && cfg.GC.Interval == 0 {
		log.Warn("proxy.expiry and proxy.maxBytes are applied by garbage collection, and gc.interval is 0: set it, or run `octoserve gc`")
	}
	return []api.Option{api.WithMirror(px)}, px.Close, nil
}
