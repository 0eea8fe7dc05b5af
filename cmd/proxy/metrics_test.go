package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
	"github.com/enrichproxy/enrichproxy/internal/vendorsim"
)

// metricsEnv keeps background vendor calls out of the metric tests: the Enrow credits
// refresher (credits_refresh, 0 disables it) would add attempts and consume scripted
// answers.
func metricsEnv(kv ...string) func(*setup) {
	return withEnv(append([]string{"ENROW_CREDITS_REFRESH", "0", "ECORE_CREDITS_REFRESH", "0"}, kv...)...)
}

// scrape reads /metrics from the admin listener: the text and its parsed families.
func (h *harness) scrape() (string, map[string]*dto.MetricFamily) {
	h.t.Helper()
	raw := h.metricsText(h.t)
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(raw))
	if err != nil {
		h.t.Fatalf("scrape: %v", err)
	}
	return raw, families
}

// requestsCounted is the sum of enrichproxy_requests_total.
func requestsCounted(families map[string]*dto.MetricFamily) int {
	var n float64
	if f := families["enrichproxy_requests_total"]; f != nil {
		for _, m := range f.GetMetric() {
			n += m.GetCounter().GetValue()
		}
	}
	return int(n)
}

// waitCounted returns once n requests are counted in enrichproxy_requests_total. The
// access-log middleware counts a request after its handler returned, which a client can
// see the answer of first; every other metric of a request is recorded before that, so
// this is the event the tests wait on. It polls the scrape (no fixed sleep) up to a bound.
func (h *harness) waitCounted(n int) map[string]*dto.MetricFamily {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, families := h.scrape()
		got := requestsCounted(families)
		if got == n {
			return families
		}
		if got > n || time.Now().After(deadline) {
			h.t.Fatalf("got %d requests counted, want %d", got, n)
		}
		// Another scrape is the wait: no sleep, just the next round trip.
	}
}

// compare scrapes the admin listener and compares whole families with want, in the text
// format (HELP and TYPE included). Histograms are compared by their _count only, with
// histCounts.
func (h *harness) compare(want string, names []string) {
	h.t.Helper()
	if err := testutil.ScrapeAndCompare(h.adminURL+"/metrics", strings.NewReader(want), names...); err != nil {
		h.t.Error(err)
	}
}

// closeDefaultIdle closes the idle connections ScrapeAndCompare leaves in the default
// client, so that goleak sees none after the test.
func closeDefaultIdle(t *testing.T) { t.Cleanup(http.DefaultClient.CloseIdleConnections) }

// histCounts maps each series of histogram family name, its labels written as
// `k="v",…` in name order, to its sample count.
func histCounts(families map[string]*dto.MetricFamily, name string) map[string]uint64 {
	out := map[string]uint64{}
	f := families[name]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		out[labelString(m)] = m.GetHistogram().GetSampleCount()
	}
	return out
}

