package upstream

import (
	"context"
	"errors"
	"fmt"
	"math"
	neturl "net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/zap"

	"github.com/enrichproxy/enrichproxy/internal/metrics"
)

const (
	// redisPrefix starts every key the proxy writes, so that it can share a Redis.
	redisPrefix = "enrichproxy:"
	// redisTimeout bounds every Redis call (dial, write, read): a slow Redis must never
	// stall a request for longer than this, and after a failure requests skip Redis.
	redisTimeout = 150 * time.Millisecond
	// redisProbeEvery is how often an unreachable Redis is tried again.
	redisProbeEvery = time.Second
)

// The Lua scripts run atomically in Redis and take the time from Redis itself, so that
// replicas whose clocks differ still share one schedule. Times are microseconds since the
// epoch (below 2^53: exact in Lua's doubles); every key expires.

// reserveScript takes the next slot of a GCRA schedule with a burst of 1, which is what
// golang.org/x/time/rate does in LocalLimits. KEYS[1] holds the schedule's end: the time at
// which the next slot is free (the theoretical arrival time). ARGV[1] is the interval
// between slots. It returns the wait before this slot and the schedule's new end, which
// identifies the reservation for cancelReserveScript.
var reserveScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local slot = tonumber(redis.call('GET', KEYS[1]) or 0)
if slot < now then slot = now end
local finish = slot + interval
redis.call('SET', KEYS[1], string.format('%.0f', finish), 'PX', math.ceil((finish - now) / 1000))
return {slot - now, finish}
`)

// cancelReserveScript gives a reserved slot back: when the schedule still ends with it
// (ARGV[1] is the end its reservation returned), the end moves back by one interval
// (ARGV[2]). A slot followed by later reservations stays taken, as with rate.Limiter.
var cancelReserveScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local cur = redis.call('GET', KEYS[1])
if not cur or tonumber(cur) ~= tonumber(ARGV[1]) then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local back = tonumber(ARGV[1]) - tonumber(ARGV[2])
if back <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.0f', back), 'PX', math.ceil((back - now) / 1000))
end
return 1
`)

// holdScript holds KEYS[1] for ARGV[1] milliseconds unless it is already held longer.
var holdScript = redis.NewScript(`
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
return 0
`)

// quietRedis silences go-redis's own logger, which writes to stderr outside the proxy's
// JSON log (a line per failed dial): RedisLimits logs Redis's state changes itself, once
// each. It is process-wide, so it is set once, before the first client exists.
var quietRedis sync.Once

// RedisLimits is the Limits shared through Redis by every replica that uses the same
// credential (SPEC 4, rate shaping): one GCRA schedule per bucket key and the holds, keyed
// as LocalLimits is, under the "enrichproxy:" prefix.
//
// It never fails a call because of Redis: on any Redis error or timeout it answers from
// its in-process LocalLimits, reports enrichproxy_redis_fallback 1 and logs it once, and
// skips Redis until a background probe, once a second, finds it working again. Holds are
// also written to the in-process limits, so that a replica remembers the cool-downs and
// quotas it met when Redis goes away.
type RedisLimits struct {
	rdb        *redis.Client
	local      *LocalLimits
	m          *metrics.Metrics
	log        *zap.Logger
	timeout    time.Duration
	probeEvery time.Duration

	// down is set while Redis is skipped; it is read on every call, changed under mu.
	down atomic.Bool

	mu     sync.Mutex
	closed bool
	// ctx lives as long as the limits: Close cancels it, which ends the probe and its call.
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// NewRedisLimits returns limits shared through the Redis at url (redis://, rediss:// or
// unix://; go-redis options in the query, such as dial_timeout, override the short
// defaults). Only a bad url is an error: an unreachable Redis starts the limits in
// fallback. Close releases the connections.
func NewRedisLimits(url string, m *metrics.Metrics, log *zap.Logger) (*RedisLimits, error) {
	return newRedisLimits(url, m, log, redisTimeout, redisProbeEvery)
}

func newRedisLimits(url string, m *metrics.Metrics, logger *zap.Logger, timeout, probeEvery time.Duration) (*RedisLimits, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		// A *url.Error quotes the whole URL, password included; go-redis's own messages
		// name only the part at fault.
		if uerr, ok := errors.AsType[*neturl.Error](err); ok {
			err = uerr.Err
		}
		return nil, fmt.Errorf("redis url: %w", err)
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = timeout
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = timeout
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = timeout
	}
	if opt.PoolTimeout == 0 {
		opt.PoolTimeout = timeout
	}
	if opt.MaxRetries == 0 {
		// A retry would double the time a request waits for a Redis that is failing;
		// the fallback answers instead.
		opt.MaxRetries = -1
	}
	if opt.Protocol == 0 {
		opt.Protocol = 2 // no HELLO on connect: one round trip less, any Redis version
	}
	opt.DialerRetries = 1
	opt.ContextTimeoutEnabled = true
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	quietRedis.Do(func() { redis.SetLogger(discardLogger{}) })

	if logger == nil {
		logger = zap.NewNop()
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &RedisLimits{
		rdb:        redis.NewClient(opt),
		local:      NewLocalLimits(),
		m:          m,
		log:        logger.Named("limits"),
		timeout:    timeout,
		probeEvery: probeEvery,
		ctx:        ctx,
		stop:       stop,
	}
	if err := r.check(ctx); err != nil {
		r.fail(err)
	} else {
		r.setGauge(false)
	}
	return r, nil
}

// Close stops the probe and closes the connections. Calls made after Close use the
// in-process limits.
func (r *RedisLimits) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.down.Store(true)
	r.stop()
	r.mu.Unlock()
	r.wg.Wait()
	return r.rdb.Close()
}

