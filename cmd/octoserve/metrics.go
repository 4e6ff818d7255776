package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/octoserve/octoserve/internal/auth"
	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/gc"
	"github.com/octoserve/octoserve/internal/health"
	"github.com/octoserve/octoserve/internal/httplog"
	"github.com/octoserve/octoserve/internal/metrics"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/server"
	"github.com/octoserve/octoserve/internal/storage"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
	"github.com/octoserve/octoserve/internal/storage/s3"
)

// monitor wires internal/metrics into serve. A nil *monitor (metrics.addr
// empty) changes nothing: every method is a no-op on it.
type monitor struct{ m *metrics.Metrics }

func newMetrics(cfg config.Config) *monitor {
	if cfg.Metrics.Addr == "" {
		return nil
	}
	return &monitor{metrics.New(version)}
}

// instrument wraps the storage driver in the metrics' decorator, named by
// its backend; on a filesystem the space left is exported too.
func (o *monitor) instrument(d storage.Driver) storage.Driver {
	if o == nil {
		return d
	}
	name := "other"
	switch d := d.(type) {
	case *filesystem.Driver:
		name = "filesystem"
		o.m.WatchFilesystem(d.Root())
	case *s3.Driver:
		name = "s3"
	}
	return o.m.InstrumentDriver(d, name)
}

func (o *monitor) watchLogins(l metrics.Logins) {
	if o != nil {
		o.m.WatchLogins(l)
	}
}

// logOptions are the request log's: health probes logged at debug level,
// and the metrics fed from the same wrapper.
func (o *monitor) logOptions() []httplog.Option {
	opts := []httplog.Option{httplog.WithQuietPaths("/healthz", "/readyz")}
	if o != nil {
		opts = append(opts, httplog.WithObserver(o.m.HTTP()))
	}
	return opts
}

func (o *monitor) housekeeping(interval time.Duration) gc.Observer {
	if o == nil {
		return nil
	}
	return o.m.Housekeeping(interval)
}

// serveBeside runs public (the API's server) and, with metrics on, the
// metrics address and the background usage scan beside it; either server
// failing stops both.
func (o *monitor) serveBeside(ctx context.Context, log *slog.Logger, cfg config.Config, ready *health.Checker, reg *registry.Registry, public func(context.Context) error) error {
	if o == nil {
		return public(ctx)
	}
	h, err := o.debugHandler(log, cfg, ready)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go o.m.RunUsage(ctx, reg, cfg.Metrics.UsageInterval, log)
	errc := make(chan error, 1)
	go func() {
		err := server.Run(ctx, log, server.Options{
			Addr:              cfg.Metrics.Addr,
			ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
			IdleTimeout:       cfg.HTTP.IdleTimeout,
			MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
			ShutdownTimeout:   cfg.HTTP.ShutdownTimeout,
		}, h, func(a net.Addr) {
			log.Info("metrics and debug address listening", "addr", a.String(), "basicAuth", cfg.Metrics.Htpasswd != "")
		})
		if err != nil {
			cancel()
		}
		errc <- err
	}()
	err = public(ctx)
	cancel()
	if merr := <-errc; merr != nil && err == nil {
		return fmt.Errorf("metrics address: %w", merr)
	}
	return err
}

// debugHandler serves /metrics and pprof (behind basic auth with
// metrics.htpasswd), and /healthz and /readyz (open, for probes).
func (o *monitor) debugHandler(log *slog.Logger, cfg config.Config, ready *health.Checker) (http.Handler, error) {
	var h http.Handler = o.m.DebugMux()
	switch {
	case cfg.Metrics.Htpasswd != "":
		a, err := auth.New(config.Auth{Htpasswd: cfg.Metrics.Htpasswd, Realm: "octoserve metrics", FailedLogins: cfg.Auth.FailedLogins}, log)
		if err != nil {
			return nil, fmt.Errorf("metrics.htpasswd: %w", err)
		}
		h = a.RequireUser(h)
		log.Warn("the metrics address serves plain HTTP: its basic-auth passwords cross the network in clear text")
	case !loopback(cfg.Metrics.Addr):
		log.Warn("the metrics address is neither on loopback nor behind metrics.htpasswd: whoever reaches it reads the metrics and profiles", "addr", cfg.Metrics.Addr)
	}
	return health.Handler(ready, h), nil
}

// loopback reports whether addr binds only to the loopback interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
