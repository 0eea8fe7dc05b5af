// Package metrics owns every Prometheus collector of the proxy, registered on a registry
// passed in (never the global default one), behind intent-named methods.
//
// Label values are bounded: vendor, operation, status, qualification, HTTP code classes
// and fixed reasons. Nothing here ever takes a path, an id, an email or a credential.
package metrics

import (
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

const ns = "enrichproxy"

// Retry reasons, the values of the `reason` label of enrichproxy_retries_total.
const (
	ReasonStatus5xx   = "status_5xx"
	ReasonRateLimited = "rate_limited"
	ReasonTransport   = "transport"
	ReasonTimeout     = "timeout"
)

// Metrics holds the proxy's collectors.
type Metrics struct {
	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	attempts         *prometheus.CounterVec
	attemptDuration  *prometheus.HistogramVec
	retries          *prometheus.CounterVec
	budgetExhausted  *prometheus.CounterVec
	transitions      *prometheus.CounterVec
	rateLimitWait    *prometheus.HistogramVec
	rateLimitReject  *prometheus.CounterVec
	cooldowns        *prometheus.CounterVec
	cacheHits        *prometheus.CounterVec
	coalesced        *prometheus.CounterVec
	polls            *prometheus.CounterVec
	inflight         *prometheus.GaugeVec
	creditsRemaining *prometheus.GaugeVec
	redisFallback    prometheus.Gauge
}

// Latency buckets in seconds: vendors answer in hundreds of milliseconds, waits may take
// tens of seconds.
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// New registers every collector on reg. version is reported by enrichproxy_build_info.
func New(reg prometheus.Registerer, version string) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "requests_total",
			Help: "Proxied requests by vendor, operation, envelope status and qualification."},
			[]string{"vendor", "operation", "status", "qualification"}),
		requestDuration: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "request_duration_seconds",
			Help: "Time from request to answer, retries and waits included.", Buckets: durationBuckets},
			[]string{"vendor", "operation", "status"}),
		attempts: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "upstream_attempts_total",
			Help: "Vendor calls by HTTP code, or transport / timeout."}, []string{"vendor", "code"}),
		attemptDuration: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "upstream_attempt_duration_seconds",
			Help: "Duration of one vendor call.", Buckets: durationBuckets}, []string{"vendor"}),
		retries: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "retries_total",
			Help: "Retries of vendor calls by reason."}, []string{"vendor", "reason"}),
		budgetExhausted: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "retry_budget_exhausted_total",
			Help: "Retries not made because the vendor's retry budget was spent."}, []string{"vendor"}),
		transitions: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "circuit_transitions_total",
			Help: "Circuit breaker state changes by target state."}, []string{"vendor", "to"}),
		rateLimitWait: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "ratelimit_wait_seconds",
			Help: "Time requests waited for the rate limiter or a cool-down.", Buckets: durationBuckets}, []string{"vendor"}),
		rateLimitReject: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "ratelimit_rejected_total",
			Help: "Requests answered rate_limited by the proxy without a vendor call."}, []string{"vendor"}),
		cooldowns: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "cooldowns_total",
			Help: "Cool-downs started by a vendor 429."}, []string{"vendor"}),
		cacheHits: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "cache_hits_total",
			Help: "Answers served from the result cache."}, []string{"vendor"}),
		coalesced: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "coalesced_total",
			Help: "Requests answered by sharing an identical in-flight vendor call."}, []string{"vendor"}),
		polls: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "polls_total",
			Help: "Result polls made for Prefer: wait."}, []string{"vendor"}),
		inflight: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "inflight_requests",
			Help: "Requests being served."}, []string{"vendor"}),
		creditsRemaining: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "credits_remaining",
			Help: "Vendor credits left, as last reported by the vendor."}, []string{"vendor"}),
		redisFallback: f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "redis_fallback",
			Help: "1 while in-process limits stand in for an unreachable Redis."}),
	}
	f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "build_info", Help: "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}}).Set(1)
	return m
}

// Request records one answered request.
func (m *Metrics) Request(vendor, operation, status, qualification string, d time.Duration) {
	m.requests.WithLabelValues(vendor, operation, status, qualification).Inc()
	m.requestDuration.WithLabelValues(vendor, operation, status).Observe(d.Seconds())
}

