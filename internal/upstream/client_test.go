package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/metrics"
	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

const (
	enrowNotFound  = `{"message":"Could not retrieve single search results"}`
	generic500     = `{"message":"Internal server error"}`
	accountOK      = `{"credits": 12.5}`
	searchStarted  = `{"id":"s-1","credits_used":1}`
	eCoreFound     = `{"status":"success","email":"tim@apple.com","remaining_credits":99}`
	eCoreDailyBody = `{"error":{"message":"Daily usage limit exceeded","current_usage":101,"daily_limit":100,"resets_at":"midnight UTC"}}`
)

// TestDoRetries checks which vendor answers are retried, how often, and what the request
// ends with: the vendor's last answer, normalized, with no error.
func TestDoRetries(t *testing.T) {
	tests := []struct {
		name         string
		vendor       string
		req          *Request
		script       []answer
		wantStatus   normalize.Status
		wantCode     string
		wantAttempts int
		wantRetries  float64 // retries_total{reason="status_5xx"}
	}{
		{
			name:       "503, 503, 200 succeeds on the third attempt",
			req:        get("/account/info"),
			script:     []answer{{status: 503, body: generic500}, {status: 503, body: generic500}, {status: 200, body: accountOK}},
			wantStatus: normalize.StatusOK, wantAttempts: 3, wantRetries: 2,
		},
		{
			name:       "persistent 500 ends with the vendor's last answer after max_attempts",
			req:        get("/account/info"),
			script:     []answer{{status: 500, body: generic500}},
			wantStatus: normalize.StatusUpstreamError, wantCode: normalize.CodeVendorError, wantAttempts: 3, wantRetries: 2,
		},
		{
			name:       "Enrow's not-found 500 on a single GET is not_found, not retried",
			req:        get("/email/find/single?id=x"),
			script:     []answer{{status: 500, body: enrowNotFound}},
			wantStatus: normalize.StatusNotFound, wantCode: normalize.CodeUnknownID, wantAttempts: 1,
		},
		{
			name: "a load balancer's HTML 502 is a vendor 5xx, retried",
			req:  get("/account/info"),
			script: []answer{{status: 502, header: map[string]string{"Content-Type": "text/html"}, body: "<html>Bad Gateway</html>"},
				{status: 200, body: accountOK}},
			wantStatus: normalize.StatusOK, wantAttempts: 2, wantRetries: 1,
		},
		{
			name:       "POST on 5xx is retried (both vendors document 5xx as safe)",
			req:        post("/email/find/single", `{"fullname":"Tim Cook","company_domain":"apple.com"}`),
			script:     []answer{{status: 503, body: generic500}, {status: 200, body: searchStarted}},
			wantStatus: normalize.StatusPending, wantAttempts: 2, wantRetries: 1,
		},
		{
			name:       "400 is not retried",
			req:        post("/email/find/single", `{}`),
			script:     []answer{{status: 400, body: `{"message":"fullname is required"}`}},
			wantStatus: normalize.StatusInvalidRequest, wantCode: normalize.CodeVendorRejected, wantAttempts: 1,
		},
		{
			name:       "401 is not retried",
			req:        get("/account/info"),
			script:     []answer{{status: 401, body: `{"message":"Invalid API key"}`}},
			wantStatus: normalize.StatusUnauthorized, wantCode: normalize.CodeVendorAuth, wantAttempts: 1,
		},
		{
			name:       "402 is not retried",
			req:        post("/email/find/single", `{}`),
			script:     []answer{{status: 402, body: `{"message":"Insufficient balance","required":1,"balance":0}`}},
			wantStatus: normalize.StatusInsufficientCredits, wantCode: normalize.CodeInsufficientCredits, wantAttempts: 1,
		},
		{
			name:       "a failed Enrow bulk job answered with a 500 is final, not retried",
			req:        get("/email/find/bulk?id=b-1"),
			script:     []answer{{status: 500, body: `{"general":{"status":"failed"}}`}},
			wantStatus: normalize.StatusUpstreamError, wantCode: normalize.CodeJobFailed, wantAttempts: 1,
		},
		{
			name:       "eCore 503, 200 on the synchronous finder",
			vendor:     normalize.ECore,
			req:        post("/external/email/enrichment/", `{"linkedin_url":"https://linkedin.com/in/x"}`),
			script:     []answer{{status: 503, body: `{"detail":"Service unavailable"}`}, {status: 200, body: eCoreFound}},
			wantStatus: normalize.StatusOK, wantAttempts: 2, wantRetries: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVendor(t, tc.script...)
			c, reg := newClient(t, Config{Name: tc.vendor, Policy: testPolicy(v.URL())})

			out, err := c.Do(t.Context(), tc.req)

			wantEnvelope(t, out, err, tc.wantStatus, tc.wantCode)
			if out.Attempts != tc.wantAttempts {
				t.Errorf("got %d attempts, want %d", out.Attempts, tc.wantAttempts)
			}
			if got := v.count(); got != tc.wantAttempts {
				t.Errorf("got %d vendor calls, want %d", got, tc.wantAttempts)
			}
			last := tc.script[min(tc.wantAttempts, len(tc.script))-1]
			if out.StatusCode != last.status {
				t.Errorf("got upstream status %d, want %d", out.StatusCode, last.status)
			}
			if got := metricValue(t, reg, "retries_total", "reason", metrics.ReasonStatus5xx); got != tc.wantRetries {
				t.Errorf("got retries_total{reason=status_5xx} %v, want %v", got, tc.wantRetries)
			}
			if got := metricValue(t, reg, "upstream_attempts_total"); got != float64(tc.wantAttempts) {
				t.Errorf("got upstream_attempts_total %v, want %d", got, tc.wantAttempts)
			}
		})
	}
}

