package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/auth"
	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/gc"
	"github.com/octoserve/octoserve/internal/httplog"
	"github.com/octoserve/octoserve/internal/server"
)

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "", "listen address (default :5000)")
	root := fs.String("root", "", "data directory (default ./data)")
	cfgPath := fs.String("config", "", "YAML configuration file")
	tlsCert := fs.String("tls-cert", "", "PEM certificate chain: serve HTTPS (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
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
	reg, driver, err := openRegistry(cfg)
	if err != nil {
		return err
	}
	apiOpts, stopMirror, err := mirrorOptions(cfg, reg, log)
	if err != nil {
		return err
	}
	defer stopMirror()
	apiOpts = append(apiOpts, api.WithLogger(log))
	if cfg.Auth.Htpasswd != "" {
		authn, err := auth.New(cfg.Auth, log)
		if err != nil {
			return err
		}
		apiOpts = append(apiOpts, authn.APIOptions()...)
		if cfg.TLS.Certificate == "" {
			log.Warn("basic authentication without TLS: passwords cross the network in clear text")
		}
	}
	handler := httplog.Handler(log, api.New(reg, apiOpts...))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go gc.Run(ctx, log, reg, cfg.GC, cfg.Uploads, cfg.Proxy)
	return server.Run(ctx, log, server.Options{
		Addr:              cfg.HTTP.Addr,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
		ShutdownTimeout:   cfg.HTTP.ShutdownTimeout,
		CertFile:          cfg.TLS.Certificate,
		KeyFile:           cfg.TLS.Key,
	}, handler, func(a net.Addr) {
		log.Info("octoserve listening", "addr", a.String(), "root", driver.Root(), "version", version)
	})
}

func newLogger(c config.Log) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
}
