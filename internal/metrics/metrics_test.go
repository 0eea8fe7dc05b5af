package metrics

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// driveAll calls every method once for vendor, so that every family has a series.
func driveAll(m *Metrics, vendor string) {
	m.Inflight(vendor, 1)
	m.Request(vendor, "email.find", "ok", "found", 120*time.Millisecond)
	m.Attempt(vendor, AttemptCode(200), 100*time.Millisecond)
	m.Attempt(vendor, "timeout", 2*time.Second)
	m.Retry(vendor, ReasonTimeout)
	m.RetryBudgetExhausted(vendor)
	m.CircuitTransition(vendor, "open")
	m.RateLimitWait(vendor, 50*time.Millisecond)
	m.RateLimitRejected(vendor)
	m.Cooldown(vendor)
	m.CacheHit(vendor)
	m.Coalesced(vendor)
	m.Poll(vendor)
	m.CreditsRemaining(vendor, 1234)
	m.RedisFallback(true)
	m.Inflight(vendor, -1)
}

// TestLint: every family the package registers passes the Prometheus naming and help lint
// (the same checks as `promtool check metrics`).
func TestLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "v1.2.3")
	RegisterCircuitState(reg, map[string]StateFunc{"enrow": func() float64 { return 0 }})
	driveAll(m, "enrow")

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// Every SPEC 9 family is there once every method has run.
	want := []string{"requests_total", "request_duration_seconds", "upstream_attempts_total",
		"upstream_attempt_duration_seconds", "retries_total", "retry_budget_exhausted_total", "circuit_state",
		"circuit_transitions_total", "ratelimit_wait_seconds", "ratelimit_rejected_total", "cooldowns_total",
		"cache_hits_total", "coalesced_total", "polls_total", "inflight_requests", "credits_remaining",
		"redis_fallback", "build_info"}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range families {
		got[f.GetName()] = true
	}
	for _, name := range want {
		if !got["enrichproxy_"+name] {
			t.Errorf("family enrichproxy_%s is not exported", name)
		}
	}
	if len(families) != len(want) {
		t.Errorf("got %d families, want the %d of SPEC 9", len(families), len(want))
	}
}

// TestCompareFamilies compares whole families after a few calls.
func TestCompareFamilies(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "v1.2.3")
	m.InitVendor("enrow")
	m.Inflight("enrow", 1)
	m.Request("enrow", "email.find", "ok", "found", 100*time.Millisecond)
	m.Request("enrow", "email.find", "pending", "pending", 100*time.Millisecond)
	m.Request("", "other", "not_found", "", time.Millisecond)
	m.Attempt("enrow", AttemptCode(503), 10*time.Millisecond)
	m.Attempt("enrow", AttemptCode(200), 10*time.Millisecond)
	m.Retry("enrow", ReasonStatus5xx)
	m.CircuitTransition("enrow", "open")
	m.CircuitTransition("enrow", "half_open")

	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP enrichproxy_requests_total Proxied requests by vendor, operation, envelope status and qualification.
