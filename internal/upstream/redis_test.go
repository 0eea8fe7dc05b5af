package upstream

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/enrichproxy/enrichproxy/internal/metrics"
	"github.com/enrichproxy/enrichproxy/internal/redistest"
)

// Log messages of RedisLimits' state changes.
const (
	msgRedisDown = "redis unreachable; using in-process limits"
	msgRedisBack = "redis reachable again"
)

// slotTolerance is how far a slot may land from its place on the schedule, beyond the
// time its Reserve call took: timer and clock noise, with room for the race detector.
const slotTolerance = 10 * time.Millisecond

// observedRedisLimits is a RedisLimits with its registry and its log lines.
type observedRedisLimits struct {
	*RedisLimits
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
}

// newTestRedisLimits connects to url with a fresh registry and an observed logger; probe is
// how often an unreachable Redis is tried again. The limits are closed when the test ends.
func newTestRedisLimits(t *testing.T, url string, probe time.Duration) *observedRedisLimits {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	reg := prometheus.NewRegistry()
	l, err := newRedisLimits(url, metrics.New(reg, "test"), zap.New(core), redisTimeout, probe)
	if err != nil {
		t.Fatalf("newRedisLimits: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &observedRedisLimits{RedisLimits: l, reg: reg, logs: logs}
}

// wantFallback fails the test unless enrichproxy_redis_fallback reads want.
func (l *observedRedisLimits) wantFallback(t *testing.T, want int) {
	t.Helper()
	exp := fmt.Sprintf(`# HELP enrichproxy_redis_fallback 1 while in-process limits stand in for an unreachable Redis.
# TYPE enrichproxy_redis_fallback gauge
enrichproxy_redis_fallback %d
`, want)
	if err := testutil.GatherAndCompare(l.reg, strings.NewReader(exp), "enrichproxy_redis_fallback"); err != nil {
		t.Error(err)
	}
}

// logged is how many lines with msg were logged.
func (l *observedRedisLimits) logged(msg string) int { return l.logs.FilterMessage(msg).Len() }

// slot is when a reserved slot is, by the local clock: the wait counts from a moment
// inside the Reserve call, so the slot lies between the call's start and end plus the wait.
type slot struct{ lo, hi time.Time }

// redisReserveAt takes a slot of key at perSecond.
func redisReserveAt(t *testing.T, l Limits, key string, perSecond float64) (slot, func()) {
	t.Helper()
	began := time.Now()
	wait, cancel, err := l.Reserve(t.Context(), key, perSecond)
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	return slot{lo: began.Add(wait), hi: time.Now().Add(wait)}, cancel
}

// wantAfter fails the test unless s can be want after first, within slotTolerance. A
// Reserve call held up (a busy machine) widens the slots' bounds, never fails the test.
func wantAfter(t *testing.T, what string, s, first slot, want time.Duration) {
	t.Helper()
	lo, hi := s.lo.Sub(first.hi), s.hi.Sub(first.lo)
	if want < lo-slotTolerance || want > hi+slotTolerance {
		t.Errorf("%s: got %v after the first (up to %v), want %v", what, lo, hi, want)
	}
}

func TestRedisLimitsSpacing(t *testing.T) {
	srv := redistest.Start(t)
	const perSecond = 10
	interval := time.Duration(float64(time.Second) * spacing / perSecond)

	tests := []struct {
		name string
		// limits are used in turn, one reservation each.
		limits func(t *testing.T) []Limits
	}{
		{name: "in-process", limits: func(*testing.T) []Limits { return []Limits{NewLocalLimits()} }},
		{name: "one Redis client", limits: func(t *testing.T) []Limits {
			return []Limits{newTestRedisLimits(t, srv.URL(), time.Second)}
		}},
		{name: "two Redis clients share one schedule", limits: func(t *testing.T) []Limits {
			return []Limits{newTestRedisLimits(t, srv.URL(), time.Second), newTestRedisLimits(t, srv.URL(), time.Second)}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			limits := tc.limits(t)
			key := "rate:enrow:" + strings.ReplaceAll(tc.name, " ", "-")
			var first, at slot
			for i := range perSecond + 1 {
				at, _ = redisReserveAt(t, limits[i%len(limits)], key, perSecond)
				if i == 0 {
					first = at
				}
				wantAfter(t, fmt.Sprintf("slot %d", i), at, first, time.Duration(i)*interval)
			}
			// perSecond+1 slots never fit in one second.
			if got := at.hi.Sub(first.lo); got < time.Second {
				t.Errorf("got %d slots within %v, want at most %d in a second", perSecond+1, got, perSecond)
			}
		})
	}
}

func TestRedisLimitsCancel(t *testing.T) {
	srv := redistest.Start(t)
	a := newTestRedisLimits(t, srv.URL(), time.Second)
	b := newTestRedisLimits(t, srv.URL(), time.Second)
	interval := time.Duration(float64(time.Second) * spacing / 10)
	const key = "rate:enrow:cancel"

	first, _ := redisReserveAt(t, a, key, 10)
	_, cancel := redisReserveAt(t, a, key, 10)
	cancel()
	// The last slot given back is the next one taken, by any replica.
	at, _ := redisReserveAt(t, b, key, 10)
	wantAfter(t, "after a cancel, the next slot", at, first, interval)
	// A slot with later reservations behind it stays taken (as with rate.Limiter).
	_, cancel = redisReserveAt(t, a, key, 10)
	redisReserveAt(t, b, key, 10)
	cancel()
	at, _ = redisReserveAt(t, a, key, 10)
	wantAfter(t, "after cancelling an inner slot, the next slot", at, first, 4*interval)
}

func TestRedisLimitsHold(t *testing.T) {
	srv := redistest.Start(t)
	a := newTestRedisLimits(t, srv.URL(), time.Second)
	b := newTestRedisLimits(t, srv.URL(), time.Second)
	ctx := t.Context()
	const key = "cool:enrow:hold"

	wantLeft := func(l Limits, want time.Duration) {
		t.Helper()
		got, err := l.HoldLeft(ctx, key)
		if err != nil {
			t.Fatalf("HoldLeft: %v", err)
		}
		if got > want || got < want-100*time.Millisecond {
			t.Errorf("got %v left, want %v (less the time since)", got, want)
		}
	}
	hold := func(l Limits, d time.Duration) {
		t.Helper()
		if err := l.Hold(ctx, key, d); err != nil {
			t.Fatalf("Hold: %v", err)
		}
	}

	wantLeft(a, 0)
	hold(a, 2*time.Second)
	wantLeft(b, 2*time.Second)
	hold(b, 500*time.Millisecond) // shorter: no change
	wantLeft(a, 2*time.Second)
	wantLeft(b, 2*time.Second)
	hold(b, 5*time.Second)
	wantLeft(a, 5*time.Second)
	redisReserveAt(t, a, "rate:enrow:hold", 10)

	// Every key is the proxy's and expires.
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", srv.Port()), Protocol: 2})
	defer rdb.Close()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("got no keys in Redis")
	}
	for _, k := range keys {
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		// -1 is a key without expiry; -2 one that expired since KEYS.
		if !strings.HasPrefix(k, redisPrefix) || ttl == -1 {
			t.Errorf("got key %q with ttl %v, want the %q prefix and an expiry", k, ttl, redisPrefix)
		}
	}
}

func TestRedisLimitsFallback(t *testing.T) {
	srv := redistest.Start(t)
	a := newTestRedisLimits(t, srv.URL(), 50*time.Millisecond)
	ctx := t.Context()
	interval := time.Duration(float64(time.Second) * spacing / 10)

	redisReserveAt(t, a, "rate:enrow:fallback", 10)
	a.wantFallback(t, 0)

	srv.Kill()
	// Calls in flight when Redis goes away all fail over; the switch is logged once.
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if _, err := a.HoldLeft(ctx, "cool:enrow:fallback"); err != nil {
				t.Errorf("HoldLeft: %v", err)
			}
		})
	}
	wg.Wait()
	// Shaping goes on in process: three slots, spaced.
	var first slot
	for i := range 3 {
		at, _ := redisReserveAt(t, a, "rate:enrow:fallback", 10)
		if i == 0 {
			first = at
		}
		wantAfter(t, fmt.Sprintf("fallback slot %d", i), at, first, time.Duration(i)*interval)
	}
	if err := a.Hold(ctx, "cool:enrow:fallback", 3*time.Second); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	for range 20 {
		began := time.Now()
		left, err := a.HoldLeft(ctx, "cool:enrow:fallback")
		if err != nil || left <= 2*time.Second {
			t.Fatalf("HoldLeft in fallback: got %v, %v; want the hold, no error", left, err)
		}
		// Redis is skipped until the probe finds it: no call pays for a Redis round trip.
		if d := time.Since(began); d >= redisTimeout {
			t.Errorf("HoldLeft in fallback took %v, want well under %v", d, redisTimeout)
		}
	}
	a.wantFallback(t, 1)
	if got := a.logged(msgRedisDown); got != 1 {
		t.Errorf("got %d %q lines, want 1", got, msgRedisDown)
	}

	srv.Restart()
	waitLogged(t, a, msgRedisBack, 5*time.Second)
	a.wantFallback(t, 0)
	if got := a.logged(msgRedisDown); got != 1 {
		t.Errorf("after recovery: got %d %q lines, want 1", got, msgRedisDown)
	}
	// The restarted Redis is empty; the replica still remembers the hold it met.
	if left, _ := a.HoldLeft(ctx, "cool:enrow:fallback"); left <= time.Second {
		t.Errorf("after recovery: got %v left of the hold, want over 1s", left)
	}
	// Sharing resumes: a second replica's slot follows the first's.
	b := newTestRedisLimits(t, srv.URL(), time.Second)
	first, _ = redisReserveAt(t, a, "rate:enrow:after", 10)
	at, _ := redisReserveAt(t, b, "rate:enrow:after", 10)
	wantAfter(t, "after recovery, the second replica's slot", at, first, interval)
	if got := a.logged(msgRedisDown) + b.logged(msgRedisDown); got != 1 {
		t.Errorf("after recovery: got %d %q lines in all, want 1", got, msgRedisDown)
	}
}

