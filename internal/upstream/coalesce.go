package upstream

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// coalesced answers a GET from the cache when it may (SPEC 4), else makes the call, shared
// with every identical GET in flight at the same time (same vendor, path, query and
// credential): one vendor call, one answer, each caller its own copy. A final answer of a
// result GET is kept for the cache TTL.
func (c *Client) coalesced(ctx context.Context, req *Request) (*Outcome, error) {
	key := credentialKey(c.name, c.credential(req.Header, req.Path)) + " " + req.Path + "?" + req.RawQuery
	keep := c.cache != nil && cacheable(c.name, req)
	if keep && !noCache(req.Header) {
		if out, ok := c.cache.get(key, time.Now()); ok {
			c.m.CacheHit(c.name)
			out.Attempts, out.Duration = 0, 0 // this request did not call the vendor
			return &out, nil
		}
	}

	var led atomic.Bool // set when this caller's function is the one that runs
	ch := c.flights.DoChan(key, func() (any, error) {
		led.Store(true)
		out, err := c.do(ctx, req)
		if err == nil && keep && out.Stream == nil && final(out) {
			c.cache.put(key, *out, time.Now())
		}
		return out, err
	})
	select {
	case <-ctx.Done():
		if led.Load() {
			// The leader's call runs on this context and is ending with it.
			res := <-ch
			return res.Val.(*Outcome), res.Err
		}
		// A follower's own deadline or disconnect ends its wait; the call goes on for the
		// others.
		return &Outcome{}, contextError(ctx.Err())
	case res := <-ch:
		out := res.Val.(*Outcome)
		if led.Load() {
			return out, res.Err
		}
		// The leader's answer is shared, unless it cannot be: a streamed body belongs to
		// the leader, and an end that is the leader's own (its client left, its deadline
		// passed) says nothing of this request, which makes its own call.
		if out.Stream != nil || (res.Err != nil && leadersOwnEnd(res.Err)) {
			return c.do(ctx, req)
		}
		c.m.Coalesced(c.name)
		cp := *out
		return &cp, res.Err
	}
}

// leadersOwnEnd reports whether a shared call ended for reasons of its leader's request
// rather than of the vendor.
func leadersOwnEnd(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var e *Error
	return errors.As(err, &e) && e.Code == "deadline_exceeded"
}