// Reserve implements Limits. The interval between slots is LocalLimits': spacing/perSecond.
func (r *RedisLimits) Reserve(ctx context.Context, key string, perSecond float64) (time.Duration, func(), error) {
	if r.down.Load() || !(perSecond > 0) || math.IsInf(perSecond, 1) {
		return r.local.Reserve(ctx, key, perSecond)
	}
	interval := max(time.Duration(float64(time.Second)*spacing/perSecond).Microseconds(), 1)
	rctx, cancel := r.callCtx(ctx)
	defer cancel()
	res, err := reserveScript.Run(rctx, r.rdb, []string{redisPrefix + key}, interval).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("reserve script returned %d values, want 2", len(res))
	}
	if err != nil {
		r.fail(err)
		return r.local.Reserve(ctx, key, perSecond)
	}
	wait := time.Duration(res[0]) * time.Microsecond
	end := res[1]
	return wait, func() {
		if r.down.Load() {
			return // best effort: the slot passes unused
		}
		cctx, cancel := r.callCtx(context.Background())
		defer cancel()
		if err := cancelReserveScript.Run(cctx, r.rdb, []string{redisPrefix + key}, end, interval).Err(); err != nil {
			r.fail(err)
		}
	}, nil
}

// HoldLeft implements Limits: the longer of the shared hold and the one this replica
// remembers (set while Redis was away, or lost with a Redis restart).
func (r *RedisLimits) HoldLeft(ctx context.Context, key string) (time.Duration, error) {
	local, _ := r.local.HoldLeft(ctx, key)
	if r.down.Load() {
		return local, nil
	}
	rctx, cancel := r.callCtx(ctx)
	defer cancel()
	left, err := r.rdb.PTTL(rctx, redisPrefix+key).Result()
	if err != nil {
		r.fail(err)
		return local, nil
	}
	// PTTL answers -2 (no key) and -1 (no expiry, never written by the proxy) as is.
	return max(left, local, 0), nil
}

// Hold implements Limits.
func (r *RedisLimits) Hold(ctx context.Context, key string, d time.Duration) error {
	_ = r.local.Hold(ctx, key, d)
	ms := (d + time.Millisecond - 1).Milliseconds()
	if ms <= 0 || r.down.Load() {
		return nil
	}
	rctx, cancel := r.callCtx(ctx)
	defer cancel()
	if err := holdScript.Run(rctx, r.rdb, []string{redisPrefix + key}, ms).Err(); err != nil {
		r.fail(err)
	}
	return nil
}

// callCtx bounds one Redis call by the short timeout. It does not end with the request: a
// script cut off by a client that went away might take a slot that no one gives back.
func (r *RedisLimits) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
}

// check makes sure Redis runs the proxy's scripts and takes writes (a replica that went
// read-only or a Redis out of memory answers PING, not SET), with a hold on a probe key.
func (r *RedisLimits) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return holdScript.Run(ctx, r.rdb, []string{redisPrefix + "probe"}, 1).Err()
}

// fail switches to the in-process limits after a Redis error, once: it logs, sets the
// gauge and starts the probe that switches back.
func (r *RedisLimits) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.down.Load() {
		return
	}
	r.down.Store(true)
	r.log.Warn("redis unreachable; using in-process limits", zap.Error(err))
	r.setGauge(true)
	r.wg.Add(1)
	go r.probe()
}

// probe tries Redis every probeEvery until it works again or Close.
func (r *RedisLimits) probe() {
	defer r.wg.Done()
	t := time.NewTicker(r.probeEvery)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		if r.check(r.ctx) == nil {
			r.recovered()
			return
		}
	}
}

// recovered switches back to Redis, once: it logs and clears the gauge.
func (r *RedisLimits) recovered() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.down.Store(false)
	r.log.Info("redis reachable again")
	r.setGauge(false)
}

func (r *RedisLimits) setGauge(on bool) {
	if r.m != nil {
		r.m.RedisFallback(on)
	}
}

// discardLogger takes go-redis's internal log lines.
type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}