// An unresponsive Redis (it accepts connections and never answers) costs the short timeout
// once, not on every call.
func TestRedisLimitsUnresponsive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	})

	began := time.Now()
	l := newTestRedisLimits(t, "redis://"+ln.Addr().String(), 50*time.Millisecond)
	if d := time.Since(began); d > 2*redisTimeout {
		t.Errorf("NewRedisLimits took %v, want about %v", d, redisTimeout)
	}
	l.wantFallback(t, 1)
	for i := range 20 {
		began := time.Now()
		if _, _, err := l.Reserve(t.Context(), "rate:enrow:blackhole", 1000); err != nil {
			t.Fatalf("Reserve: %v", err)
		}
		if err := l.Hold(t.Context(), "cool:enrow:blackhole", time.Second); err != nil {
			t.Fatalf("Hold: %v", err)
		}
		if left, err := l.HoldLeft(t.Context(), "cool:enrow:blackhole"); err != nil || left <= 0 {
			t.Fatalf("HoldLeft: got %v, %v; want the hold, no error", left, err)
		}
		if d := time.Since(began); d >= redisTimeout {
			t.Errorf("call %d took %v, want well under %v", i, d, redisTimeout)
		}
	}
	if got := l.logged(msgRedisDown); got != 1 {
		t.Errorf("got %d %q lines, want 1", got, msgRedisDown)
	}
}

func TestRedisLimitsBadURL(t *testing.T) {
	for _, url := range []string{
		"http://127.0.0.1:1",
		"redis://user:s3cret@127.0.0.1:1/0?dial_timeout=soon",
		"redis://user:s3cret@127.0.0.1:1/%zz",
	} {
		_, err := NewRedisLimits(url, nil, nil)
		if err == nil {
			t.Errorf("%s: got no error, want one", url)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("got error %q, want one without the password", err)
		}
	}
}

// waitLogged waits until msg is logged, failing the test after limit. The probe runs on
// its own clock; the log line is the event.
func waitLogged(t *testing.T, l *observedRedisLimits, msg string, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	for l.logged(msg) == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("%q was not logged within %v", msg, limit)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
