package upstream

import (
	"context"
	"errors"
	"sync"
	"time"
)

// flight is one vendor call that identical concurrent GETs share.
type flight struct {
	done chan struct{} // closed when out and err are set
	out  *Outcome
	err  error
}

// flights are the calls in flight, by key. The first caller of a key makes the call on
// its own goroutine; the others wait for it (or for their own context).
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// errLeaderPanicked is what followers see when the call they waited for panicked.
var errLeaderPanicked = errors.New("the shared call panicked")

// coalesced answers a GET from the cache when it may (SPEC 4), else makes the call, shared
// with every identical GET in flight at the same time (same vendor, path, query and
// credential): one vendor call, one answer, each caller its own copy. A final answer of a
// result GET is kept for the cache TTL.
func (c *Client) coalesced(ctx context.Context, req *Request, cred string) (*Outcome, error) {
	key := cred + " " + req.Path + "?" + req.RawQuery
	keep := c.cache != nil && cacheable(c.name, req)
	if keep && !noCache(req.Header) {
		if out := c.cache.get(key, time.Now()); out != nil {
			c.m.CacheHit(c.name)
			out.Attempts, out.Duration = 0, 0 // this request did not call the vendor
			return out, nil
		}
	}

	c.flights.mu.Lock()
	if f, ok := c.flights.m[key]; ok {
		c.flights.mu.Unlock()
		return c.follow(ctx, req, cred, f)
	}
	if c.flights.m == nil {
		c.flights.m = map[string]*flight{}
	}
	f := &flight{done: make(chan struct{})}
	c.flights.m[key] = f
	c.flights.mu.Unlock()

	f.err = errLeaderPanicked
	defer func() {
		c.flights.mu.Lock()
		delete(c.flights.m, key)
		c.flights.mu.Unlock()
		close(f.done)
	}()
	out, err := c.do(ctx, req, cred)
	if err == nil && keep && out.Stream == nil && final(out) {
		c.cache.put(key, out, time.Now())
	}
	f.out, f.err = out, err
	return out, err
}

// follow waits for the shared call f, or for ctx: a follower's own deadline or disconnect
// ends its wait, while the call goes on for the others.
func (c *Client) follow(ctx context.Context, req *Request, cred string, f *flight) (*Outcome, error) {
	select {
	case <-ctx.Done():
		return &Outcome{}, contextError(ctx.Err())
	case <-f.done:
	}
	// The leader's answer is shared, unless it cannot be: a streamed body belongs to the
	// leader, and an end that is the leader's own (its client left, its deadline passed,
	// it panicked) says nothing of this request, which makes its own call.
	if f.out == nil || f.out.Stream != nil || (f.err != nil && leadersOwnEnd(f.err)) {
		return c.do(ctx, req, cred)
	}
	c.m.Coalesced(c.name)
	cp := *f.out
	return &cp, f.err
}

// leadersOwnEnd reports whether a shared call ended for reasons of its leader's request
// rather than of the vendor.
func leadersOwnEnd(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errLeaderPanicked) {
		return true
	}
	var e *Error
	return errors.As(err, &e) && e.Code == "deadline_exceeded"
}
