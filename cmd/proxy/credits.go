package main

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/enrichproxy/enrichproxy/internal/upstream"
)

// refreshCredits reads Enrow's remaining credits from GET /account/info (free, not rate
// limited: vendors/enrow.md §2.7, §6) at start-up and every interval, so that
// enrichproxy_credits_remaining is current even though Enrow's search answers never carry
// the balance. The upstream client records the gauge from the answer. It returns a
// function that stops the refresher and waits for it.
func refreshCredits(ctx context.Context, c *upstream.Client, interval time.Duration, log *zap.Logger) (stop func()) {
	if interval <= 0 || !c.HasSecret() {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
			out, err := c.Do(rctx, &upstream.Request{Method: http.MethodGet, Path: "/account/info", Header: http.Header{}})
			rcancel()
			if err != nil && ctx.Err() == nil {
				log.Warn("credits refresh failed", zap.String("vendor", c.Name()), zap.Error(err))
			} else if err == nil && out.Envelope.Status != "ok" {
				log.Warn("credits refresh answered", zap.String("vendor", c.Name()),
					zap.String("status", string(out.Envelope.Status)), zap.Int("upstream_status", out.StatusCode))
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}