// TestDoSentAndUnsent checks the POST rule: a POST is retried after an error only when it
// provably never reached the vendor (a dial error), or when retry_unsafe_post is on.
func TestDoSentAndUnsent(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		closed     bool // the base URL points at a closed port
		answer     answer
		unsafePost bool
		wantStatus normalize.Status
		wantCode   string
		wantCalls  int    // calls the vendor received
		wantReason string // the retries_total reason, counted wantCalls-1 times
	}{
		{
			name: "POST timed out after it was sent is not retried", method: http.MethodPost,
			answer:     answer{hang: true},
			wantStatus: normalize.StatusTimeout, wantCode: normalize.CodeDeadlineExceeded, wantCalls: 1,
		},
		{
			name: "POST timed out after it was sent is retried with retry_unsafe_post", method: http.MethodPost,
			answer: answer{hang: true}, unsafePost: true,
			wantStatus: normalize.StatusTimeout, wantCode: normalize.CodeDeadlineExceeded, wantCalls: 3,
			wantReason: metrics.ReasonTimeout,
		},
		{
			name: "GET timed out is retried", method: http.MethodGet,
			answer:     answer{hang: true},
			wantStatus: normalize.StatusTimeout, wantCode: normalize.CodeDeadlineExceeded, wantCalls: 3,
			wantReason: metrics.ReasonTimeout,
		},
		{
			name: "POST reset after the vendor read it is not retried", method: http.MethodPost,
			answer:     answer{reset: true},
			wantStatus: normalize.StatusUpstreamError, wantCode: normalize.CodeTransport, wantCalls: 1,
		},
		{
			name: "POST reset after the vendor read it is retried with retry_unsafe_post", method: http.MethodPost,
			answer: answer{reset: true}, unsafePost: true,
			wantStatus: normalize.StatusUpstreamError, wantCode: normalize.CodeTransport, wantCalls: 3,
			wantReason: metrics.ReasonTransport,
		},
		{
			name: "GET reset is retried", method: http.MethodGet,
			answer:     answer{reset: true},
			wantStatus: normalize.StatusUpstreamError, wantCode: normalize.CodeTransport, wantCalls: 3,
			wantReason: metrics.ReasonTransport,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVendor(t, tc.answer)
			pol := testPolicy(v.URL())
			pol.AttemptTimeout = 100 * time.Millisecond
			pol.RetryUnsafePost = tc.unsafePost
			c, reg := newClient(t, Config{Policy: pol})
			req := &Request{Method: tc.method, Path: "/email/find/single", Body: []byte(`{"fullname":"Tim Cook"}`)}

			out, err := c.Do(t.Context(), req)

			wantError(t, err, tc.wantStatus, tc.wantCode)
			if got := v.count(); got != tc.wantCalls {
				t.Errorf("got %d vendor calls, want %d", got, tc.wantCalls)
			}
			if out.Attempts != tc.wantCalls {
				t.Errorf("got %d attempts, want %d", out.Attempts, tc.wantCalls)
			}
			if tc.wantReason != "" {
				if got := metricValue(t, reg, "retries_total", "reason", tc.wantReason); got != float64(tc.wantCalls-1) {
					t.Errorf("got retries_total{reason=%s} %v, want %d", tc.wantReason, got, tc.wantCalls-1)
				}
			}
			if got := metricValue(t, reg, "retries_total"); tc.wantReason == "" && got != 0 {
				t.Errorf("got retries_total %v, want 0", got)
			}
		})
	}
}

