package upstream

import (
	"sync"
	"time"
)

// budget is a vendor's retry budget: over a sliding window, retries may be at most
// max(ratio × client requests in the window, minPerSecond × window seconds) (SPEC 4).
// The window is kept as ten buckets, so it slides in tenths.
type budget struct {
	ratio, floor float64
	bucket       time.Duration

	mu      sync.Mutex
	slots   [10]budgetSlot
	current int64 // index of the bucket now, in bucket periods since the epoch
}

type budgetSlot struct {
	at                int64
	requests, retries int
}

func newBudget(p BudgetPolicy) *budget {
	window := p.Window
	if window <= 0 {
		window = 10 * time.Second
	}
	return &budget{ratio: p.Ratio, floor: p.MinPerSecond * window.Seconds(), bucket: max(window/10, time.Millisecond)}
}

// request counts one client request.
func (b *budget) request(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.slot(now).requests++
}

// retry reports whether one more retry fits, and counts it when it does.
func (b *budget) retry(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.slot(now)
	var requests, retries int
	for i := range b.slots {
		if b.current-b.slots[i].at < int64(len(b.slots)) {
			requests += b.slots[i].requests
			retries += b.slots[i].retries
		}
	}
	if float64(retries+1) > max(b.ratio*float64(requests), b.floor) {
		return false
	}
	s.retries++
	return true
}

// slot returns the bucket for now, clearing it when it last held an older period.
func (b *budget) slot(now time.Time) *budgetSlot {
	b.current = now.UnixNano() / int64(b.bucket)
	s := &b.slots[b.current%int64(len(b.slots))]
	if s.at != b.current {
		*s = budgetSlot{at: b.current}
	}
	return s
}