// Attempt records one vendor call. code is the HTTP status, or "transport" / "timeout".
func (m *Metrics) Attempt(vendor, code string, d time.Duration) {
	m.attempts.WithLabelValues(vendor, code).Inc()
	m.attemptDuration.WithLabelValues(vendor).Observe(d.Seconds())
}

// AttemptCode is the `code` label value for an HTTP status.
func AttemptCode(status int) string { return strconv.Itoa(status) }

// Retry records a retry decided for reason (one of the Reason constants).
func (m *Metrics) Retry(vendor, reason string) { m.retries.WithLabelValues(vendor, reason).Inc() }

// RetryBudgetExhausted records a retry not made because the budget was spent.
func (m *Metrics) RetryBudgetExhausted(vendor string) {
	m.budgetExhausted.WithLabelValues(vendor).Inc()
}

// CircuitTransition records a breaker change to state to (closed, half_open, open).
func (m *Metrics) CircuitTransition(vendor, to string) {
	m.transitions.WithLabelValues(vendor, to).Inc()
}

// RateLimitWait records the time a request waited for the limiter or a cool-down.
func (m *Metrics) RateLimitWait(vendor string, d time.Duration) {
	m.rateLimitWait.WithLabelValues(vendor).Observe(d.Seconds())
}

// RateLimitRejected records a request answered rate_limited by the proxy itself.
func (m *Metrics) RateLimitRejected(vendor string) { m.rateLimitReject.WithLabelValues(vendor).Inc() }

// Cooldown records a cool-down started by a vendor 429.
func (m *Metrics) Cooldown(vendor string) { m.cooldowns.WithLabelValues(vendor).Inc() }

// CacheHit records an answer served from the cache.
func (m *Metrics) CacheHit(vendor string) { m.cacheHits.WithLabelValues(vendor).Inc() }

// Coalesced records a request that shared another's vendor call.
func (m *Metrics) Coalesced(vendor string) { m.coalesced.WithLabelValues(vendor).Inc() }

// Poll records a result poll made for Prefer: wait.
func (m *Metrics) Poll(vendor string) { m.polls.WithLabelValues(vendor).Inc() }

// Inflight adds delta to the vendor's in-flight gauge.
func (m *Metrics) Inflight(vendor string, delta float64) {
	m.inflight.WithLabelValues(vendor).Add(delta)
}

// InitVendor creates the vendor's series of every bounded label set at zero, so that
// they are exported before their first event: rate() and increase() see a counter's
// first increment only when the series existed before it, and dashboards show 0 rather
// than "no data". Labels with open sets (operation × status, HTTP codes) and
// credits_remaining (a 0 would read as "out of credits") are left to their first event.
func (m *Metrics) InitVendor(vendor string) {
	for _, reason := range []string{ReasonStatus5xx, ReasonRateLimited, ReasonTransport, ReasonTimeout} {
		m.retries.WithLabelValues(vendor, reason)
	}
	for _, to := range []string{"closed", "half_open", "open"} {
		m.transitions.WithLabelValues(vendor, to)
	}
	for _, c := range []*prometheus.CounterVec{m.budgetExhausted, m.rateLimitReject, m.cooldowns,
		m.cacheHits, m.coalesced, m.polls} {
		c.WithLabelValues(vendor)
	}
	m.attemptDuration.WithLabelValues(vendor)
	m.rateLimitWait.WithLabelValues(vendor)
	m.inflight.WithLabelValues(vendor)
}

// CreditsRemaining sets the vendor's remaining credits.
func (m *Metrics) CreditsRemaining(vendor string, v float64) {
	m.creditsRemaining.WithLabelValues(vendor).Set(v)
}

// RedisFallback sets whether in-process limits stand in for Redis.
func (m *Metrics) RedisFallback(on bool) {
	if on {
		m.redisFallback.Set(1)
	} else {
		m.redisFallback.Set(0)
	}
}

// StateFunc reports a circuit state: 0 closed, 1 half-open, 2 open.
type StateFunc func() float64

// RegisterCircuitState registers enrichproxy_circuit_state, read at scrape time from
// states (vendor → reader), so the gauge never goes stale between calls.
func RegisterCircuitState(reg prometheus.Registerer, states map[string]StateFunc) {
	for vendor, read := range states {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "circuit_state",
			Help:        "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
			ConstLabels: prometheus.Labels{"vendor": vendor}}, read))
	}
}