// TestDoDialError checks that a POST that never reached the vendor (connection refused) is
// retried up to max_attempts and ends as a transport error.
func TestDoDialError(t *testing.T) {
	c, reg := newClient(t, Config{Policy: testPolicy(closedURL(t))})

	out, err := c.Do(t.Context(), post("/email/find/single", `{"fullname":"Tim Cook"}`))

	wantError(t, err, normalize.StatusUpstreamError, normalize.CodeTransport)
	if out.Attempts != 3 {
		t.Errorf("got %d attempts, want 3", out.Attempts)
	}
	if got := metricValue(t, reg, "retries_total", "reason", metrics.ReasonTransport); got != 2 {
		t.Errorf("got retries_total{reason=transport} %v, want 2", got)
	}
	if got := metricValue(t, reg, "upstream_attempts_total", "code", "transport"); got != 3 {
		t.Errorf("got upstream_attempts_total{code=transport} %v, want 3", got)
	}
}

// TestDoVendor429 checks the wait after a vendor 429: retried after Retry-After or
// X-RateLimit-Reset when the wait fits max_retry_wait and the deadline, else answered at once
// with retry_after_seconds.
func TestDoVendor429(t *testing.T) {
	// It waits out a whole-second Retry-After: it runs alongside the other tests that do.
	t.Parallel()
	retryAfter := func(v string) answer {
		return answer{status: 429, header: map[string]string{"Retry-After": v}, body: `{"message":"Too Many Requests"}`}
	}
	ok := answer{status: 200, body: accountOK}
	tests := []struct {
		name           string
		next           func(c call, n int) answer
		deadline       time.Duration // 0: none
		maxRetryWait   time.Duration // 0: testPolicy's
		wantStatus     normalize.Status
		wantCalls      int
		wantRetryAfter int           // envelope retry_after_seconds
		wantGap        time.Duration // least time between the two calls
		wantFast       bool          // answered well under a second
	}{
		{
			name: "Retry-After: 1 is waited, then the retry succeeds",
			next: func(_ call, n int) answer {
				if n == 1 {
					return retryAfter("1")
				}
				return ok
			},
			wantStatus: normalize.StatusOK, wantCalls: 2, wantGap: time.Second,
		},
		{
			name: "X-RateLimit-Reset (Unix milliseconds) is waited, then the retry succeeds",
			next: func(_ call, n int) answer {
				if n == 1 {
					reset := time.Now().Add(150 * time.Millisecond).UnixMilli()
					return answer{status: 429, header: map[string]string{"X-RateLimit-Reset": strconv.FormatInt(reset, 10)},
						body: `{"message":"Too Many Requests"}`}
				}
				return ok
			},
			wantStatus: normalize.StatusOK, wantCalls: 2, wantGap: 140 * time.Millisecond, wantFast: true,
		},
		{
			name:       "Retry-After: 120 is over max_retry_wait: answered at once",
			next:       func(call, int) answer { return retryAfter("120") },
			wantStatus: normalize.StatusRateLimited, wantCalls: 1, wantRetryAfter: 120, wantFast: true,
		},
		{
			name:       "Retry-After: 1 does not fit a 200ms deadline: answered at once",
			next:       func(call, int) answer { return retryAfter("1") },
			deadline:   200 * time.Millisecond,
			wantStatus: normalize.StatusRateLimited, wantCalls: 1, wantRetryAfter: 1, wantFast: true,
		},
		{
			name: "an old Enrow 429 body's retry_after: 300 is the wait: answered at once",
			next: func(call, int) answer {
				return answer{status: 429, body: `{"error":"TooManyRequests","message":"Rate limit exceeded","status":429,"retry_after":300}`}
			},
			wantStatus: normalize.StatusRateLimited, wantCalls: 1, wantRetryAfter: 300, wantFast: true,
		},
		{
			name:       "Retry-After: 0 is retried at once; the last 429 still carries a wait",
			next:       func(call, int) answer { return retryAfter("0") },
			wantStatus: normalize.StatusRateLimited, wantCalls: 3, wantRetryAfter: 1, wantFast: true,
		},
		{
			name: "no wait header: the 1 s floor, over a 500ms max_retry_wait, is answered at once",
			next: func(call, int) answer {
				return answer{status: 429, body: `{"message":"Too Many Requests"}`}
			},
			maxRetryWait: 500 * time.Millisecond,
			wantStatus:   normalize.StatusRateLimited, wantCalls: 1, wantRetryAfter: 1, wantFast: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVendorFunc(t, tc.next)
			pol := testPolicy(v.URL())
			if tc.maxRetryWait > 0 {
				pol.MaxRetryWait = tc.maxRetryWait
			}
			c, reg := newClient(t, Config{Policy: pol})
			ctx := t.Context()
			if tc.deadline > 0 {
				ctx = timeoutCtx(t, tc.deadline)
			}

			start := time.Now()
			out, err := c.Do(ctx, get("/account/info"))
			elapsed := time.Since(start)

			code := ""
			if tc.wantStatus == normalize.StatusRateLimited {
				code = normalize.CodeVendorRateLimited
			}
			wantEnvelope(t, out, err, tc.wantStatus, code)
			calls := v.received()
			if len(calls) != tc.wantCalls {
				t.Fatalf("got %d vendor calls, want %d", len(calls), tc.wantCalls)
			}
			if out.Envelope.RetryAfterSeconds != tc.wantRetryAfter {
				t.Errorf("got retry_after_seconds %d, want %d", out.Envelope.RetryAfterSeconds, tc.wantRetryAfter)
			}
			if gap := calls[len(calls)-1].at.Sub(calls[0].at); gap < tc.wantGap {
				t.Errorf("got %v between the 429 and the retry, want at least %v", gap, tc.wantGap)
			}
			if got := metricValue(t, reg, "retries_total", "reason", metrics.ReasonRateLimited); got != float64(tc.wantCalls-1) {
				t.Errorf("got retries_total{reason=rate_limited} %v, want %d", got, tc.wantCalls-1)
			}
			if tc.wantFast && elapsed > 500*time.Millisecond {
				t.Errorf("took %v, want well under a second", elapsed)
			}
		})
	}
}

