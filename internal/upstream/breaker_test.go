package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/enrichproxy/enrichproxy/internal/metrics"
	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

// breakerPolicy is testPolicy with one attempt per request, so that requests and breaker
// calls are one to one, and a breaker that trips on consecutive failures only.
func breakerPolicy(base string, consecutive uint32) Policy {
	p := testPolicy(base)
	p.MaxAttempts = 1
	p.Breaker = BreakerPolicy{ConsecutiveFailures: consecutive, Interval: 10 * time.Second,
		OpenTimeout: 200 * time.Millisecond, HalfOpenRequests: 2}
	return p
}

// TestBreakerLifecycle walks the breaker through its states: it opens after
// consecutive_failures 5xx, then fails fast without calling the vendor; it half-opens after
// open_timeout on its own (the state gauge is not stale); a failed probe re-opens it; while
// probes are out, other requests are refused for 1 s; successful probes close it.
func TestBreakerLifecycle(t *testing.T) {
	var failing, gated atomic.Bool
	// While gated, calls announce themselves on probing and wait for gate to close.
	probing, gate := make(chan struct{}, 8), make(chan struct{})
	v := newVendorFunc(t, func(call, int) answer {
		if gated.Load() {
			probing <- struct{}{}
			<-gate
		}
		if failing.Load() {
			return answer{status: 500, body: generic500}
		}
		return answer{status: 200, body: accountOK}
	})
	// Let held calls go whatever happens, before the server's Close waits for them.
	openGate := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(openGate)
	pol := breakerPolicy(v.URL(), 3)
	c, reg := newClient(t, Config{Policy: pol})
	metrics.RegisterCircuitState(reg, map[string]metrics.StateFunc{"enrow": c.CircuitState})
	transitions := func(to string) float64 {
		t.Helper()
		return metricValue(t, reg, "circuit_transitions_total", "to", to)
	}

	failing.Store(true)
	for i := 1; i <= 3; i++ {
		if got := c.CircuitState(); got != 0 {
			t.Fatalf("before failure %d: got state %v, want 0 (closed)", i, got)
		}
		out, err := c.Do(t.Context(), get("/account/info"))
		wantEnvelope(t, out, err, normalize.StatusUpstreamError, normalize.CodeVendorError)
	}
	if got := c.CircuitState(); got != 2 {
		t.Fatalf("after 3 failures: got state %v, want 2 (open)", got)
	}
	if got := transitions("open"); got != 1 {
		t.Errorf("got circuit_transitions_total{to=open} %v, want 1", got)
	}

	// Open: fails fast, the vendor is not called, RetryAfter is the time to half-open.
	out, err := c.Do(t.Context(), get("/account/info"))
	e := wantError(t, err, normalize.StatusUnavailable, normalize.CodeCircuitOpen)
	if !errors.Is(err, ErrCircuitOpen) {
		t.Errorf("got %v, want it to wrap ErrCircuitOpen", err)
	}
	if e.RetryAfter <= 0 || e.RetryAfter > pol.Breaker.OpenTimeout {
		t.Errorf("got RetryAfter %v, want in (0, %v]", e.RetryAfter, pol.Breaker.OpenTimeout)
	}
	if out.Attempts != 0 || v.count() != 3 {
		t.Errorf("got %d attempts and %d vendor calls, want 0 and 3", out.Attempts, v.count())
	}

	// Half-open after open_timeout, seen by the gauge without any call.
	waitState(t, c, 1, 5*time.Second)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP enrichproxy_circuit_state Circuit breaker state: 0 closed, 1 half-open, 2 open.
# TYPE enrichproxy_circuit_state gauge
enrichproxy_circuit_state{vendor="enrow"} 1
`), "enrichproxy_circuit_state"); err != nil {
		t.Error(err)
	}
	if v.count() != 3 {
		t.Errorf("got %d vendor calls, want 3: half-opening calls nobody", v.count())
	}

	// A failed probe re-opens it.
	out, err = c.Do(t.Context(), get("/account/info"))
	wantEnvelope(t, out, err, normalize.StatusUpstreamError, normalize.CodeVendorError)
	if got := c.CircuitState(); got != 2 {
		t.Fatalf("after a failed probe: got state %v, want 2 (open)", got)
	}
	if got := transitions("open"); got != 2 {
		t.Errorf("got circuit_transitions_total{to=open} %v, want 2", got)
	}

	// Half-open again; two probes go through and are held at the vendor.
	waitState(t, c, 1, 5*time.Second)
	failing.Store(false)
	gated.Store(true)
	results := make(chan error, 2)
	for i := range 2 {
		go func() {
			// Distinct queries: identical concurrent GETs would share one call.
			out, err := c.Do(t.Context(), get(fmt.Sprintf("/account/info?probe=%d", i)))
			if err == nil && out.Envelope.Status != normalize.StatusOK {
				err = errors.New("probe answered " + string(out.Envelope.Status))
			}
			results <- err
		}()
	}
	for range 2 {
		select {
		case <-probing:
		case <-time.After(5 * time.Second):
			t.Fatal("the probes did not reach the vendor")
		}
	}
	// Beyond the probes: refused with a 1 s wait (SPEC 11).
	_, err = c.Do(t.Context(), get("/account/info"))
	e = wantError(t, err, normalize.StatusUnavailable, normalize.CodeCircuitOpen)
	if e.RetryAfter != time.Second {
		t.Errorf("got RetryAfter %v while probes are out, want 1s", e.RetryAfter)
	}
	gated.Store(false)
	openGate()
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("probe: %v", err)
		}
	}
	if got := c.CircuitState(); got != 0 {
		t.Errorf("after 2 successful probes: got state %v, want 0 (closed)", got)
	}
	if got := transitions("closed"); got != 1 {
		t.Errorf("got circuit_transitions_total{to=closed} %v, want 1", got)
	}
	if got := transitions("half_open"); got != 2 {
		t.Errorf("got circuit_transitions_total{to=half_open} %v, want 2", got)
	}
}

// TestBreakerNotTripped checks what never counts as a failure: 4xx, 429, Enrow's
// not-found 500, and requests the client abandons mid-attempt. The 503 row shows the
// same run does trip on vendor failures.
func TestBreakerNotTripped(t *testing.T) {
	const threshold = 2
	tests := []struct {
		name     string
		req      *Request
		answer   answer
		cancel   bool // cancel the request once it reaches the vendor
		expired  bool // the request's deadline has passed when it arrives
		wantOpen bool
	}{
		{name: "400", req: post("/email/find/single", `{}`), answer: answer{status: 400, body: `{"message":"fullname is required"}`}},
		{name: "401", req: get("/account/info"), answer: answer{status: 401, body: `{"message":"Invalid API key"}`}},
		{name: "402", req: post("/email/find/single", `{}`), answer: answer{status: 402, body: `{"message":"Insufficient balance"}`}},
		{name: "404", req: get("/email/find/bulk?id=b"), answer: answer{status: 404, body: `{"message":"Bulk search not found"}`}},
		{name: "429", req: get("/account/info"), answer: answer{status: 429, header: map[string]string{"Retry-After": "0"}, body: `{"message":"Too Many Requests"}`}},
		{name: "Enrow not-found 500", req: get("/email/find/single?id=x"), answer: answer{status: 500, body: enrowNotFound}},
		{name: "client cancels mid-attempt", req: get("/account/info"), answer: answer{hang: true}, cancel: true},
		{name: "deadline already past on arrival", req: get("/account/info"), answer: answer{status: 200, body: accountOK}, expired: true},
		{name: "503 trips it", req: get("/account/info"), answer: answer{status: 503, body: generic500}, wantOpen: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVendor(t, tc.answer)
			c, reg := newClient(t, Config{Policy: breakerPolicy(v.URL(), threshold)})

			for i := range 2 * threshold {
				ctx, cancel := context.WithCancel(t.Context())
				if tc.cancel {
					go func() {
						select {
						case <-v.arrived:
							cancel()
						case <-ctx.Done():
						}
					}()
				}
				if tc.expired {
					ctx, cancel = context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
				}
				_, err := c.Do(ctx, tc.req)
				cancel()
				if tc.cancel && !errors.Is(err, context.Canceled) {
					t.Fatalf("request %d: got error %v, want context.Canceled", i+1, err)
				}
				if tc.expired {
					wantError(t, err, normalize.StatusTimeout, normalize.CodeDeadlineExceeded)
					if v.count() != 0 {
						t.Fatalf("got %d vendor calls, want none for an expired request", v.count())
					}
				}
				if c.CircuitState() == 2 {
					break
				}
			}

			gotOpen := c.CircuitState() == 2
			if gotOpen != tc.wantOpen {
				t.Errorf("got breaker open %v after %d answers, want %v", gotOpen, 2*threshold, tc.wantOpen)
			}
			if got, want := metricValue(t, reg, "circuit_transitions_total", "to", "open"), map[bool]float64{true: 1}[tc.wantOpen]; got != want {
				t.Errorf("got circuit_transitions_total{to=open} %v, want %v", got, want)
			}
		})
	}
}

// TestBreakerFailureRatio checks the ratio rule: at least failure_ratio failures over at
// least min_requests attempts trips the breaker even when failures are never consecutive.
func TestBreakerFailureRatio(t *testing.T) {
	tests := []struct {
		name    string
		pattern string // one request per letter: S a 200, F a 500
		wantAt  int    // the request after which the breaker is open; 0: never
	}{
		{name: "half of 6 attempts failed", pattern: "SFSFSF", wantAt: 6},
		{name: "half failed but under min_requests", pattern: "FSFSF", wantAt: 0},
		{name: "under half of 8 attempts failed", pattern: "SSFSFSFS", wantAt: 0},
		{name: "half of 8 attempts failed", pattern: "SSFSFSFF", wantAt: 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVendorFunc(t, func(_ call, n int) answer {
				if tc.pattern[n-1] == 'F' {
					return answer{status: 500, body: generic500}
				}
				return answer{status: 200, body: accountOK}
			})
			pol := breakerPolicy(v.URL(), 3)
			pol.Breaker.FailureRatio, pol.Breaker.MinRequests = 0.5, 6
			c, _ := newClient(t, Config{Policy: pol})

			gotAt := 0
			for i := range tc.pattern {
				if _, err := c.Do(t.Context(), get("/account/info")); err != nil {
					t.Fatalf("request %d: %v", i+1, err)
				}
				if c.CircuitState() == 2 {
					gotAt = i + 1
					break
				}
			}
			if gotAt != tc.wantAt {
				t.Errorf("got the breaker open after request %d, want %d (0: never)", gotAt, tc.wantAt)
			}
		})
	}
}

// TestBreakerOpensDuringRetries checks a request whose own failures open the breaker: the
// retry is not made, and the request ends with the vendor's last answer, not circuit_open
// (which says the vendor was not called).
func TestBreakerOpensDuringRetries(t *testing.T) {
	v := newVendor(t, answer{status: 503, body: generic500})
	pol := breakerPolicy(v.URL(), 2)
	pol.MaxAttempts = 3
	c, _ := newClient(t, Config{Policy: pol})

	out, err := c.Do(t.Context(), get("/account/info"))
	wantEnvelope(t, out, err, normalize.StatusUpstreamError, normalize.CodeVendorError)
	if out.Attempts != 2 || v.count() != 2 {
		t.Errorf("got %d attempts and %d vendor calls, want 2 and 2", out.Attempts, v.count())
	}
	if out.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("got upstream status %d, want 503", out.StatusCode)
	}

	_, err = c.Do(t.Context(), get("/account/info"))
	wantError(t, err, normalize.StatusUnavailable, normalize.CodeCircuitOpen)
	if v.count() != 2 {
		t.Errorf("got %d vendor calls, want 2", v.count())
	}
}