func labelString(m *dto.Metric) string {
	parts := make([]string, 0, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func wantCounts(t *testing.T, families map[string]*dto.MetricFamily, name string, want map[string]uint64) {
	t.Helper()
	got := histCounts(families, name)
	for k, v := range got {
		if v == 0 { // the idle vendor's histograms exist from start-up, empty
			delete(got, k)
		}
	}
	if !mapsEqual(got, want) {
		t.Errorf("%s counts:\ngot  %v\nwant %v", name, got, want)
	}
}

func mapsEqual(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// The HELP and TYPE lines of the families the tests compare, as the proxy exports them.
var familyHeads = map[string]string{
	"enrichproxy_requests_total": `# HELP enrichproxy_requests_total Proxied requests by vendor, operation, envelope status and qualification.
# TYPE enrichproxy_requests_total counter`,
	"enrichproxy_upstream_attempts_total": `# HELP enrichproxy_upstream_attempts_total Vendor calls by HTTP code, or transport / timeout.
# TYPE enrichproxy_upstream_attempts_total counter`,
	"enrichproxy_retries_total": `# HELP enrichproxy_retries_total Retries of vendor calls by reason.
# TYPE enrichproxy_retries_total counter`,
	"enrichproxy_retry_budget_exhausted_total": `# HELP enrichproxy_retry_budget_exhausted_total Retries not made because the vendor's retry budget was spent.
# TYPE enrichproxy_retry_budget_exhausted_total counter`,
	"enrichproxy_circuit_state": `# HELP enrichproxy_circuit_state Circuit breaker state: 0 closed, 1 half-open, 2 open.
# TYPE enrichproxy_circuit_state gauge`,
	"enrichproxy_circuit_transitions_total": `# HELP enrichproxy_circuit_transitions_total Circuit breaker state changes by target state.
# TYPE enrichproxy_circuit_transitions_total counter`,
	"enrichproxy_cooldowns_total": `# HELP enrichproxy_cooldowns_total Cool-downs started by a vendor 429.
# TYPE enrichproxy_cooldowns_total counter`,
	"enrichproxy_ratelimit_rejected_total": `# HELP enrichproxy_ratelimit_rejected_total Requests answered rate_limited by the proxy without a vendor call.
# TYPE enrichproxy_ratelimit_rejected_total counter`,
	"enrichproxy_cache_hits_total": `# HELP enrichproxy_cache_hits_total Answers served from the result cache.
# TYPE enrichproxy_cache_hits_total counter`,
	"enrichproxy_inflight_requests": `# HELP enrichproxy_inflight_requests Requests being served.
# TYPE enrichproxy_inflight_requests gauge`,
	"enrichproxy_credits_remaining": `# HELP enrichproxy_credits_remaining Vendor credits left, as last reported by the vendor.
# TYPE enrichproxy_credits_remaining gauge`,
	"enrichproxy_redis_fallback": `# HELP enrichproxy_redis_fallback 1 while in-process limits stand in for an unreachable Redis.
# TYPE enrichproxy_redis_fallback gauge`,
}

// expect builds the expected text of whole families: name, then its series lines (the
// part after the metric name, e.g. `{vendor="enrow"} 1`). It returns the text and the
// names to compare.
func expect(t *testing.T, spec ...any) (string, []string) {
	t.Helper()
	var b strings.Builder
	var names []string
	for _, s := range spec {
		switch s := s.(type) {
		case family:
			head, ok := familyHeads[s.name]
			if !ok {
				t.Fatalf("no HELP/TYPE for %s", s.name)
			}
			names = append(names, s.name)
			b.WriteString(head + "\n")
			for _, l := range withIdleVendor(s) {
				b.WriteString(s.name + l + "\n")
			}
		default:
			t.Fatalf("unexpected %T", s)
		}
	}
	return b.String(), names
}

type family struct {
	name   string
	series []string
}

func fam(name string, series ...string) family { return family{name: name, series: series} }

// withIdleVendor adds the zero series that run creates for eCore (metrics.InitVendor) to
// a per-vendor family whose expected series name only Enrow: these tests send eCore nothing.
func withIdleVendor(f family) []string {
	for _, l := range f.series {
		if strings.Contains(l, `vendor="ecore"`) {
			return f.series
		}
	}
	switch f.name {
	case "enrichproxy_retries_total":
		return append(slices.Clone(f.series), zeroRetries("ecore")...)
	case "enrichproxy_circuit_transitions_total":
		return append(slices.Clone(f.series), zeroTransitions("ecore")...)
	case "enrichproxy_retry_budget_exhausted_total", "enrichproxy_ratelimit_rejected_total", "enrichproxy_cooldowns_total",
		"enrichproxy_cache_hits_total", "enrichproxy_coalesced_total", "enrichproxy_polls_total", "enrichproxy_inflight_requests":
		return append(slices.Clone(f.series), `{vendor="ecore"} 0`)
	}
	return f.series
}

// The series every vendor gets at zero when run starts (metrics.InitVendor).
func zeroRetries(vendor string) []string {
	var s []string
	for _, r := range []string{"rate_limited", "status_5xx", "timeout", "transport"} {
		s = append(s, fmt.Sprintf(`{reason=%q,vendor=%q} 0`, r, vendor))
	}
	return s
}

func zeroTransitions(vendor string) []string {
	var s []string
	for _, to := range []string{"closed", "half_open", "open"} {
		s = append(s, fmt.Sprintf(`{to=%q,vendor=%q} 0`, to, vendor))
	}
	return s
}

// setSeries replaces the value of the series whose label part is labels.
func setSeries(series []string, labels, value string) []string {
	out := slices.Clone(series)
	for i, s := range out {
		if strings.HasPrefix(s, labels+" ") {
			out[i] = labels + " " + value
		}
	}
	return out
}

// TestMetricsSuccess: an Enrow search, started and then read, counts two requests of two
// vendor calls, no retry, and leaves nothing in flight.
func TestMetricsSuccess(t *testing.T) {
	h := start(t, metricsEnv())
	closeDefaultIdle(t)
	id := post(t, h, "/enrow/email/find/single", timCook)
	if a := h.do("GET", "/enrow/email/find/single?id="+id, ""); a.code != 200 || a.env.Qualification != normalize.QualFound {
		t.Fatalf("got %d %s/%s, want 200 ok/found", a.code, a.env.Status, a.env.Qualification)
	}
	fams := h.waitCounted(2)

	h.compare(expect(t,
		fam("enrichproxy_requests_total",
			`{operation="email.find",qualification="found",status="ok",vendor="enrow"} 1`,
			`{operation="email.find",qualification="pending",status="pending",vendor="enrow"} 1`),
		fam("enrichproxy_upstream_attempts_total", `{code="200",vendor="enrow"} 2`),
		fam("enrichproxy_retries_total", zeroRetries("enrow")...),
		fam("enrichproxy_circuit_state", `{vendor="ecore"} 0`, `{vendor="enrow"} 0`),
		fam("enrichproxy_circuit_transitions_total", zeroTransitions("enrow")...),
		fam("enrichproxy_inflight_requests", `{vendor="enrow"} 0`),
		fam("enrichproxy_redis_fallback", ` 0`),
	))
	wantCounts(t, fams, "enrichproxy_request_duration_seconds", map[string]uint64{
		`operation="email.find",status="ok",vendor="enrow"`:      1,
		`operation="email.find",status="pending",vendor="enrow"`: 1,
	})
	wantCounts(t, fams, "enrichproxy_upstream_attempt_duration_seconds", map[string]uint64{`vendor="enrow"`: 2})
	// Enrow's POSTs go through its rate limiter (10/s), its GETs do not.
	wantCounts(t, fams, "enrichproxy_ratelimit_wait_seconds", map[string]uint64{`vendor="enrow"`: 1})
}

// TestMetricsRetriedSuccess: a 503 then a 200 is one request, two vendor calls and one
// retry for status_5xx; the answer's credits reach the gauge.
func TestMetricsRetriedSuccess(t *testing.T) {
	h := start(t, metricsEnv())
	closeDefaultIdle(t)
	h.enrow.Script(vendorsim.Answer{Status: 503, Body: `{"message":"Service Unavailable"}`})
	if a := h.do("GET", "/enrow/account/info", ""); a.code != 200 {
		t.Fatalf("got %d, want 200 after a retry\n%s", a.code, a.raw)
	}
	fams := h.waitCounted(1)

	h.compare(expect(t,
		fam("enrichproxy_requests_total", `{operation="account",qualification="",status="ok",vendor="enrow"} 1`),
		fam("enrichproxy_upstream_attempts_total", `{code="200",vendor="enrow"} 1`, `{code="503",vendor="enrow"} 1`),
		fam("enrichproxy_retries_total", setSeries(zeroRetries("enrow"), `{reason="status_5xx",vendor="enrow"}`, "1")...),
		fam("enrichproxy_retry_budget_exhausted_total", `{vendor="enrow"} 0`),
		fam("enrichproxy_circuit_state", `{vendor="ecore"} 0`, `{vendor="enrow"} 0`),
		fam("enrichproxy_credits_remaining", fmt.Sprintf(`{vendor="enrow"} %g`, h.enrow.Credits())),
	))
	wantCounts(t, fams, "enrichproxy_upstream_attempt_duration_seconds", map[string]uint64{`vendor="enrow"`: 2})
	wantCounts(t, fams, "enrichproxy_request_duration_seconds", map[string]uint64{
		`operation="account",status="ok",vendor="enrow"`: 1,
	})
}

// TestMetricsRetryBudgetExhausted: with no retry budget, a 503 is answered without a
// retry, and the refused retry is counted.
func TestMetricsRetryBudgetExhausted(t *testing.T) {
	h := start(t, metricsEnv("ENROW_RETRY_BUDGET_RATIO", "0", "ENROW_RETRY_BUDGET_MIN_PER_SECOND", "0"))
	closeDefaultIdle(t)
	h.enrow.Script(vendorsim.Answer{Status: 503, Body: `{"message":"Service Unavailable"}`})
	if a := h.do("GET", "/enrow/account/info", ""); a.code != 502 {
		t.Fatalf("got %d, want 502 upstream_error\n%s", a.code, a.raw)
	}
	h.waitCounted(1)

	h.compare(expect(t,
		fam("enrichproxy_requests_total", `{operation="account",qualification="",status="upstream_error",vendor="enrow"} 1`),
		fam("enrichproxy_upstream_attempts_total", `{code="503",vendor="enrow"} 1`),
		fam("enrichproxy_retries_total", zeroRetries("enrow")...),
		fam("enrichproxy_retry_budget_exhausted_total", `{vendor="enrow"} 1`),
	))
}

// TestMetricsBreakerOpens: one failure opens the breaker (consecutive_failures 1); the
// gauge reads open at scrape time, one transition to open is counted, and the next
// request is refused without a vendor call.
func TestMetricsBreakerOpens(t *testing.T) {
	h := start(t, metricsEnv("ENROW_BREAKER_CONSECUTIVE_FAILURES", "1", "ENROW_MAX_ATTEMPTS", "1"))
	closeDefaultIdle(t)
	h.enrow.Script(vendorsim.Answer{Status: 503, Body: `{"message":"Service Unavailable"}`})
	if a := h.do("GET", "/enrow/account/info", ""); a.code != 502 {
		t.Fatalf("got %d, want 502 upstream_error\n%s", a.code, a.raw)
	}
	if a := h.do("GET", "/enrow/account/info", ""); a.code != 503 || a.env.Error == nil || a.env.Error.Code != normalize.CodeCircuitOpen {
		t.Fatalf("got %d %s, want 503 circuit_open", a.code, a.raw)
	}
	h.waitCounted(2)

	h.compare(expect(t,
		fam("enrichproxy_requests_total",
			`{operation="account",qualification="",status="unavailable",vendor="enrow"} 1`,
			`{operation="account",qualification="",status="upstream_error",vendor="enrow"} 1`),
		fam("enrichproxy_upstream_attempts_total", `{code="503",vendor="enrow"} 1`),
		fam("enrichproxy_retries_total", zeroRetries("enrow")...),
		fam("enrichproxy_circuit_state", `{vendor="ecore"} 0`, `{vendor="enrow"} 2`),
		fam("enrichproxy_circuit_transitions_total", setSeries(zeroTransitions("enrow"), `{to="open",vendor="enrow"}`, "1")...),
	))
}

// TestMetricsCooldown: a vendor 429 with Retry-After 120 on a POST starts one cool-down
// and is answered rate_limited; the next POST is refused by the proxy itself.
func TestMetricsCooldown(t *testing.T) {
	h := start(t, metricsEnv())
	closeDefaultIdle(t)
	h.enrow.Script(vendorsim.Answer{Status: 429, Header: http.Header{"Retry-After": {"120"}}, Body: `{"message":"Too Many Requests"}`})
	if a := h.do("POST", "/enrow/email/find/single", timCook); a.code != 429 {
		t.Fatalf("got %d, want 429\n%s", a.code, a.raw)
	}
	h.waitCounted(1)
	h.compare(expect(t,
		fam("enrichproxy_requests_total", `{operation="email.find",qualification="",status="rate_limited",vendor="enrow"} 1`),
		fam("enrichproxy_upstream_attempts_total", `{code="429",vendor="enrow"} 1`),
		fam("enrichproxy_cooldowns_total", `{vendor="enrow"} 1`),
		fam("enrichproxy_retries_total", zeroRetries("enrow")...),
		fam("enrichproxy_ratelimit_rejected_total", `{vendor="enrow"} 0`),
	))

	// The cool-down (120 s) is longer than max_retry_wait: the proxy answers at once.
	calls := h.enrow.CallCount()
	if a := h.do("POST", "/enrow/email/find/single", timCook); a.code != 429 || a.env.Error == nil || a.env.Error.Code != normalize.CodeLocalRateLimited {
		t.Fatalf("got %d %s, want 429 local_rate_limited", a.code, a.raw)
	}
	if h.enrow.CallCount() != calls {
		t.Error("the vendor was called during its cool-down")
	}
	h.waitCounted(2)
	h.compare(expect(t,
		fam("enrichproxy_requests_total", `{operation="email.find",qualification="",status="rate_limited",vendor="enrow"} 2`),
		fam("enrichproxy_upstream_attempts_total", `{code="429",vendor="enrow"} 1`),
		fam("enrichproxy_cooldowns_total", `{vendor="enrow"} 1`),
		fam("enrichproxy_ratelimit_rejected_total", `{vendor="enrow"} 1`),
	))
}

// TestMetricsCacheHit: two identical GETs of a final result: the second is served from
// the cache, counted once in cache_hits_total, with no second vendor call.
func TestMetricsCacheHit(t *testing.T) {
	h := start(t, metricsEnv())
	closeDefaultIdle(t)
	id := post(t, h, "/enrow/email/find/single", timCook)
	for range 2 {
		if a := h.do("GET", "/enrow/email/find/single?id="+id, ""); a.code != 200 || a.env.Qualification != normalize.QualFound {
			t.Fatalf("got %d %s/%s, want 200 ok/found", a.code, a.env.Status, a.env.Qualification)
		}
	}
	h.waitCounted(3)
	h.compare(expect(t,
		fam("enrichproxy_requests_total",
			`{operation="email.find",qualification="found",status="ok",vendor="enrow"} 2`,
			`{operation="email.find",qualification="pending",status="pending",vendor="enrow"} 1`),
		fam("enrichproxy_upstream_attempts_total", `{code="200",vendor="enrow"} 2`),
		fam("enrichproxy_cache_hits_total", `{vendor="enrow"} 1`),
	))
}

// Distinctive values that must never reach a label value.
const (
	leakUUID       = "5d1c7e0a-9f3b-4c2e-8a61-0b7f3e9d2c48"
	leakJob        = "987654"
	leakEmail      = "zora.quill@leakcheck.example"
	leakPhoneURL   = "https://www.linkedin.com/in/leak-check-4417"
	leakClientKey  = "client-enrow-key-b7e21d"
	leakClientTok  = "client-ecore-token-4c9a0f"
	leakProxyToken = "proxy-token-e8d3a1"
	leakRequestID  = "req-id-leak-6a2f"
	leakQuery      = "query-value-leak-71c3"
)

// The bounded sets of SPEC 9's labels.
var (
	boundedVendors = []string{"enrow", "ecore", ""}
	boundedStatus  = []string{"ok", "pending", "invalid_request", "unauthorized", "insufficient_credits", "not_found",
		"payload_too_large", "rate_limited", "quota_exceeded", "upstream_error", "unavailable", "timeout", "internal"}
	boundedQual    = []string{"found", "not_found", "valid", "invalid", "unknown", "pending", ""}
	boundedReasons = []string{"status_5xx", "rate_limited", "transport", "timeout"}
	boundedTo      = []string{"closed", "half_open", "open"}
	numericCode    = regexp.MustCompile(`^[1-5][0-9][0-9]$`)
)

// TestMetricLabelsAreBounded drives traffic full of ids, emails, keys and odd paths
// through every kind of route, then checks that no label value of the scrape holds any
// of them, and that every label value of every enrichproxy_* series is in its bounded set.
func TestMetricLabelsAreBounded(t *testing.T) {
	h := start(t, metricsEnv("PROXY_AUTH_TOKENS", leakProxyToken))
	auth := []string{"X-Proxy-Token", leakProxyToken, "X-Request-Id", leakRequestID}
	withAuth := func(kv ...string) []string { return append(slices.Clone(auth), kv...) }

	n := 0
	do := func(method, path, body string, headers ...string) answer {
		t.Helper()
		n++
		return h.do(method, path, body, headers...)
	}
	// Searches whose ids come back in later paths and queries.
	id := idOf(t, do("POST", "/enrow/email/find/single?tag="+leakQuery,
		`{"fullname":"Zora Quill","company_domain":"leakcheck.example"}`, withAuth("x-api-key", leakClientKey)...))
	do("GET", "/enrow/email/find/single?id="+id, "", withAuth()...)
	do("GET", "/enrow/email/find/single?id="+leakUUID, "", withAuth()...)
	do("POST", "/enrow/email/verify/single", `{"email":"`+leakEmail+`"}`, withAuth()...)
	do("POST", "/enrow/phone/single", `{"linkedin_url":"`+leakPhoneURL+`"}`, withAuth()...)
	do("GET", "/enrow/email/find/bulk?id="+leakUUID, "", withAuth()...)
	job := idOf(t, do("POST", "/ecore/email-validation/jobs/upload/", `{"emails":["`+leakEmail+`"]}`,
		withAuth("Authorization", "Token "+leakClientTok)...))
	do("GET", "/ecore/email-validation/jobs/"+job+"/", "", withAuth()...)
	do("GET", "/ecore/email-validation/jobs/"+leakJob+"/", "", withAuth()...)
	do("GET", "/ecore/email-validation/jobs/"+leakJob+"/records/?email="+leakEmail, "", withAuth()...)
	do("POST", "/ecore/external/email/enrichment/", `{"email":"`+leakEmail+`"}`, withAuth()...)
	do("GET", "/ecore/enrichment/status/"+leakUUID+"/", "", withAuth("Authorization", "Bearer "+leakClientTok)...)
	// Paths no classifier knows, with ids in them; drop-in routes; unknown routes.
	do("GET", "/enrow/"+leakUUID+"/"+leakEmail, "", withAuth()...)
	do("DELETE", "/ecore/external/"+leakJob, "", withAuth()...)
	do("GET", "/raw/enrow/email/find/single?id="+leakUUID, "", withAuth()...)
	do("GET", "/raw/ecore/email-validation/jobs/"+leakJob+"/", "", withAuth()...)
	do("GET", "/"+leakUUID+"/"+leakJob, "", withAuth()...)
	do("GET", "/users/"+leakEmail+"/"+leakJob, "", withAuth()...)
	do("POST", "/v2/"+leakUUID+"?key="+leakClientKey, `{"email":"`+leakEmail+`"}`, withAuth()...)
	do("GET", "/enrow/a%2F"+leakUUID, "", withAuth()...) // path_escape
	// Refused before any routing: no proxy token, a wrong one.
	do("GET", "/enrow/email/find/single?id="+leakUUID, "")
	do("GET", "/ecore/email-validation/jobs/"+leakJob+"/", "", "X-Proxy-Token", "wrong-"+leakProxyToken)
	// A vendor failure and a 429, so that attempts by code and retries appear too.
	down := vendorsim.Answer{Status: 503, Body: `{"message":"down"}`}
	h.enrow.Script(down, down, down, // three attempts, two retries, then upstream_error
		vendorsim.Answer{Status: 429, Header: http.Header{"Retry-After": {"120"}}, Body: `{"message":"Too Many Requests"}`})
	do("GET", "/enrow/account/info?id="+leakUUID, "", withAuth()...)
	do("POST", "/enrow/email/find/single", timCook, withAuth()...)

	fams := h.waitCounted(n)
	text, _ := h.scrape()

	// The eCore job id is a small integer ("1"), too short to look for: leakJob stands
	// for a job id in paths.
	secrets := []string{leakUUID, leakJob, id, leakEmail, "leakcheck", leakPhoneURL, "leak-check", leakClientKey,
		leakClientTok, leakProxyToken, leakRequestID, leakQuery, enrowKey, ecoreToken, "Zora", "users", "v2", "/"}
	var enrichproxySeries int
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				for _, s := range secrets {
					if s != "" && strings.Contains(v, s) {
						t.Errorf("%s{%s}: label %s holds %q", name, labelString(m), l.GetName(), s)
					}
				}
				if strings.HasPrefix(name, "enrichproxy_") {
					if err := boundedLabel(name, l.GetName(), v); err != nil {
						t.Errorf("%s{%s}: %v", name, labelString(m), err)
					}
				}
			}
			if strings.HasPrefix(name, "enrichproxy_") {
				enrichproxySeries++
			}
		}
	}
	// Not in a label, nor anywhere else in the scrape (HELP text, exemplars, …).
	for _, s := range []string{leakUUID, leakEmail, leakClientKey, leakClientTok, leakProxyToken, leakRequestID, leakQuery, enrowKey, ecoreToken} {
		if strings.Contains(text, s) {
			t.Errorf("the scrape holds %q", s)
		}
	}
	if enrichproxySeries < 30 {
		t.Errorf("got %d enrichproxy_* series, want the traffic to have made many", enrichproxySeries)
	}
	// The traffic went where it was meant to: every vendor, the unknown-route vendor "",
	// and several statuses.
	seen := map[string]map[string]bool{"vendor": {}, "status": {}}
	for _, m := range fams["enrichproxy_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if seen[l.GetName()] != nil {
				seen[l.GetName()][l.GetValue()] = true
			}
		}
	}
	for _, want := range []string{"enrow", "ecore", ""} {
		if !seen["vendor"][want] {
			t.Errorf("no request counted for vendor %q", want)
		}
	}
	for _, want := range []string{"ok", "pending", "not_found", "invalid_request", "unauthorized", "upstream_error", "rate_limited"} {
		if !seen["status"][want] {
			t.Errorf("no request counted with status %q", want)
		}
	}
}