// signalLimits is LocalLimits that announces every hold it is given.
type signalLimits struct {
	*LocalLimits
	held chan hold
}

type hold struct {
	key   string
	start time.Time // before the hold was set: it ends at start+d or later
	d     time.Duration
}

func (l signalLimits) Hold(ctx context.Context, key string, d time.Duration) error {
	start := time.Now()
	err := l.LocalLimits.Hold(ctx, key, d)
	l.held <- hold{key: key, start: start, d: d}
	return err
}

// waitHold returns the next hold set, failing the test after a generous limit.
func (l signalLimits) waitHold(t *testing.T) hold {
	t.Helper()
	select {
	case h := <-l.held:
		return h
	case <-time.After(5 * time.Second):
		t.Fatal("no hold was set within 5s")
		return hold{}
	}
}

// TestDoCooldown checks the cool-down a vendor 429 starts for its credential: a POST that
// arrives during it waits and reaches the vendor only when it ends; one whose deadline is
// too short is answered local_rate_limited at once; GETs go on (Enrow limits POSTs only).
func TestDoCooldown(t *testing.T) {
	// It waits out a whole-second Retry-After: it runs alongside the other tests that do.
	t.Parallel()
	v := newVendorFunc(t, func(c call, n int) answer {
		switch {
		case c.method == http.MethodGet:
			return answer{status: 200, body: accountOK}
		case n == 1:
			return answer{status: 429, header: map[string]string{"Retry-After": "1"}, body: `{"message":"Too Many Requests"}`}
		}
		return answer{status: 200, body: searchStarted}
	})
	limits := signalLimits{LocalLimits: NewLocalLimits(), held: make(chan hold, 16)}
	c, reg := newClient(t, Config{Policy: enrowPolicy(v.URL(), 1000), Secret: "K", Limits: limits})
	find := func() *Request {
		return post("/email/find/single", `{"fullname":"Tim Cook","company_domain":"apple.com"}`)
	}

	type result struct {
		out   *Outcome
		err   error
		start time.Time
	}
	do := func(results chan<- result) {
		start := time.Now()
		out, err := c.Do(t.Context(), find())
		results <- result{out, err, start}
	}

	first := make(chan result, 1)
	go do(first)
	h := limits.waitHold(t)
	if h.d != time.Second {
		t.Fatalf("got a cool-down of %v, want 1s", h.d)
	}
	coolEnd := h.start.Add(h.d)

	// A POST whose deadline cannot hold the rest of the cool-down is answered at once.
	start := time.Now()
	_, err := c.Do(timeoutCtx(t, 100*time.Millisecond), find())
	e := wantError(t, err, normalize.StatusRateLimited, normalize.CodeLocalRateLimited)
	if e.RetryAfter <= 0 || e.RetryAfter > time.Second {
		t.Errorf("got RetryAfter %v, want the rest of the 1s cool-down", e.RetryAfter)
	}
	if elapsed := time.Since(start); elapsed > 50*time.Millisecond {
		t.Errorf("local_rate_limited took %v, want at once", elapsed)
	}
	if got := v.count(); got != 1 {
		t.Errorf("got %d vendor calls, want 1 (the 429)", got)
	}

	// A GET with the same credential is not held by a POST cool-down.
	out, err := c.Do(t.Context(), get("/account/info"))
	wantEnvelope(t, out, err, normalize.StatusOK, "")
	if calls := v.received(); !calls[len(calls)-1].at.Before(coolEnd) {
		t.Errorf("the GET reached the vendor at the cool-down's end or later, want during it")
	}

	// A POST arriving during the cool-down waits for it.
	second := make(chan result, 1)
	go do(second)
	r2, r1 := <-second, <-first
	if !r2.start.Before(coolEnd) {
		t.Fatalf("the second POST started after the cool-down (machine too slow?)")
	}
	for _, r := range []result{r1, r2} {
		wantEnvelope(t, r.out, r.err, normalize.StatusPending, "")
	}
	if r1.out.Attempts != 2 || r2.out.Attempts != 1 {
		t.Errorf("got attempts %d and %d, want 2 (429, retry) and 1", r1.out.Attempts, r2.out.Attempts)
	}
	var posts []call
	for _, c := range v.received() {
		if c.method == http.MethodPost {
			posts = append(posts, c)
		}
	}
	if len(posts) != 3 {
		t.Fatalf("got %d POSTs at the vendor, want 3", len(posts))
	}
	for i, c := range posts[1:] {
		if c.at.Before(coolEnd) {
			t.Errorf("POST %d reached the vendor %v before the cool-down ended", i+2, coolEnd.Sub(c.at))
		}
	}
	if got := metricValue(t, reg, "cooldowns_total"); got != 1 {
		t.Errorf("got cooldowns_total %v, want 1", got)
	}
	if got := metricValue(t, reg, "ratelimit_rejected_total"); got != 1 {
		t.Errorf("got ratelimit_rejected_total %v, want 1", got)
	}
}

