package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck exits 0 when the admin listener's /healthz answers 200: the container's
// HEALTHCHECK, with no shell or curl needed. It reads the same configuration as the proxy
// to find the admin listener.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, problems := parseConfig(args, getenv, stderr)
	if len(problems) > 0 {
		return fmt.Errorf("healthcheck: configuration: %s", problems[0])
	}
	host, port, err := net.SplitHostPort(cfg.AdminListen)
	if err != nil {
		return fmt.Errorf("healthcheck: admin listen %q: %w", cfg.AdminListen, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /healthz answered %d", resp.StatusCode)
	}
	return nil
}
