// Package vendorsim owns simulated Enrow and eCore HTTP servers: http.Handlers that behave
// as the vendors' public documentation says (../shared/vendors/enrow.md and ecore.md,
// copied into comments here), quirks included, with switches for injected faults, scripted
// answers and a record of every call.
//
// It exists for `proxy -demo` and for tests. Production paths must not use it: nothing
// outside cmd/proxy's demo wiring and _test.go files may import it.
//
// Both simulators serve at the root of their base URL (Enrow: /email/find/single...,
// eCore: /external/..., /email-validation/..., /enrichment/...). Paths under /_sim/ are
// runtime switches (see control.go); they need no credential and are never recorded.
//
// Every request goes through the same front door: it is recorded as a Call, the OnRequest
// hook runs, then the next scripted Answer (if any) is played; otherwise the faults apply
// (Latency, Hang, ErrorRate, RateLimitRate) and finally the vendor's documented behaviour.
// The simulators start no goroutines.
//
// Outcomes are chosen by magic words in the input (see outcome.go): "nobody" → not found,
// "failjob" → the bulk batch or job fails, verifier addresses starting "invalid"/"bounce"
// (Enrow) or "invalid"/"unknown"/"catchall"/"error" (eCore) → that verdict.
//
// Searches and jobs progress per Options.PendingPolls / PendingFor. Counted as result GETs:
// Enrow's GET ?id= on the matching endpoint; eCore's job, records and download GETs of a
// validation job, and the status and result GETs of an enrichment job (list endpoints only
// look). The first GET answered "running" shows the queued stage (eCore Uploading /
// queued), later ones the running stage (Processing / in-progress; Enrow bulks report half
// of the batch finished); a paused enrichment job does not progress.
//
// Tests synchronise on arrivals without sleeping: OnRequest(func(Call)) runs in the
// request's goroutine before any answer (so a hanging request has provably arrived), and
// WaitCalls(ctx, n) blocks until n calls are recorded.
package vendorsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// maxBody bounds what a simulator reads from one request.
const maxBody = 64 << 20

// core is the plumbing both simulators share: calls, script, faults, wallet, clock.
// mu guards every field here and every field of the vendor types that embed core.
type core struct {
	mu           sync.Mutex
	keys         map[string]bool
	pendingPolls int
	pendingFor   time.Duration
	faults       Faults
	script       []Answer
	calls        []Call
	credits      float64
	onRequest    func(Call)
	changed      chan struct{} // closed and replaced whenever a call is recorded
	rng          *mrand.Rand
	now          func() time.Time
	// dialect: the bodies of injected errors.
	faultBody func(status int) any
	// onReset clears the vendor's call-derived counters; called with mu held.
	onReset func()
}

// init sets c up from opts; faultBody gives the vendor's body for injected errors.
func (c *core) init(opts Options, faultBody func(int) any) {
	*c = core{
		keys:         map[string]bool{},
		pendingPolls: opts.PendingPolls,
		pendingFor:   opts.PendingFor,
		faults:       opts.Faults,
		credits:      opts.Credits,
		changed:      make(chan struct{}),
		now:          opts.Now,
		faultBody:    faultBody,
	}
	for _, k := range opts.Keys {
		c.keys[k] = true
	}
	if c.credits == 0 {
		c.credits = 1_000_000
	}
	if c.now == nil {
		c.now = time.Now
	}
	seed := opts.Seed
	if seed == 0 {
		seed = mrand.Uint64()
	}
	c.rng = mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Calls returns a copy of every call recorded since construction or the last Reset.
func (c *core) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Call, len(c.calls))
	for i, call := range c.calls {
		out[i] = cloneCall(call)
	}
	return out
}

// CallCount returns the number of recorded calls.
func (c *core) CallCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

// Reset clears the recorded calls, the script and the call-derived counters (Enrow's
// rate-limit window, eCore's daily usage). Searches, jobs, credits and faults are kept.
func (c *core) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = nil
	c.script = nil
	if c.onReset != nil {
		c.onReset()
	}
}

// Script appends answers to the script.
func (c *core) Script(answers ...Answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.script = append(c.script, answers...)
}