// TestDoCooldownQueued checks a POST that was already waiting for its rate-limit slot when
// another POST met a 429: it has not reached the vendor yet, so the cool-down holds it too.
func TestDoCooldownQueued(t *testing.T) {
	// It waits out a whole-second Retry-After: it runs alongside the other tests that do.
	t.Parallel()
	release := make(chan struct{})
	v := newVendorFunc(t, func(_ call, n int) answer {
		if n == 1 {
			<-release
			return answer{status: 429, header: map[string]string{"Retry-After": "1"}, body: `{"message":"Too Many Requests"}`}
		}
		return answer{status: 200, body: searchStarted}
	})
	limits := &reserveSignal{signalLimits: signalLimits{LocalLimits: NewLocalLimits(), held: make(chan hold, 16)},
		reserved: make(chan time.Duration, 16)}
	// Answer the held call whatever happens, before the server's Close waits for it.
	answer429 := sync.OnceFunc(func() { close(release) })
	t.Cleanup(answer429)
	// 4/s: the second POST's slot is 255 ms after the first's, room enough for the first to
	// reach the vendor before the second asks for its slot.
	c, _ := newClient(t, Config{Policy: enrowPolicy(v.URL(), 4), Secret: "K", Limits: limits})
	find := func() *Request {
		return post("/email/find/single", `{"fullname":"Tim Cook","company_domain":"apple.com"}`)
	}

	results := make(chan error, 2)
	do := func() {
		out, err := c.Do(t.Context(), find())
		if err == nil && out.Envelope.Status != normalize.StatusPending {
			err = errors.New("answered " + string(out.Envelope.Status))
		}
		results <- err
	}
	go do()
	<-limits.reserved // the first POST's slot
	v.waitArrival(t)  // the first POST is at the vendor, its answer held
	go do()
	if wait := <-limits.reserved; wait <= 0 {
		t.Fatalf("got a wait of %v for the second POST's slot, want it queued behind the first", wait)
	}
	answer429() // the vendor answers the first POST 429
	h := limits.waitHold(t)
	coolEnd := h.start.Add(h.d)
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("got %v, want both POSTs through after the cool-down", err)
		}
	}

	calls := v.received()
	if len(calls) != 3 {
		t.Fatalf("got %d vendor calls, want 3 (429, the retry, the queued POST)", len(calls))
	}
	for i, c := range calls[1:] {
		if c.at.Before(coolEnd) {
			t.Errorf("call %d reached the vendor %v before the cool-down ended", i+2, coolEnd.Sub(c.at).Round(time.Millisecond))
		}
	}
}

