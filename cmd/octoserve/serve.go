package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/auth"
	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/gc"
	"github.com/octoserve/octoserve/internal/health"
	"github.com/octoserve/octoserve/internal/httplog"
	"github.com/octoserve/octoserve/internal/server"
)

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "", "listen address (default :5000)")
	root := fs.String("root", "", "data directory (default ./data)")
	var cfgPaths configFiles
	fs.Var(&cfgPaths, "config", "YAML configuration file; repeat it to layer files, later ones override earlier ones")
	tlsCert := fs.String("tls-cert", "", "PEM certificate chain: serve HTTPS (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(cfgPaths...)
	if err != nil {
		return err
	}
	if *addr != "" {
		cfg.HTTP.Addr = *addr
	}
	if *root != "" {
		cfg.Storage.Root = *root
	}
	if *tlsCert != "" || *tlsKey != "" {
		cfg.TLS.Certificate, cfg.TLS.Key = *tlsCert, *tlsKey
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, err := newLogger(cfg.Log)
	if err != nil {
		return err
	}
	m := newMetrics(cfg)
	reg, where, err := openRegistryThrough(cfg, m.instrument)
	if err != nil {
		return err
	}
	apiOpts, stopMirror, err := mirrorOptions(cfg, reg, log, m)
	if err != nil {
		return err
	}
	defer stopMirror()
	apiOpts = append(apiOpts, api.WithLogger(log), api.WithAutomaticMount(cfg.Uploads.AutomaticMount))
	if cfg.Auth.Htpasswd != "" {
		authn, err := auth.New(cfg.Auth, log)
		if err != nil {
			return err
		}
		apiOpts = append(apiOpts, authn.APIOptions()...)
		m.watchLogins(authn)
		if cfg.TLS.Certificate == "" {
			log.Warn("basic authentication without TLS: passwords cross the network in clear text")
		}
	}
	ready := health.NewChecker(reg.ProbeStorage, health.DefaultTimeout, health.DefaultMaxAge, log)
	handler := httplog.Handler(log, health.Handler(ready, api.New(reg, apiOpts...)), m.logOptions()...)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go gc.Run(ctx, log, reg, cfg.GC, cfg.Uploads, cfg.Proxy, m.housekeeping(cfg.GC.Interval))
	return m.serveBeside(ctx, log, cfg, ready, reg, func(ctx context.Context) error { return servePublic(ctx, log, cfg, handler, where) })
}

// servePublic serves the API on http.addr until ctx ends.
func servePublic(ctx context.Context, log *slog.Logger, cfg config.Config, handler http.Handler, where string) error {
	return server.Run(ctx, log, server.Options{
		Addr:              cfg.HTTP.Addr,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
		ShutdownTimeout:   cfg.HTTP.ShutdownTimeout,
		BodyTimeout:       cfg.HTTP.BodyTimeout,
		MaxConnsPerClient: cfg.HTTP.MaxConnsPerClient,
		CertFile:          cfg.TLS.Certificate,
		KeyFile:           cfg.TLS.Key,
		CipherSuites:      cfg.TLS.CipherSuites,
	}, handler, func(a net.Addr) {
		log.Info("octoserve listening", "addr", a.String(), "storage", where, "version", version)
	})
}

func newLogger(c config.Log) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(httplog.WithRequestIDs(slog.NewJSONHandler(os.Stderr, opts))), nil
	}
	return slog.New(httplog.WithRequestIDs(slog.NewTextHandler(os.Stderr, opts))), nil
}
