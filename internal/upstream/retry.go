package upstream

import (
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/metrics"
	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

// backoff is the full-jitter exponential wait before retry n (1 for the first retry):
// uniform in [0, min(cap, base·2^(n-1))]. No base means no wait (a base that overflows
// when doubled is the cap).
func backoff(n int, base, cap time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	ceiling := cap
	if n-1 < 32 {
		if d := base << (n - 1); d > 0 && d < cap {
			ceiling = d
		}
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// outcome is what one attempt came to, as the retry policy and the breaker see it.
type outcome struct {
	status normalize.Status // the normalized status of the vendor answer; "" without one
	code   int              // the vendor's HTTP status; 0 without an answer
	// errCode is the envelope's error code (normalize.Code…); "" when none.
	errCode string
	err     error // transport error or attempt timeout; nil with an answer
	// sent is false when the request provably never reached the vendor (a dial error).
	sent     bool
	timedOut bool
}

// idempotent reports whether a method may be retried whatever happened to the attempt.
func idempotent(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// breakerFailure reports whether the attempt counts against the vendor's breaker
// (SPEC 4): transport errors, timeouts and 5xx upstream errors; never 4xx, 429 or
// Enrow's not-found 500, which normalize already calls not_found.
func (o outcome) breakerFailure() bool {
	return o.err != nil || o.vendorFault()
}

// vendorFault reports a 5xx answer that says the vendor failed. A failed bulk job is
// upstream_error/job_failed whatever HTTP status the vendor gave it (SPEC 11), but it is
// an answer about the job: asking again gives the same answer, and the vendor is fine.
func (o outcome) vendorFault() bool {
	return o.status == normalize.StatusUpstreamError && o.code >= 500 && o.errCode != normalize.CodeJobFailed
}

// retryReason says why the attempt may be retried, "" when it must not be. method and
// unsafePost apply the POST rule: a POST that spends credits is retried on 5xx and when it
// never reached the vendor, but not after it was sent and timed out or broke, unless
// retry_unsafe_post is on.
func (o outcome) retryReason(method string, unsafePost bool) string {
	switch {
	case o.err != nil:
		if o.sent && !idempotent(method) && !unsafePost {
			return ""
		}
		if o.timedOut {
			return metrics.ReasonTimeout
		}
		return metrics.ReasonTransport
	case o.status == normalize.StatusRateLimited:
		return metrics.ReasonRateLimited
	case o.vendorFault():
		return metrics.ReasonStatus5xx
	}
	return ""
}