// reserveSignal is signalLimits that also announces the wait of every slot reserved.
type reserveSignal struct {
	signalLimits
	reserved chan time.Duration
}

func (l *reserveSignal) Reserve(ctx context.Context, key string, perSecond float64) (time.Duration, func(), error) {
	wait, cancel, err := l.signalLimits.Reserve(ctx, key, perSecond)
	l.reserved <- wait
	return wait, cancel, err
}

// untilMidnight is the whole seconds from now to the next midnight UTC.
func untilMidnight() int { return normalize.CeilSeconds(normalize.UntilMidnightUTC(time.Now())) }

// near reports whether got is within 2 of want.
func near(got, want int) bool { return got >= want-2 && got <= want+2 }

// TestDoDailyQuota checks eCore's daily test-token cap: quota_exceeded with the wait to
// midnight UTC, never retried, then remembered for that credential only.
func TestDoDailyQuota(t *testing.T) {
	v := newVendorFunc(t, func(c call, _ int) answer {
		if c.header.Get("Authorization") == "Token capped" {
			return answer{status: 429, body: eCoreDailyBody}
		}
		return answer{status: 200, body: eCoreFound}
	})
	c, reg := newClient(t, Config{Name: normalize.ECore, Policy: testPolicy(v.URL())})
	find := func(token string) *Request {
		return withKey(post("/external/email/enrichment/", `{"linkedin_url":"https://linkedin.com/in/x"}`), "Authorization", "Token "+token)
	}

	out, err := c.Do(t.Context(), find("capped"))
	wantEnvelope(t, out, err, normalize.StatusQuotaExceeded, normalize.CodeDailyQuota)
	if out.Attempts != 1 || v.count() != 1 {
		t.Errorf("got %d attempts and %d vendor calls, want 1 and 1", out.Attempts, v.count())
	}
	if got, want := out.Envelope.RetryAfterSeconds, untilMidnight(); !near(got, want) {
		t.Errorf("got retry_after_seconds %d, want %d ± 2 (to midnight UTC)", got, want)
	}
	if got := metricValue(t, reg, "retries_total"); got != 0 {
		t.Errorf("got retries_total %v, want 0", got)
	}

	out, err = c.Do(t.Context(), find("capped"))
	e := wantError(t, err, normalize.StatusQuotaExceeded, normalize.CodeDailyQuota)
	if got, want := normalize.CeilSeconds(e.RetryAfter), untilMidnight(); !near(got, want) {
		t.Errorf("got RetryAfter %ds, want %d ± 2 (to midnight UTC)", got, want)
	}
	if out.Attempts != 0 || v.count() != 1 {
		t.Errorf("got %d attempts and %d vendor calls, want 0 and 1: the proxy answers for the vendor", out.Attempts, v.count())
	}

	out, err = c.Do(t.Context(), find("other"))
	wantEnvelope(t, out, err, normalize.StatusOK, "")
	if v.count() != 2 {
		t.Errorf("got %d vendor calls, want 2: another credential is not held", v.count())
	}
}

