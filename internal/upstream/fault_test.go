package upstream

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

// load is what came of a batch of requests.
type load struct {
	requests, ok, circuitOpen, otherErrors int
	elapsed                                time.Duration
}

// runLoad sends n requests through c with the given concurrency.
func runLoad(t *testing.T, c *Client, n, concurrency int) load {
	t.Helper()
	var ok, open, other atomic.Int64
	next := make(chan struct{})
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for range next {
				out, err := c.Do(t.Context(), get("/account/info"))
				switch {
				case err == nil && out.Envelope.Status == normalize.StatusOK:
					ok.Add(1)
				case err != nil && isCircuitOpen(err):
					open.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	for range n {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	return load{requests: n, ok: int(ok.Load()), circuitOpen: int(open.Load()), otherErrors: int(other.Load()),
		elapsed: time.Since(start)}
}

func isCircuitOpen(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Code == normalize.CodeCircuitOpen
}

// TestFaultInjection is a bounded chaos run against a loopback vendor (docs/reliability.md):
// first a vendor that answers 503 to 30 % of calls at random, where retries must bring
// client success to 97 % or more at no more than 1.5 vendor calls per request; then the
// vendor hard down, where the breaker must stop the calls.
func TestFaultInjection(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection sends thousands of requests")
	}
	const (
		requests    = 3000
		concurrency = 16
		failRate    = 0.3
	)
	var (
		down       atomic.Bool
		c          *Client
		mu         sync.Mutex
		rng        = rand.New(rand.NewPCG(2026, 1121))
		whileOpen  atomic.Int64 // calls that arrived while the breaker was not closed
		downCalls  atomic.Int64
		flakyCalls atomic.Int64
	)
	v := newVendorFunc(t, func(call, int) answer {
		if down.Load() {
			downCalls.Add(1)
			if c.CircuitState() != 0 {
				whileOpen.Add(1)
			}
			return answer{status: 503, body: generic500}
		}
		flakyCalls.Add(1)
		mu.Lock()
		fail := rng.Float64() < failRate
		mu.Unlock()
		if fail {
			return answer{status: 503, body: generic500}
		}
		return answer{status: 200, body: accountOK}
	})
	// With 30 % of calls failing, 4 attempts leave 0.3⁴ ≈ 0.8 % of requests failed, for
	// 1 + 0.3 + 0.09 + 0.027 ≈ 1.42 calls per request; the budget must allow those 0.42
	// retries per request. The breaker keeps the SPEC's ratio rule, but not its
	// 5-consecutive-failures rule: at a 30 % failure rate, 5 failures in a row come about
	// every 400 attempts, and that rule alone trips the breaker within the first second of
	// this run (docs/reliability.md). 20 in a row (0.3²⁰) does not happen by chance here.
	pol := testPolicy(v.URL())
	pol.MaxAttempts = 4
	pol.BackoffBase, pol.BackoffCap = time.Millisecond, 10*time.Millisecond
	pol.RetryBudget = BudgetPolicy{Ratio: 0.5, MinPerSecond: 10, Window: 10 * time.Second}
	pol.Breaker = BreakerPolicy{ConsecutiveFailures: 20, FailureRatio: 0.5, MinRequests: 100,
		Interval: 10 * time.Second, OpenTimeout: 300 * time.Millisecond, HalfOpenRequests: 3}
	c, reg := newClient(t, Config{Policy: pol})

	// Phase 1: 30 % of calls fail.
	flaky := runLoad(t, c, requests, concurrency)
	success := float64(flaky.ok) / float64(flaky.requests)
	perRequest := float64(flakyCalls.Load()) / float64(flaky.requests)
	t.Logf("flaky vendor (%.0f %% 503): %d requests, concurrency %d, %v: success %.2f %% (%d ok, %d circuit_open, %d other), "+
		"vendor calls %d (%.3f per request), retries %v, budget exhausted %v, breaker trips %v",
		failRate*100, flaky.requests, concurrency, flaky.elapsed.Round(time.Millisecond), success*100,
		flaky.ok, flaky.circuitOpen, flaky.otherErrors, flakyCalls.Load(), perRequest,
		metricValue(t, reg, "retries_total"), metricValue(t, reg, "retry_budget_exhausted_total"),
		metricValue(t, reg, "circuit_transitions_total", "to", "open"))
	if success < 0.97 {
		t.Errorf("got client success %.2f %%, want at least 97 %%", success*100)
	}
	if perRequest > 1.5 {
		t.Errorf("got %.3f vendor calls per request, want at most 1.5", perRequest)
	}

	// Phase 2: the vendor is hard down. The breaker opens after consecutive_failures and
	// the calls stop; only attempts already admitted (at most one per worker) still arrive.
	down.Store(true)
	hard := runLoad(t, c, 1000, concurrency)
	t.Logf("vendor down: %d requests, %v: %d circuit_open, %d vendor errors; vendor calls %d, of which %d arrived after the breaker opened",
		hard.requests, hard.elapsed.Round(time.Millisecond), hard.circuitOpen, hard.ok+hard.otherErrors,
		downCalls.Load(), whileOpen.Load())
	if got := c.CircuitState(); got == 0 {
		t.Fatalf("got circuit state %v with the vendor down, want open or half-open", got)
	}
	if got, limit := whileOpen.Load(), int64(concurrency)+int64(pol.Breaker.HalfOpenRequests); got > limit {
		t.Errorf("got %d vendor calls after the breaker opened, want at most %d", got, limit)
	}
	if hard.circuitOpen < hard.requests*9/10 {
		t.Errorf("got %d of %d requests answered circuit_open, want nearly all", hard.circuitOpen, hard.requests)
	}

	// Phase 3: after open_timeout only the half-open probes reach the vendor, and they
	// re-open it.
	waitState(t, c, 1, 5*time.Second)
	before := downCalls.Load()
	probe := runLoad(t, c, 200, concurrency)
	probes := downCalls.Load() - before
	t.Logf("half-open, vendor still down: %d requests, %d vendor calls (half_open_requests %d), %d circuit_open",
		probe.requests, probes, pol.Breaker.HalfOpenRequests, probe.circuitOpen)
	if probes < 1 || probes > int64(pol.Breaker.HalfOpenRequests) {
		t.Errorf("got %d vendor calls while half-open, want 1 to %d", probes, pol.Breaker.HalfOpenRequests)
	}
	if got := c.CircuitState(); got != 2 {
		t.Errorf("got circuit state %v after failed probes, want 2 (open)", got)
	}
}