# TYPE enrichproxy_requests_total counter
enrichproxy_requests_total{operation="other",qualification="",status="not_found",vendor=""} 1
enrichproxy_requests_total{operation="email.find",qualification="found",status="ok",vendor="enrow"} 1
enrichproxy_requests_total{operation="email.find",qualification="pending",status="pending",vendor="enrow"} 1
# HELP enrichproxy_upstream_attempts_total Vendor calls by HTTP code, or transport / timeout.
# TYPE enrichproxy_upstream_attempts_total counter
enrichproxy_upstream_attempts_total{code="200",vendor="enrow"} 1
enrichproxy_upstream_attempts_total{code="503",vendor="enrow"} 1
# HELP enrichproxy_retries_total Retries of vendor calls by reason.
# TYPE enrichproxy_retries_total counter
enrichproxy_retries_total{reason="rate_limited",vendor="enrow"} 0
enrichproxy_retries_total{reason="status_5xx",vendor="enrow"} 1
enrichproxy_retries_total{reason="timeout",vendor="enrow"} 0
enrichproxy_retries_total{reason="transport",vendor="enrow"} 0
# HELP enrichproxy_circuit_transitions_total Circuit breaker state changes by target state.
# TYPE enrichproxy_circuit_transitions_total counter
enrichproxy_circuit_transitions_total{to="closed",vendor="enrow"} 0
enrichproxy_circuit_transitions_total{to="half_open",vendor="enrow"} 1
enrichproxy_circuit_transitions_total{to="open",vendor="enrow"} 1
# HELP enrichproxy_build_info Build information; always 1.
# TYPE enrichproxy_build_info gauge
enrichproxy_build_info{goversion="`+runtime.Version()+`",version="v1.2.3"} 1
`), "enrichproxy_requests_total", "enrichproxy_upstream_attempts_total", "enrichproxy_retries_total",
		"enrichproxy_circuit_transitions_total", "enrichproxy_build_info")
	if err != nil {
		t.Error(err)
	}
	// Histograms: only the count is stable.
	if got := testutil.CollectAndCount(m.requestDuration, "enrichproxy_request_duration_seconds"); got != 3 {
		t.Errorf("got %d request_duration series, want 3 (one per vendor, operation, status)", got)
	}
}

// TestVendorSeriesStartAtZero: InitVendor exports a vendor's bounded series at 0, so a
// counter's first increment is seen by rate() and increase(); credits_remaining is not
// invented (0 would read as "out of credits").
func TestVendorSeriesStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "dev")
	m.InitVendor("ecore")
	m.Inflight("ecore", 1)

	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP enrichproxy_cache_hits_total Answers served from the result cache.
# TYPE enrichproxy_cache_hits_total counter
enrichproxy_cache_hits_total{vendor="ecore"} 0
# HELP enrichproxy_coalesced_total Requests answered by sharing an identical in-flight vendor call.
# TYPE enrichproxy_coalesced_total counter
enrichproxy_coalesced_total{vendor="ecore"} 0
# HELP enrichproxy_cooldowns_total Cool-downs started by a vendor 429.
# TYPE enrichproxy_cooldowns_total counter
enrichproxy_cooldowns_total{vendor="ecore"} 0
# HELP enrichproxy_inflight_requests Requests being served.
# TYPE enrichproxy_inflight_requests gauge
enrichproxy_inflight_requests{vendor="ecore"} 1
# HELP enrichproxy_polls_total Result polls made for Prefer: wait.
# TYPE enrichproxy_polls_total counter
enrichproxy_polls_total{vendor="ecore"} 0
# HELP enrichproxy_ratelimit_rejected_total Requests answered rate_limited by the proxy without a vendor call.
# TYPE enrichproxy_ratelimit_rejected_total counter
enrichproxy_ratelimit_rejected_total{vendor="ecore"} 0
# HELP enrichproxy_redis_fallback 1 while in-process limits stand in for an unreachable Redis.
# TYPE enrichproxy_redis_fallback gauge
enrichproxy_redis_fallback 0
# HELP enrichproxy_retry_budget_exhausted_total Retries not made because the vendor's retry budget was spent.
# TYPE enrichproxy_retry_budget_exhausted_total counter
enrichproxy_retry_budget_exhausted_total{vendor="ecore"} 0
`), "enrichproxy_cache_hits_total", "enrichproxy_coalesced_total", "enrichproxy_cooldowns_total",
		"enrichproxy_inflight_requests", "enrichproxy_polls_total", "enrichproxy_ratelimit_rejected_total",
		"enrichproxy_redis_fallback", "enrichproxy_retry_budget_exhausted_total", "enrichproxy_credits_remaining")
	if err != nil {
		t.Error(err)
	}
	for _, name := range []string{"enrichproxy_upstream_attempt_duration_seconds", "enrichproxy_ratelimit_wait_seconds"} {
		if got, err := testutil.GatherAndCount(reg, name); err != nil || got != 1 {
			t.Errorf("got %d %s series (err %v), want 1 at zero", got, name, err)
		}
	}
	if got, _ := testutil.GatherAndCount(reg, "enrichproxy_credits_remaining"); got != 0 {
		t.Errorf("got %d credits_remaining series before any vendor said its credits, want 0", got)
	}

	// Initialising again (a second request) changes nothing.
	m.Inflight("ecore", -1)
	m.Cooldown("ecore")
	m.Inflight("ecore", 1)
	if got := testutil.ToFloat64(m.cooldowns.WithLabelValues("ecore")); got != 1 {
		t.Errorf("got cooldowns_total %v after a later request, want 1", got)
	}
}