// TestDoDailyQuotaAcrossSchemes checks that the remembered quota belongs to the token, not
// to the header it travels in: a configured eCore token goes as Token on most endpoints and
// as Bearer on /enrichment/, and its daily cap is the same on both.
func TestDoDailyQuotaAcrossSchemes(t *testing.T) {
	v := newVendor(t, answer{status: 429, body: eCoreDailyBody})
	c, _ := newClient(t, Config{Name: normalize.ECore, Policy: testPolicy(v.URL()), Secret: "S"})

	out, err := c.Do(t.Context(), post("/external/email/enrichment/", `{"linkedin_url":"https://linkedin.com/in/x"}`))
	wantEnvelope(t, out, err, normalize.StatusQuotaExceeded, normalize.CodeDailyQuota)

	_, err = c.Do(t.Context(), get("/enrichment/status/7/"))
	wantError(t, err, normalize.StatusQuotaExceeded, normalize.CodeDailyQuota)
	if got := v.count(); got != 1 {
		t.Errorf("got %d vendor calls, want 1", got)
	}
}

// TestDoDeadline checks that a request ends at its deadline, not later, whatever the
// attempt timeout.
func TestDoDeadline(t *testing.T) {
	const deadline = 100 * time.Millisecond
	tests := []struct {
		name           string
		method         string
		attemptTimeout time.Duration
		wantAttempts   int
	}{
		{name: "GET hangs, attempt timeout beyond the deadline", method: http.MethodGet, attemptTimeout: time.Second, wantAttempts: 1},
		{name: "POST hangs, attempt timeout beyond the deadline", method: http.MethodPost, attemptTimeout: time.Second, wantAttempts: 1},
		{name: "GET hangs, the first attempt times out and the retry is cut by the deadline", method: http.MethodGet,
			attemptTimeout: 60 * time.Millisecond, wantAttempts: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVendor(t, answer{hang: true})
			pol := testPolicy(v.URL())
			pol.AttemptTimeout = tc.attemptTimeout
			c, _ := newClient(t, Config{Policy: pol})

			start := time.Now()
			out, err := c.Do(timeoutCtx(t, deadline), &Request{Method: tc.method, Path: "/account/info"})
			elapsed := time.Since(start)

			wantError(t, err, normalize.StatusTimeout, normalize.CodeDeadlineExceeded)
			if elapsed < deadline-5*time.Millisecond || elapsed > deadline+100*time.Millisecond {
				t.Errorf("ended after %v, want at the %v deadline", elapsed, deadline)
			}
			if out.Attempts != tc.wantAttempts {
				t.Errorf("got %d attempts, want %d", out.Attempts, tc.wantAttempts)
			}
		})
	}
}

// TestDoRetryBudget checks that past the retry budget no retry is made: the vendor's last
// answer is returned, flagged, and counted.
func TestDoRetryBudget(t *testing.T) {
	v := newVendor(t, answer{status: 503, body: generic500})
	pol := testPolicy(v.URL())
	pol.MaxAttempts = 2
	// max(0 × requests, 0.1/s × 10 s): one retry in the window.
	pol.RetryBudget = BudgetPolicy{Ratio: 0, MinPerSecond: 0.1, Window: 10 * time.Second}
	c, reg := newClient(t, Config{Policy: pol})

	out, err := c.Do(t.Context(), get("/account/info"))
	wantEnvelope(t, out, err, normalize.StatusUpstreamError, normalize.CodeVendorError)
	if out.Attempts != 2 || out.BudgetExhausted {
		t.Errorf("first request: got %d attempts, budget exhausted %v; want 2, false", out.Attempts, out.BudgetExhausted)
	}

	out, err = c.Do(t.Context(), get("/account/info"))
	wantEnvelope(t, out, err, normalize.StatusUpstreamError, normalize.CodeVendorError)
	if out.Attempts != 1 || !out.BudgetExhausted {
		t.Errorf("second request: got %d attempts, budget exhausted %v; want 1, true", out.Attempts, out.BudgetExhausted)
	}
	if out.StatusCode != 503 {
		t.Errorf("got upstream status %d, want the vendor's last answer, 503", out.StatusCode)
	}
	if got := v.count(); got != 3 {
		t.Errorf("got %d vendor calls, want 3", got)
	}
	if got := metricValue(t, reg, "retry_budget_exhausted_total", "vendor", "enrow"); got != 1 {
		t.Errorf("got retry_budget_exhausted_total %v, want 1", got)
	}
	if got := metricValue(t, reg, "retries_total", "reason", metrics.ReasonStatus5xx); got != 1 {
		t.Errorf("got retries_total{reason=status_5xx} %v, want 1", got)
	}
}

