package upstream

import (
	"testing"
	"time"
)

// TestBudget checks the retry budget over its sliding window: at most
// max(ratio × requests, min_per_second × window seconds) retries, with old requests and
// retries leaving the window.
func TestBudget(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	tests := []struct {
		name     string
		policy   BudgetPolicy
		requests int           // made at t0
		at       time.Duration // when the retries are asked for, after t0
		want     int           // retries allowed
	}{
		{name: "20 % of 50 requests", policy: BudgetPolicy{Ratio: 0.2, Window: time.Second}, requests: 50, want: 10},
		{name: "the floor over the ratio", policy: BudgetPolicy{Ratio: 0.2, MinPerSecond: 3, Window: 10 * time.Second}, requests: 50, want: 30},
		{name: "the ratio over the floor", policy: BudgetPolicy{Ratio: 0.2, MinPerSecond: 3, Window: 10 * time.Second}, requests: 500, want: 100},
		{name: "a tenth of a retry per second over 10 s", policy: BudgetPolicy{MinPerSecond: 0.1, Window: 10 * time.Second}, requests: 5, want: 1},
		{name: "requests that left the window count no more", policy: BudgetPolicy{Ratio: 0.2, Window: time.Second}, requests: 50,
			at: 1100 * time.Millisecond, want: 0},
		{name: "requests still in the window count", policy: BudgetPolicy{Ratio: 0.2, Window: time.Second}, requests: 50,
			at: 850 * time.Millisecond, want: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBudget(tc.policy)
			for range tc.requests {
				b.request(t0)
			}
			got := 0
			for b.retry(t0.Add(tc.at)) {
				got++
				if got > 10*tc.want+10 {
					break
				}
			}
			if got != tc.want {
				t.Errorf("got %d retries allowed, want %d", got, tc.want)
			}
		})
	}
}

// TestBudgetSlides checks that spent retries leave the window too.
func TestBudgetSlides(t *testing.T) {
	b := newBudget(BudgetPolicy{MinPerSecond: 2, Window: time.Second}) // 2 per window
	t0 := time.Unix(1_000_000, 0)
	for i := range 2 {
		if !b.retry(t0) {
			t.Fatalf("retry %d at t0: refused, want allowed", i+1)
		}
	}
	if b.retry(t0.Add(500 * time.Millisecond)) {
		t.Fatal("third retry within the window: allowed, want refused")
	}
	if !b.retry(t0.Add(1100 * time.Millisecond)) {
		t.Error("retry after the first two left the window: refused, want allowed")
	}
}
