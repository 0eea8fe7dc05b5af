package upstream

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/metrics"
	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

// TestBackoff checks full jitter: every wait lies in [0, min(cap, base·2^(n-1))], and the
// waits are spread over that range rather than fixed.
func TestBackoff(t *testing.T) {
	const base, ceiling = 100 * time.Millisecond, time.Second
	tests := []struct {
		n       int
		wantMax time.Duration
	}{
		{n: 1, wantMax: 100 * time.Millisecond},
		{n: 2, wantMax: 200 * time.Millisecond},
		{n: 4, wantMax: 800 * time.Millisecond},
		{n: 5, wantMax: time.Second},
		{n: 64, wantMax: time.Second},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("retry %d", tc.n), func(t *testing.T) {
			var lowest, highest time.Duration = tc.wantMax, 0
			for range 2000 {
				d := backoff(tc.n, base, ceiling)
				if d < 0 || d > tc.wantMax {
					t.Fatalf("got %v, want in [0, %v]", d, tc.wantMax)
				}
				lowest, highest = min(lowest, d), max(highest, d)
			}
			// 2000 uniform draws: the extremes come within 1 % of the ends.
			if lowest > tc.wantMax/100 || highest < tc.wantMax*99/100 {
				t.Errorf("got waits in [%v, %v], want spread over [0, %v]", lowest, highest, tc.wantMax)
			}
		})
	}
	if d := backoff(3, 0, time.Second); d != 0 {
		t.Errorf("zero base: got %v, want 0", d)
	}
}

// TestRetryReason checks the pure retry policy against SPEC 4.
func TestRetryReason(t *testing.T) {
	errNet := errors.New("connection reset by peer")
	tests := []struct {
		name       string
		o          outcome
		method     string
		unsafePost bool
		want       string
		wantFail   bool // counts against the breaker
	}{
		{name: "5xx", o: outcome{status: normalize.StatusUpstreamError, code: 503, errCode: normalize.CodeVendorError, sent: true},
			method: http.MethodPost, want: metrics.ReasonStatus5xx, wantFail: true},
		{name: "failed job on a 500", o: outcome{status: normalize.StatusUpstreamError, code: 500, errCode: normalize.CodeJobFailed, sent: true},
			method: http.MethodGet},
		{name: "bad vendor reply on a 200", o: outcome{status: normalize.StatusUpstreamError, code: 200, errCode: normalize.CodeBadVendorReply, sent: true},
			method: http.MethodGet},
		{name: "Enrow not-found 500", o: outcome{status: normalize.StatusNotFound, code: 500, errCode: normalize.CodeUnknownID, sent: true},
			method: http.MethodGet},
		{name: "429", o: outcome{status: normalize.StatusRateLimited, code: 429, sent: true},
			method: http.MethodPost, want: metrics.ReasonRateLimited},
		{name: "daily quota", o: outcome{status: normalize.StatusQuotaExceeded, code: 429, sent: true}, method: http.MethodPost},
		{name: "402", o: outcome{status: normalize.StatusInsufficientCredits, code: 402, sent: true}, method: http.MethodPost},
		{name: "400", o: outcome{status: normalize.StatusInvalidRequest, code: 400, sent: true}, method: http.MethodGet},
		{name: "dial error on POST", o: outcome{err: errNet}, method: http.MethodPost, want: metrics.ReasonTransport, wantFail: true},
		{name: "timeout before sending a POST", o: outcome{err: errNet, timedOut: true}, method: http.MethodPost,
			want: metrics.ReasonTimeout, wantFail: true},
		{name: "reset after sending a POST", o: outcome{err: errNet, sent: true}, method: http.MethodPost, wantFail: true},
		{name: "timeout after sending a POST", o: outcome{err: errNet, sent: true, timedOut: true}, method: http.MethodPost, wantFail: true},
		{name: "timeout after sending a POST, retry_unsafe_post", o: outcome{err: errNet, sent: true, timedOut: true},
			method: http.MethodPost, unsafePost: true, want: metrics.ReasonTimeout, wantFail: true},
		{name: "timeout after sending a GET", o: outcome{err: errNet, sent: true, timedOut: true}, method: http.MethodGet,
			want: metrics.ReasonTimeout, wantFail: true},
		{name: "reset after sending a DELETE", o: outcome{err: errNet, sent: true}, method: http.MethodDelete, wantFail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.o.retryReason(tc.method, tc.unsafePost); got != tc.want {
				t.Errorf("got retry reason %q, want %q", got, tc.want)
			}
			if got := tc.o.breakerFailure(); got != tc.wantFail {
				t.Errorf("got breaker failure %v, want %v", got, tc.wantFail)
			}
		})
	}
}