// TestDoConcurrentSafety runs requests in parallel through one client, for the race
// detector: breaker, budget, limits and metrics are shared.
func TestDoConcurrentSafety(t *testing.T) {
	v := newVendor(t, answer{status: 503, body: generic500}, answer{status: 200, body: accountOK})
	c, _ := newClient(t, Config{Policy: enrowPolicy(v.URL(), 1000)})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, _ = c.Do(t.Context(), get("/account/info"))
			_, _ = c.Do(t.Context(), post("/email/find/single", `{}`))
			_ = c.CircuitState()
		})
	}
	wg.Wait()
}

// TestDoDownloadOutlivesAttemptTimeout: a streamed answer (a file) is bounded by the
// request's deadline, not the attempt's timeout, with either transport: its body is read
// whole although it takes longer than the attempt may.
func TestDoDownloadOutlivesAttemptTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		tr   func() http.RoundTripper
	}{
		{"h1", func() http.RoundTripper { return newH1Transport() }},
		{"net/http", func() http.RoundTripper { return &http.Transport{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			more := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/csv")
				w.Header().Set("Content-Disposition", `attachment; filename="r.csv"`)
				io.WriteString(w, "email\n")
				w.(http.Flusher).Flush()
				select {
				case <-more:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "a@b.c\n")
			}))
			defer srv.Close()
			tr := tc.tr()
			defer tr.(interface{ CloseIdleConnections() }).CloseIdleConnections()
			pol := testPolicy(srv.URL)
			pol.AttemptTimeout = 50 * time.Millisecond
			c, _ := newClient(t, Config{Name: normalize.ECore, Policy: pol, Transport: tr})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := c.Do(ctx, &Request{Method: http.MethodGet, Path: "/validation/jobs/1/download/"})
			if err != nil || out.Stream == nil {
				t.Fatalf("got %v, stream %v; want a streamed answer", err, out.Stream != nil)
			}
			defer out.Stream.Close()
			first := make([]byte, 6)
			if _, err := io.ReadFull(out.Stream, first); err != nil {
				t.Fatalf("first part: %v", err)
			}
			<-time.After(3 * pol.AttemptTimeout) // the attempt's timeout is well past
			close(more)
			rest, err := io.ReadAll(out.Stream)
			if got := string(first) + string(rest); err != nil || got != "email\na@b.c\n" {
				t.Fatalf("got %q, %v; want the whole file", got, err)
			}
		})
	}
}

// TestDoHeadAndBaseURLCredentials: a HEAD's answer has no body whatever its
// Content-Length says (one call, no error); credentials in the base URL go as basic auth,
// as http.Client sends them; a client's Expect is not forwarded.
func TestDoHeadAndBaseURLCredentials(t *testing.T) {
	type seen struct{ method, auth, expect string }
	calls := make(chan seen, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls <- seen{r.Method, r.Header.Get("Authorization"), r.Header.Get("Expect")}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "11")
		if r.Method != http.MethodHead {
			io.WriteString(w, `{"ok":true}`)
		}
	}))
	defer srv.Close()
	base := strings.Replace(srv.URL, "http://", "http://gw:s3cret@", 1)
	c, _ := newClient(t, Config{Name: normalize.Enrow, Policy: testPolicy(base)})
	ctx := timeoutCtx(t, 5*time.Second)

	out, err := c.Do(ctx, &Request{Method: http.MethodHead, Path: "/account/info"})
	if err != nil || out.Attempts != 1 || out.StatusCode != http.StatusOK {
		t.Fatalf("HEAD: got %v after %d attempts (status %d), want the answer after one", err, out.Attempts, out.StatusCode)
	}
	if got := <-calls; got.method != http.MethodHead || got.auth != "Basic Z3c6czNjcmV0" {
		t.Errorf("HEAD reached the vendor as %+v, want basic auth from the base URL", got)
	}
	if len(calls) != 0 {
		t.Errorf("%d more vendor calls, want none", len(calls))
	}

	h := http.Header{"Expect": {"100-continue"}}
	if _, err := c.Do(ctx, &Request{Method: http.MethodPost, Path: "/email/find/single", Header: h, Body: []byte(`{}`)}); err != nil {
		t.Fatalf("POST: %v", err)
	}
	if got := <-calls; got.expect != "" {
		t.Errorf("the vendor got Expect %q, want none", got.expect)
	}
}