// SetFaults replaces the injected faults.
func (c *core) SetFaults(f Faults) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = f
}

// Faults returns the injected faults in force.
func (c *core) Faults() Faults {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.faults
}

// SetCredits sets the wallet balance.
func (c *core) SetCredits(v float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.credits = v
}

// Credits returns the wallet balance.
func (c *core) Credits() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.credits
}

// SetPending changes PendingPolls and PendingFor for searches and jobs created from now on.
func (c *core) SetPending(polls int, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pendingPolls, c.pendingFor = polls, d
}

// OnRequest installs f (nil removes it). f runs synchronously in the request's goroutine
// for every recorded call, after it is recorded and before any answer (scripted, fault or
// normal) is produced, so a test can learn that a hanging request has arrived. f gets its
// own copy of the call; it must not call back into a method of the simulator that would
// wait for another request.
func (c *core) OnRequest(f func(Call)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onRequest = f
}

// WaitCalls blocks until at least n calls are recorded (counting since the last Reset) or
// ctx is done, in which case it returns ctx.Err().
func (c *core) WaitCalls(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		got, ch := len(c.calls), c.changed
		c.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// front is the door every request goes through. It answers /_sim/ controls, records the
// call, plays a scripted answer or an injected fault. It returns the body and true when
// the vendor behaviour must answer.
func (c *core) front(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.URL.Path == "/_sim" || strings.HasPrefix(r.URL.Path, "/_sim/") {
		c.control(w, r)
		return nil, false
	}
	body, err := readBody(r)
	if err != nil {
		return nil, false // the client went away mid-body
	}
	c.mu.Lock()
	call := Call{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body, Time: c.now()}
	c.calls = append(c.calls, call)
	close(c.changed)
	c.changed = make(chan struct{})
	var ans *Answer
	if len(c.script) > 0 {
		a := c.script[0]
		c.script = c.script[1:]
		ans = &a
	}
	f, roll, hook := c.faults, c.rng.Float64(), c.onRequest
	c.mu.Unlock()

	if hook != nil {
		hook(cloneCall(call))
	}
	ctx := r.Context()
	if ans != nil {
		playAnswer(ctx, w, *ans)
		return nil, false
	}
	if f.Latency > 0 && !sleepCtx(ctx, f.Latency) {
		return nil, false
	}
	if f.Hang {
		<-ctx.Done()
		return nil, false
	}
	switch {
	case roll < f.ErrorRate:
		status := f.ErrorStatus
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		if f.HTMLErrors && status >= 500 {
			writeHTMLError(w, status)
		} else {
			writeJSON(w, status, c.faultBody(status))
		}
		return nil, false
	case roll < f.ErrorRate+f.RateLimitRate:
		if f.RetryAfter > 0 {
			secs := (f.RetryAfter + time.Second - 1) / time.Second
			w.Header().Set("Retry-After", fmt.Sprint(int64(secs)))
		}
		writeJSON(w, http.StatusTooManyRequests, c.faultBody(http.StatusTooManyRequests))
		return nil, false
	}
	return body, true
}

// keyOK reports whether k is an accepted credential. Caller must not hold mu.
func (c *core) keyOK(k string) bool {
	if k == "" {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.keys) == 0 || c.keys[k]
}

func playAnswer(ctx context.Context, w http.ResponseWriter, a Answer) {
	if a.Delay > 0 && !sleepCtx(ctx, a.Delay) {
		return
	}
	if a.Hang {
		<-ctx.Done()
		return
	}
	for k, vs := range a.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if a.Body != "" && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, a.Body)
}

func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, maxBody))
}

func cloneCall(c Call) Call {
	c.Header = c.Header.Clone()
	c.Body = append([]byte(nil), c.Body...)
	return c
}

// sleepCtx waits d and reports true, or reports false as soon as ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// writeJSON answers v as JSON, without HTML escaping (vendors send '&' as is).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeHTMLError answers an nginx-style error page, as a load balancer in front of either
// vendor would.
func writeHTMLError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	t := fmt.Sprintf("%d %s", status, http.StatusText(status))
	_, _ = fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n"+
		"<center><h1>%s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n", t, t)
}

// newUUID returns a random version-4 UUID, 8-4-4-4-12 hex.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
