package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/enrichproxy/enrichproxy/internal/metrics"
	"github.com/enrichproxy/enrichproxy/internal/proxy"
	"github.com/enrichproxy/enrichproxy/internal/upstream"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

// buildVersion is the stamped version, else the module version Go recorded.
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

// run is the whole program: subcommands, configuration, wiring, serving and the drain.
// Only main exits.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck":
			return healthcheck(ctx, args[1:], getenv, stderr)
		case "version":
			fmt.Fprintln(stdout, "enrichproxy", buildVersion())
			return nil
		}
	}
	cfg, problems := parseConfig(args, getenv, stderr)
	if cfg.Help {
		return nil
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "config:", p)
		}
		return fmt.Errorf("%d configuration problem(s)", len(problems))
	}
	if cfg.Check {
		fmt.Fprintln(stdout, "configuration OK")
		return nil
	}
	if cfg.Demo {
		stopSims, err := startDemo(&cfg, getenv)
		if err != nil {
			return err
		}
		defer stopSims()
	}

	log, flushLog := newLogger(stdout, cfg.LogLevel)
	defer flushLog()
	if limit, from := setMemoryLimit(getenv); limit > 0 {
		log.Info("memory limit", zap.Int64("gomemlimit_bytes", limit), zap.String("from", from))
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg, buildVersion())

	// Rate limits and holds: shared by the fleet through Redis when configured (SPEC 4),
	// closed after the drain; in process otherwise.
	var limits upstream.Limits = upstream.NewLocalLimits()
	if cfg.RedisURL != "" {
		rl, err := upstream.NewRedisLimits(cfg.RedisURL, m, log)
		if err != nil {
			return err
		}
		defer func() { _ = rl.Close() }()
		limits = rl
	}
	clients := map[string]*upstream.Client{}
	states := map[string]metrics.StateFunc{}
	for _, name := range vendorNames {
		c, err := upstream.New(upstream.Config{
			Name: name, Policy: cfg.Policies[name], Secret: cfg.Secrets[name],
			MaxNormalizeBytes: cfg.MaxNormalizeBytes, Limits: limits, Metrics: m, Log: log,
		})
		if err != nil {
			return err
		}
		clients[name] = c
		states[name] = c.CircuitState
		m.InitVendor(name)
	}
	metrics.RegisterCircuitState(reg, states)

	var draining, ready atomic.Bool
	srv := proxy.New(proxy.Config{
		Vendors: clients, Log: log, Metrics: m, MaxBodyBytes: cfg.MaxBodyBytes,
		RequestTimeout: cfg.RequestTimeout, AuthTokens: cfg.AuthTokens, Draining: &draining,
		VendorOrder: cfg.VendorOrder,
	})

	proxyLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("proxy listener: %w", err)
	}
	adminLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		proxyLn.Close()
		return fmt.Errorf("admin listener: %w", err)
	}
	proxyServer := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		// No WriteTimeout: a request's own deadline (X-Request-Timeout, Prefer: wait)
		// bounds its answer, and may be longer than any fixed write timeout.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    zap.NewStdLog(log.Named("http")),
	}
	adminServer := &http.Server{
		Handler:           proxy.Admin(reg, ready.Load),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
	}

	stopCredits := refreshCredits(ctx, clients["enrow"], cfg.Policies["enrow"].CreditsRefresh, log.Named("credits"))
	defer stopCredits()

	errc := make(chan error, 2)
	go func() { errc <- serve(proxyServer, proxyLn) }()
	go func() { errc <- serve(adminServer, adminLn) }()
	ready.Store(true)
	log.Info("listening", zap.String("proxy", proxyLn.Addr().String()), zap.String("admin", adminLn.Addr().String()),
		zap.String("version", buildVersion()))
	_ = log.Sync() // whoever waits for the listeners sees this line now, not at the next flush
	if cfg.Demo {
		printDemo(stderr, cfg, proxyLn.Addr().String(), adminLn.Addr().String())
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}

	// Drain: readiness off first, then stop accepting and let in-flight requests,
	// retries and waits included, finish within the drain limit. The shutdown context
	// must not derive from the cancelled signal context.
	ready.Store(false)
	draining.Store(true)
	log.Info("draining", zap.Duration("limit", cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := proxyServer.Shutdown(sctx); err != nil {
		log.Warn("drain limit reached; closing open requests", zap.Error(err))
		proxyServer.Close()
	}
	_ = adminServer.Shutdown(sctx)
	for _, c := range clients {
		c.CloseIdleConnections()
	}
	log.Info("stopped")
	return serveErr
}

// serve runs srv on ln; the normal end of Shutdown is not an error.
func serve(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newLogger writes zap JSON lines to w, through a buffer flushed every second (and by
// flush, at exit): one write(2) per access line would be a measurable part of a
// request's cost (docs/benchmarks.md). A crash can lose up to a second of lines.
func newLogger(w io.Writer, level zapcore.Level) (log *zap.Logger, flush func()) {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	ws := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(w), Size: 256 << 10, FlushInterval: time.Second}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), ws, level)
	return zap.New(core), func() { _ = ws.Stop() }
}
