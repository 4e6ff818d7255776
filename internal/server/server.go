// Package server runs an http.Handler with the timeouts and limits a
// public registry needs and shuts it down gracefully: slow headers, slow
// or missing bodies, idle connections and too many connections from one
// client are all cut off, and TLS offers only AEAD cipher suites.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Options configure the HTTP server.
type Options struct {
	Addr              string
	ReadHeaderTimeout time.Duration // slow-loris protection
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	ShutdownTimeout   time.Duration // how long in-flight requests may finish
	// BodyTimeout is how long a request body may deliver nothing while the
	// handler waits for it (see bodyDeadlines); 0 means no limit.
	BodyTimeout time.Duration
	// MaxConnsPerClient bounds the connections one client address holds
	// at once (see perClientListener); 0 means no limit.
	MaxConnsPerClient int
	TLSConfig         *tls.Config // nil serves plain HTTP
	CertFile, KeyFile string
	// CipherSuites names the TLS 1.2 cipher suites to offer; empty means
	// the AEAD suites of defaultCipherSuites.
	CipherSuites []string
}

// Run serves h until ctx is cancelled, then lets in-flight requests finish.
// ready, if not nil, receives the bound address once listening.
func Run(ctx context.Context, log *slog.Logger, opts Options, h http.Handler, ready func(net.Addr)) error {
	srv := &http.Server{
		Handler:           bodyDeadlines(h, opts.BodyTimeout),
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		TLSConfig:         opts.TLSConfig,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if opts.CertFile != "" {
		// Load the key pair before listening so a bad file fails at startup.
		cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return fmt.Errorf("loading TLS certificate: %w", err)
		}
		if srv.TLSConfig == nil {
			srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		srv.TLSConfig = srv.TLSConfig.Clone()
		srv.TLSConfig.Certificates = append(srv.TLSConfig.Certificates, cert)
		if srv.TLSConfig.CipherSuites == nil {
			if srv.TLSConfig.CipherSuites, err = cipherSuites(opts.CipherSuites); err != nil {
				return err
			}
		}
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", opts.Addr, err)
	}
	ln = limitPerClient(ln, opts.MaxConnsPerClient, log)
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() {
		if opts.CertFile != "" {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: waiting for in-flight requests", "timeout", opts.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