// TestGaugesSetAndClear: credits, Redis fallback and in-flight follow their last call.
func TestGaugesSetAndClear(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "dev")
	m.CreditsRemaining("ecore", 42.5)
	m.CreditsRemaining("ecore", 41.5)
	m.RedisFallback(true)
	m.RedisFallback(false)
	m.Inflight("ecore", 1)
	m.Inflight("ecore", 1)
	m.Inflight("ecore", -1)

	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP enrichproxy_credits_remaining Vendor credits left, as last reported by the vendor.
# TYPE enrichproxy_credits_remaining gauge
enrichproxy_credits_remaining{vendor="ecore"} 41.5
# HELP enrichproxy_inflight_requests Requests being served.
# TYPE enrichproxy_inflight_requests gauge
enrichproxy_inflight_requests{vendor="ecore"} 1
# HELP enrichproxy_redis_fallback 1 while in-process limits stand in for an unreachable Redis.
# TYPE enrichproxy_redis_fallback gauge
enrichproxy_redis_fallback 0
`), "enrichproxy_credits_remaining", "enrichproxy_inflight_requests", "enrichproxy_redis_fallback")
	if err != nil {
		t.Error(err)
	}
}

// TestCircuitStateReadAtScrape: the gauge reads the breaker at every gather, with no call
// in between.
func TestCircuitStateReadAtScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	var enrow, ecore atomic.Int64
	RegisterCircuitState(reg, map[string]StateFunc{
		"enrow": func() float64 { return float64(enrow.Load()) },
		"ecore": func() float64 { return float64(ecore.Load()) },
	})
	want := func(e, c string) string {
		return `
# HELP enrichproxy_circuit_state Circuit breaker state: 0 closed, 1 half-open, 2 open.
# TYPE enrichproxy_circuit_state gauge
enrichproxy_circuit_state{vendor="ecore"} ` + c + `
enrichproxy_circuit_state{vendor="enrow"} ` + e + `
`
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want("0", "0"))); err != nil {
		t.Error(err)
	}
	enrow.Store(2)
	ecore.Store(1)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want("2", "1"))); err != nil {
		t.Error(err)
	}
}

// TestHistogramBuckets: a 7 s request lands in the 10 s bucket, not +Inf: the buckets
// reach the longest waits (Prefer: wait, 429 cool-downs) the dashboard shows.
func TestHistogramBuckets(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "dev")
	m.Request("enrow", "email.find", "ok", "found", 7*time.Second)
	m.RateLimitWait("enrow", 45*time.Second)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		switch f.GetName() {
		case "enrichproxy_request_duration_seconds":
			h := f.GetMetric()[0].GetHistogram()
			for _, b := range h.GetBucket() {
				if b.GetUpperBound() == 5 && b.GetCumulativeCount() != 0 || b.GetUpperBound() == 10 && b.GetCumulativeCount() != 1 {
					t.Errorf("bucket le=%v holds %d, want the 7 s request in le=10 first", b.GetUpperBound(), b.GetCumulativeCount())
				}
			}
		case "enrichproxy_ratelimit_wait_seconds":
			h := f.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != 1 || h.GetSampleSum() != 45 {
				t.Errorf("got count %d sum %v, want 1 and 45", h.GetSampleCount(), h.GetSampleSum())
			}
		}
	}
}
