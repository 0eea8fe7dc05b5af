package upstream

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

// TestRateLimiterSpacing checks that shaped requests are spaced out (a burst of 1), not let
// through together, and that unshaped methods are not held at all.
func TestRateLimiterSpacing(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		perSecond float64
		n         int
		wantMin   time.Duration // least spread of the vendor arrivals
		wantMax   time.Duration // most time for all of them; 0: no bound
	}{
		// 5 gaps of 1/50 s (a little more: the limiter widens them by 10 %) = 110 ms.
		{name: "6 POSTs at 50/s are spread over 100 ms", method: http.MethodPost, perSecond: 50, n: 6, wantMin: 80 * time.Millisecond},
		// Were they limited, 6 GETs at 10/s would take 500 ms.
		{name: "6 GETs at 10/s are not limited", method: http.MethodGet, perSecond: 10, n: 6, wantMax: 250 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVendor(t, answer{status: 200, body: searchStarted})
			c, reg := newClient(t, Config{Policy: enrowPolicy(v.URL(), tc.perSecond), Secret: "K"})

			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, tc.n)
			for i := range tc.n {
				wg.Go(func() {
					// Distinct ids: identical concurrent GETs would share one call.
					_, err := c.Do(t.Context(), &Request{Method: tc.method, Path: "/email/find/single",
						RawQuery: fmt.Sprintf("id=%d", i), Body: []byte(`{}`)})
					errs <- err
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("got error %v, want every request through", err)
				}
			}

			calls := v.received()
			if len(calls) != tc.n {
				t.Fatalf("got %d vendor calls, want %d", len(calls), tc.n)
			}
			at := make([]time.Time, len(calls))
			for i, c := range calls {
				at[i] = c.at
			}
			first, last := slices.MinFunc(at, time.Time.Compare), slices.MaxFunc(at, time.Time.Compare)
			if spread := last.Sub(first); spread < tc.wantMin {
				t.Errorf("got vendor arrivals spread over %v, want at least %v", spread, tc.wantMin)
			}
			if tc.wantMax > 0 && elapsed > tc.wantMax {
				t.Errorf("took %v, want under %v", elapsed, tc.wantMax)
			}
			if got := metricValue(t, reg, "ratelimit_rejected_total"); got != 0 {
				t.Errorf("got ratelimit_rejected_total %v, want 0", got)
			}
		})
	}
}

// TestRateLimiterQueueFull checks that a request whose wait for a token cannot fit
// max_queue_wait or its deadline is answered local_rate_limited at once, without a vendor
// call, and gives its slot back.
func TestRateLimiterQueueFull(t *testing.T) {
	tests := []struct {
		name         string
		maxQueueWait time.Duration
		deadline     time.Duration
	}{
		{name: "wait over max_queue_wait", maxQueueWait: 50 * time.Millisecond},
		{name: "wait over the deadline", maxQueueWait: time.Second, deadline: 30 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVendor(t, answer{status: 200, body: searchStarted})
			pol := enrowPolicy(v.URL(), 10) // a slot every 110 ms
			pol.MaxQueueWait = tc.maxQueueWait
			c, reg := newClient(t, Config{Policy: pol, Secret: "K"})
			find := func() *Request { return post("/email/find/single", `{}`) }

			if _, err := c.Do(t.Context(), find()); err != nil {
				t.Fatalf("first POST: %v", err)
			}
			ctx := t.Context()
			if tc.deadline > 0 {
				ctx = timeoutCtx(t, tc.deadline)
			}
			start := time.Now()
			out, err := c.Do(ctx, find())
			elapsed := time.Since(start)

			e := wantError(t, err, normalize.StatusRateLimited, normalize.CodeLocalRateLimited)
			if e.RetryAfter <= 0 || e.RetryAfter > 110*time.Millisecond {
				t.Errorf("got RetryAfter %v, want the wait for the next slot, in (0, 110ms]", e.RetryAfter)
			}
			if elapsed > 50*time.Millisecond {
				t.Errorf("took %v, want at once", elapsed)
			}
			if out.Attempts != 0 || v.count() != 1 {
				t.Errorf("got %d attempts and %d vendor calls, want 0 and 1", out.Attempts, v.count())
			}
			if got := metricValue(t, reg, "ratelimit_rejected_total"); got != 1 {
				t.Errorf("got ratelimit_rejected_total %v, want 1", got)
			}
		})
	}
}

// TestRateLimiterPerCredential checks that buckets are per credential: two keys do not
// wait for each other.
func TestRateLimiterPerCredential(t *testing.T) {
	v := newVendor(t, answer{status: 200, body: searchStarted})
	pol := enrowPolicy(v.URL(), 10)
	pol.MaxQueueWait = 50 * time.Millisecond
	c, _ := newClient(t, Config{Policy: pol})

	for _, key := range []string{"A", "B"} {
		if _, err := c.Do(t.Context(), withKey(post("/email/find/single", `{}`), "X-Api-Key", key)); err != nil {
			t.Errorf("key %s: got %v, want its own bucket's first slot", key, err)
		}
	}
	_, err := c.Do(t.Context(), withKey(post("/email/find/single", `{}`), "X-Api-Key", "A"))
	wantError(t, err, normalize.StatusRateLimited, normalize.CodeLocalRateLimited)
}

// TestLocalLimitsReserveCancel checks that a reservation given back frees its slot.
func TestLocalLimitsReserveCancel(t *testing.T) {
	l := NewLocalLimits()
	now := time.Unix(1_000_000, 0)
	l.now = func() time.Time { return now }

	wait, _, _ := l.Reserve(t.Context(), "k", 10)
	if wait != 0 {
		t.Fatalf("first slot: got wait %v, want 0", wait)
	}
	wait, cancel, _ := l.Reserve(t.Context(), "k", 10)
	if wait <= 0 {
		t.Fatalf("second slot: got wait %v, want > 0", wait)
	}
	cancel()
	again, _, _ := l.Reserve(t.Context(), "k", 10)
	if again != wait {
		t.Errorf("after giving the second slot back: got wait %v, want %v", again, wait)
	}
}

// TestLocalLimitsHold checks holds: they end on time and never shorten.
func TestLocalLimitsHold(t *testing.T) {
	l := NewLocalLimits()
	now := time.Unix(1_000_000, 0)
	l.now = func() time.Time { return now }

	_ = l.Hold(t.Context(), "k", 10*time.Second)
	_ = l.Hold(t.Context(), "k", time.Second) // shorter: ignored
	if left, _ := l.HoldLeft(t.Context(), "k"); left != 10*time.Second {
		t.Errorf("got %v left, want 10s", left)
	}
	now = now.Add(10 * time.Second)
	if left, _ := l.HoldLeft(t.Context(), "k"); left != 0 {
		t.Errorf("got %v left at the end, want 0", left)
	}
	if left, _ := l.HoldLeft(t.Context(), "other"); left != 0 {
		t.Errorf("got %v left on a key never held, want 0", left)
	}
}
