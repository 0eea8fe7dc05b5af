// Command proxy is enrichproxy: one internal endpoint for the Enrow and eCore
// contact-enrichment APIs, answering every call in one envelope, with retries, rate
// shaping, a circuit breaker, metrics and logs.
//
// Usage:
//
//	proxy [flags]          serve (see -h; every flag has an environment variable)
//	proxy -demo            serve against built-in simulated vendors
//	proxy -check           validate the configuration and exit
//	proxy healthcheck      exit 0 when the admin listener's /healthz answers
//	proxy version          print the version
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		os.Exit(1)
	}
}
