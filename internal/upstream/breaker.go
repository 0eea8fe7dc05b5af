package upstream

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// errAttemptFailed is what the breaker is told for an attempt that counts as a failure;
// errExcluded for one that counts as nothing (the client went away).
var (
	errAttemptFailed = errors.New("attempt failed")
	errExcluded      = errors.New("attempt excluded")
)

// breaker wraps the vendor's gobreaker two-step breaker: each attempt asks Allow, then
// reports its outcome. It remembers when it opened, to tell callers how long to wait.
type breaker struct {
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	open     time.Duration
	openedAt atomic.Int64 // unix nanoseconds of the last transition to open
	now      func() time.Time
}

// stateName is the label value of a breaker state (SPEC 11: closed, half_open, open).
func stateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return "open"
	case gobreaker.StateHalfOpen:
		return "half_open"
	default:
		return "closed"
	}
}

func newBreaker(name string, p BreakerPolicy, now func() time.Time, onChange func(to string)) *breaker {
	b := &breaker{open: p.OpenTimeout, now: now}
	consecutive, ratio, minRequests := p.ConsecutiveFailures, p.FailureRatio, p.MinRequests
	st := gobreaker.Settings{
		Name:        name,
		MaxRequests: p.HalfOpenRequests,
		Interval:    p.Interval,
		Timeout:     p.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if consecutive > 0 && c.ConsecutiveFailures >= consecutive {
				return true
			}
			attempts := c.Requests - min(c.TotalExclusions, c.Requests)
			return ratio > 0 && attempts >= minRequests &&
				float64(c.TotalFailures) >= ratio*float64(attempts)
		},
		IsSuccessful: func(err error) bool { return err == nil },
		IsExcluded:   func(err error) bool { return errors.Is(err, errExcluded) },
		// OnStateChange runs under the breaker's lock: it must not call the breaker.
		OnStateChange: func(_ string, _, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.openedAt.Store(now().UnixNano())
			}
			if onChange != nil {
				onChange(stateName(to))
			}
		},
	}
	// A rolling window of ten buckets, so "≥ 50 % over ≥ 20 attempts in 30 s" slides
	// instead of resetting every 30 s.
	if p.Interval > 0 {
		st.BucketPeriod = max(p.Interval/10, time.Millisecond)
	}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](st)
	return b
}

// allow admits one attempt. On refusal it returns a circuit_open Error whose RetryAfter is
// the time until the breaker lets probes through (1 s while half-open probes are busy,
// SPEC 11). It is not rounded: the proxy rounds it up to whole seconds for Retry-After,
// and callers in process (failover, polling) can use the exact time.
func (b *breaker) allow() (func(error), error) {
	done, err := b.cb.Allow()
	if err == nil {
		return done, nil
	}
	wait := time.Second
	if errors.Is(err, gobreaker.ErrOpenState) {
		opened := time.Unix(0, b.openedAt.Load())
		wait = max(opened.Add(b.open).Sub(b.now()), time.Millisecond)
	}
	return nil, circuitOpen(wait, err)
}

// state is 0 closed, 1 half-open, 2 open; read at scrape time, which also moves an open
// breaker whose timeout has passed to half-open.
func (b *breaker) state() float64 {
	switch b.cb.State() {
	case gobreaker.StateOpen:
		return 2
	case gobreaker.StateHalfOpen:
		return 1
	default:
		return 0
	}
}

// stateName is the breaker's state for the access log.
func (b *breaker) stateName() string { return stateName(b.cb.State()) }