// boundedLabel checks one label value of an enrichproxy_* series against its set.
func boundedLabel(metric, label, v string) error {
	in := func(set []string) error {
		if !slices.Contains(set, v) {
			return fmt.Errorf("label %s=%q is outside %q", label, v, set)
		}
		return nil
	}
	switch label {
	case "vendor":
		if metric == "enrichproxy_requests_total" || metric == "enrichproxy_request_duration_seconds" {
			return in(boundedVendors)
		}
		return in([]string{"enrow", "ecore"}) // only a vendor's own client records these
	case "operation":
		ops := make([]string, len(normalize.Operations))
		for i, o := range normalize.Operations {
			ops[i] = string(o)
		}
		return in(ops)
	case "status":
		return in(boundedStatus)
	case "qualification":
		return in(boundedQual)
	case "code":
		if numericCode.MatchString(v) {
			return nil
		}
		return in([]string{"transport", "timeout"})
	case "reason":
		return in(boundedReasons)
	case "to":
		return in(boundedTo)
	case "le":
		return nil // histogram buckets
	case "version":
		if len(v) > 64 || strings.ContainsAny(v, " /@") && v != "(devel)" {
			return fmt.Errorf("version %q is not a version", v)
		}
		return nil
	case "goversion":
		if !strings.HasPrefix(v, "go") {
			return fmt.Errorf("goversion %q is not a Go version", v)
		}
		return nil
	}
	return fmt.Errorf("label %s is not one of SPEC 9's", label)
}

// TestMetricsPassPromtoolLint scrapes the program after some traffic and runs
// `promtool check metrics` on it: the Prometheus naming and help conventions, on the
// whole exposition (Go and process collectors included).
func TestMetricsPassPromtoolLint(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("ENRICHPROXY_REQUIRE_TOOLS") != "" {
			t.Fatal("promtool is missing and ENRICHPROXY_REQUIRE_TOOLS is set")
		}
		t.Skip("promtool is missing (apt-get install prometheus); set ENRICHPROXY_REQUIRE_TOOLS to fail instead")
	}
	h := start(t, metricsEnv())
	driveEveryFamily(t, h)
	text, _ := h.scrape()

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// driveEveryFamily sends the traffic after which the program exports every family of
// SPEC 9 (its vendors' series start at zero on their first request): an Enrow search,
// a retried read, an eCore enrichment with credits, and an unknown route. It returns the
// number of requests sent, once they are all counted.
func driveEveryFamily(t *testing.T, h *harness) int {
	t.Helper()
	id := post(t, h, "/enrow/email/find/single", timCook)
	h.do("GET", "/enrow/email/find/single?id="+id, "")
	h.enrow.Script(vendorsim.Answer{Status: 503, Body: `{"message":"down"}`})
	h.do("GET", "/enrow/account/info", "")
	h.do("POST", "/ecore/external/email/enrichment/", `{"first_name":"Tim","last_name":"Cook","company_website":"apple.com"}`)
	h.do("GET", "/nowhere", "")
	h.waitCounted(5)
	return 5
}
