package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/enrichproxy/enrichproxy/internal/metrics"
	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

// Config builds a Client.
type Config struct {
	// Name is the vendor: "enrow" or "ecore".
	Name   string
	Policy Policy
	// Secret is the configured vendor credential; empty passes the client's own through.
	Secret string
	// MaxNormalizeBytes is the largest answer read whole; larger ones are streamed.
	MaxNormalizeBytes int64
	// Limits holds rate-limit buckets and holds; nil means new in-process limits.
	Limits  Limits
	Metrics *metrics.Metrics
	Log     *zap.Logger
	// Transport overrides the tuned default transport (tests).
	Transport http.RoundTripper
}

// Client calls one vendor.
type Client struct {
	name    string
	pol     Policy
	base    string
	secret  string
	maxBody int64
	rt      http.RoundTripper
	limits  Limits
	breaker *breaker
	budget  *budget
	m       *metrics.Metrics
	log     *zap.Logger
	cache   *cache
	flights flights
	// secretKey names the configured credential in limiter and cache keys.
	secretKey string
	// secretHeader is Enrow's credential header value when configured; secretQuota is
	// the quota hold's key for the configured credential.
	secretHeader []string
	secretQuota  string
}

// Request is one client request to forward.
type Request struct {
	Method string
	// Path is the vendor-relative path as the client escaped it, e.g. "/email/find/single".
	Path      string
	RawQuery  string
	Header    http.Header
	Body      []byte
	RequestID string
}

// Outcome is what came of a request: the vendor's last answer (raw and normalized) and the
// calls made for it. Envelope is meaningful only when a vendor answer was read whole.
type Outcome struct {
	Envelope   normalize.Envelope
	StatusCode int // the vendor's last HTTP status; 0 when none
	Header     http.Header
	Body       []byte
	// Stream is set, instead of Body, for an answer passed through unread (SPEC 3.5): a
	// file, or a body over MaxNormalizeBytes. The caller must close it.
	Stream          io.ReadCloser
	Attempts        int
	Duration        time.Duration
	BudgetExhausted bool
}

// New builds the Client of one vendor.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(cfg.Policy.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("%s: base url: %w", cfg.Name, err)
	}
	tr := cfg.Transport
	if tr == nil {
		tr = newTransport(base)
	}
	limits := cfg.Limits
	if limits == nil {
		limits = NewLocalLimits()
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	c := &Client{
		name:    cfg.Name,
		pol:     cfg.Policy,
		base:    strings.TrimSuffix(cfg.Policy.BaseURL, "/"),
		secret:  cfg.Secret,
		maxBody: cfg.MaxNormalizeBytes,
		// Requests go to the transport as they are: redirects are not followed (SPEC 1;
		// normalize reads a 3xx as bad_vendor_reply), and the attempt's context bounds
		// each call.
		rt:     tr,
		limits: limits,
		budget: newBudget(cfg.Policy.RetryBudget),
		cache:  newCache(cfg.Policy.CacheTTL, cfg.Policy.CacheEntries),
		m:      cfg.Metrics,
		log:    log.Named("upstream").With(zap.String("vendor", cfg.Name)),
	}
	if c.maxBody <= 0 {
		c.maxBody = 16 << 20
	}
	if c.secret != "" {
		c.secretKey = credentialKey(c.name, c.credential(nil, "/"))
		c.secretHeader = []string{c.secret}
		c.secretQuota = "quota:" + c.secretKey
	}
	c.breaker = newBreaker(cfg.Name, cfg.Policy.Breaker, time.Now, func(to string) {
		c.m.CircuitTransition(cfg.Name, to)
	})
	return c, nil
}

// newTransport is the transport to the vendor at base: h1Transport for plain HTTP
// without an HTTP proxy (h1.go), else a clone of http.DefaultTransport (HTTPS_PROXY / NO_PROXY, system CAs
// including SSL_CERT_FILE, TLS verified) with a pool sized for a busy sidecar: Go's
// default of 2 idle connections per host would close most keep-alive connections.
func newTransport(base *url.URL) http.RoundTripper {
	if base.Scheme == "http" {
		if proxy, err := http.ProxyFromEnvironment(&http.Request{URL: base}); err == nil && proxy == nil {
			return newH1Transport()
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = 0 // bounded by the attempt timeout instead
	// Vendor requests and answers are small; 4 KiB buffers per connection would be most of
	// what a held request costs (docs/benchmarks.md). Large bodies bypass the buffers.
	t.ReadBufferSize, t.WriteBufferSize = 2<<10, 1<<10
	return t
}

// Name is the vendor's name.
func (c *Client) Name() string { return c.name }

// Policy is the vendor's policy.
func (c *Client) Policy() Policy { return c.pol }

// CircuitState is the breaker's state for the metrics gauge: 0 closed, 1 half-open, 2 open.
func (c *Client) CircuitState() float64 { return c.breaker.state() }

// BreakerState is the breaker's state name for logs.
func (c *Client) BreakerState() string { return c.breaker.stateName() }

// errAttemptTimeout is the cause of an attempt's context when its own timeout fired, or
// what h1Transport's error wraps when the attempt's deadline passed.
var errAttemptTimeout = errors.New("attempt timed out")

// Do forwards req to the vendor: admission (remembered quota, cool-down, rate limit),
// breaker, attempts with retries, all within ctx's deadline. Result GETs may be answered
// from the cache, and identical concurrent GETs share one call (coalesce.go). The
// returned Outcome is never nil and belongs to the caller; the error, when not nil, is an
// *Error (or the context's error when the client went away) for an answer the proxy makes
// itself.
func (c *Client) Do(ctx context.Context, req *Request) (*Outcome, error) {
	c.m.Inflight(c.name, 1)
	defer c.m.Inflight(c.name, -1)
	cred := c.secretKey
	if cred == "" {
		cred = credentialKey(c.name, c.credential(req.Header, req.Path))
	}
	if req.Method != http.MethodGet {
		return c.do(ctx, req, cred)
	}
	return c.coalesced(ctx, req, cred)
}

// do is Do without the cache and coalescing.
func (c *Client) do(ctx context.Context, req *Request, key string) (*Outcome, error) {
	start := time.Now()
	out := &Outcome{}
	defer func() { out.Duration = time.Since(start) }()

	header := c.outboundHeader(req.Header, req.Path, req.RequestID)
	if left, err := c.limits.HoldLeft(ctx, c.quotaKey(key)); err == nil && left > 0 {
		return out, quotaRemembered(left)
	}
	c.budget.request(start)
	var target string // one concatenation, one string
	if req.RawQuery != "" {
		target = c.base + req.Path + "?" + req.RawQuery
	} else {
		target = c.base + req.Path
	}

	var last outcome // the previous attempt's, for a retry the breaker refuses
	for n := 1; ; n++ {
		if err := c.admit(ctx, req.Method, key); err != nil {
			return out, err
		}
		if err := ctx.Err(); err != nil {
			// Over before the attempt (a deadline already past on arrival): the vendor is
			// not called, and the breaker is not told of a failure that is not the vendor's.
			return out, contextError(err)
		}
		done, err := c.breaker.allow()
		if err != nil {
			if n > 1 {
				// The breaker opened during this request's retries. The vendor was called
				// and answered: like a spent retry budget, the retry is not made and the
				// last answer stands (circuit_open says the vendor was not called).
				return out, last.final()
			}
			return out, err
		}
		out.Attempts = n
		o := c.attempt(ctx, req, target, header, out)
		last = o
		if err := ctx.Err(); err != nil {
			// The request's own deadline or the client's disconnect ended the attempt.
			if errors.Is(err, context.Canceled) {
				done(errExcluded)
				return out, err
			}
			done(errAttemptFailed)
			return out, deadlineExceeded(err)
		}
		if o.breakerFailure() {
			done(errAttemptFailed)
		} else {
			done(nil)
		}
		if out.Stream != nil {
			return out, nil
		}

		var wait time.Duration
		switch o.status {
		case normalize.StatusQuotaExceeded:
			// vendors/ecore.md §2: the test-token cap resets at midnight UTC; until then
			// the proxy answers for the vendor.
			_ = c.limits.Hold(ctx, "quota:"+key, normalize.UntilMidnightUTC(time.Now()))
		case normalize.StatusRateLimited:
			wait = c.rateLimitWait(out.Header, n, out.Envelope.RetryAfterSeconds)
			// rate_limited always carries a wait (SPEC 3.1), also after Retry-After: 0.
			out.Envelope.RetryAfterSeconds = max(normalize.CeilSeconds(wait), 1)
			if c.pol.coolsDown(req.Method) {
				_ = c.limits.Hold(ctx, "cool:"+key, wait)
				c.m.Cooldown(c.name)
			}
		default:
			wait = backoff(n, c.pol.BackoffBase, c.pol.BackoffCap)
		}

		reason := o.retryReason(req.Method, c.pol.RetryUnsafePost)
		if reason == "" || n >= c.pol.MaxAttempts ||
			(reason == metrics.ReasonRateLimited && wait > c.pol.MaxRetryWait) || !fits(ctx, wait) {
			return out, o.final()
		}
		if !c.budget.retry(time.Now()) {
			out.BudgetExhausted = true
			c.m.RetryBudgetExhausted(c.name)
			return out, o.final()
		}
		c.m.Retry(c.name, reason)
		if err := sleep(ctx, wait); err != nil {
			return out, err
		}
	}
}

// quotaKey is the key of the remembered daily quota of the credential key names: looked
// up on every call, made once for the configured credential.
func (c *Client) quotaKey(key string) string {
	if key == c.secretKey && c.secretQuota != "" {
		return c.secretQuota
	}
	return "quota:" + key
}

// rateLimitWait is how long to wait after a vendor 429: its Retry-After or
// X-RateLimit-Reset, else the backoff with a 1 s floor (SPEC 4), raised to the seconds
// normalize read from the body when there are more of them (vendors/enrow.md §3.1: old
// Enrow 429 bodies carry "retry_after": 300; normalize says 1 when it found nothing).
func (c *Client) rateLimitWait(h http.Header, n, bodySeconds int) time.Duration {
	if d, ok := normalize.RetryAfter(h, time.Now()); ok {
		return d
	}
	return max(backoff(n, c.pol.BackoffBase, c.pol.BackoffCap), time.Second, time.Duration(bodySeconds)*time.Second)
}

// final is the error a request ends with after this attempt: none when the vendor
// answered; a timeout when the last attempt timed out; a transport error otherwise.
func (o outcome) final() error {
	switch {
	case o.err == nil:
		return nil
	case o.timedOut:
		return deadlineExceeded(o.err)
	default:
		return transportFailed(o.err)
	}
}

// attempt makes one call and records its answer in out. The work before and after the
// call is in functions of their own, off the stack while the vendor is waited for.
// h1Transport bounds the attempt itself (a deadline on its connection); net/http's
// transport is bounded through the request's context, cancelled by a timer.
func (c *Client) attempt(ctx context.Context, req *Request, target string, header http.Header, out *Outcome) outcome {
	timeout := c.attemptTimeout()
	h1, native := c.rt.(*h1Transport)
	actx := ctx
	var cancel context.CancelCauseFunc
	var timer *time.Timer
	if !native {
		actx, cancel = context.WithCancelCause(ctx)
		timer = time.AfterFunc(timeout, func() { cancel(errAttemptTimeout) })
	}
	keep := false // the body outlives this function when streamed
	defer func() {
		if !native && !keep {
			timer.Stop()
			cancel(nil)
		}
	}()

	// Whether a request reached the vendor matters only for the retry of a method that is
	// not idempotent (retryReason); the trace is not paid for the others.
	var sent atomic.Bool
	hreq, err := newVendorRequest(actx, req, target, header, &sent)
	if err != nil {
		return outcome{err: err}
	}
	began := time.Now()
	var resp *http.Response
	if native {
		resp, err = h1.roundTripWithin(hreq, timeout)
	} else {
		resp, err = c.rt.RoundTrip(hreq)
	}
	if err != nil {
		return c.failed(actx, err, sent.Load(), began, req.RequestID, out.Attempts)
	}
	o, streamed := c.read(actx, resp, req, out, began)
	if streamed {
		// A download is bounded by the request's deadline, not the attempt's.
		if b, ok := resp.Body.(*h1Body); ok {
			b.unbind()
		} else if !native {
			keep = true
			timer.Stop()
			out.Stream = &cancelBody{ReadCloser: out.Stream, cancel: func() { cancel(nil) }}
		}
	}
	return o
}

// newVendorRequest is the request of one attempt; sent is set once it reached the vendor.
//
//go:noinline
func newVendorRequest(ctx context.Context, req *Request, target string, header http.Header, sent *atomic.Bool) (*http.Request, error) {
	if !idempotent(req.Method) {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { sent.Store(true) }})
	} else {
		sent.Store(true)
	}
	var body io.Reader = http.NoBody
	if len(req.Body) > 0 {
		body = bytes.NewReader(req.Body)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, target, body)
	if err != nil {
		return nil, err
	}
	hreq.Header = header
	// As http.Client does: credentials in the base URL are sent as basic auth, unless the
	// request has its own Authorization.
	if u := hreq.URL.User; u != nil && header.Get("Authorization") == "" {
		password, _ := u.Password()
		hreq.SetBasicAuth(u.Username(), password)
	}
	return hreq, nil
}

// read takes the vendor's answer: read whole and normalized into out, or, for a file or
// a body over the limit, left in out.Stream for the caller to pass through (streamed).
//
//go:noinline
func (c *Client) read(actx context.Context, resp *http.Response, req *Request, out *Outcome, began time.Time) (o outcome, streamed bool) {
	out.StatusCode, out.Header, out.Body, out.Stream = resp.StatusCode, resp.Header, nil, nil
	if normalize.Streamed(resp.StatusCode, resp.Header) {
		out.Stream = resp.Body
		c.observe(resp.StatusCode, began, req.RequestID, out.Attempts)
		st, _ := normalize.StatusForCode(resp.StatusCode)
		return outcome{status: st, code: resp.StatusCode, sent: true}, true
	}
	length := resp.ContentLength
	if resp.Body == http.NoBody {
		length = 0 // a HEAD's Content-Length is the GET's
	}
	body, err := readUpTo(resp.Body, length, c.maxBody+1)
	if err != nil {
		resp.Body.Close()
		return c.failed(actx, err, true, began, req.RequestID, out.Attempts), false
	}
	if int64(len(body)) > c.maxBody {
		out.Stream = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		c.observe(resp.StatusCode, began, req.RequestID, out.Attempts)
		st, _ := normalize.StatusForCode(resp.StatusCode)
		return outcome{status: st, code: resp.StatusCode, sent: true}, true
	}
	resp.Body.Close()
	c.observe(resp.StatusCode, began, req.RequestID, out.Attempts)

	out.Body = body
	out.Envelope = normalize.Normalize(normalize.Reply{
		Vendor: c.name, Method: req.Method, Path: req.Path, RawQuery: req.RawQuery,
		StatusCode: resp.StatusCode, Header: resp.Header, Body: body, Now: time.Now(),
	})
	if cr := out.Envelope.Credits; cr != nil {
		if cr.Remaining != nil {
			c.m.CreditsRemaining(c.name, *cr.Remaining)
		} else if cr.Balance != nil {
			c.m.CreditsRemaining(c.name, *cr.Balance)
		}
	}
	o = outcome{status: out.Envelope.Status, code: resp.StatusCode, sent: true}
	if out.Envelope.Error != nil {
		o.errCode = out.Envelope.Error.Code
	}
	return o, false
}

// readUpTo reads r to its end or to limit bytes, whichever comes first. An answer that
// says its length gets one buffer of that length (io.ReadAll would grow one from 512
// bytes, copying).
func readUpTo(r io.Reader, length, limit int64) ([]byte, error) {
	if length < 0 || length >= limit {
		return io.ReadAll(io.LimitReader(r, limit))
	}
	buf := make([]byte, length)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	// Read on to EOF (net/http's bodies end where Content-Length says): a connection is
	// reused once its answer has been read to the end.
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n > 0 {
			more, err := io.ReadAll(io.LimitReader(r, limit-length-1))
			return append(append(buf, one[0]), more...), err
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// failed records an attempt that ended without an answer.
func (c *Client) failed(actx context.Context, err error, sent bool, began time.Time, requestID string, n int) outcome {
	timedOut := errors.Is(context.Cause(actx), errAttemptTimeout) || errors.Is(err, errAttemptTimeout)
	code := "transport"
	if timedOut || errors.Is(err, context.DeadlineExceeded) {
		code = "timeout"
	}
	c.m.Attempt(c.name, code, time.Since(began))
	if ce := c.log.Check(zap.DebugLevel, "attempt"); ce != nil {
		ce.Write(zap.String("request_id", requestID), zap.Int("attempt", n), zap.String("code", code),
			zap.Int64("duration_ms", time.Since(began).Milliseconds()))
	}
	return outcome{err: err, sent: sent, timedOut: timedOut}
}

// observe records an attempt that got an answer.
func (c *Client) observe(status int, began time.Time, requestID string, n int) {
	c.m.Attempt(c.name, metrics.AttemptCode(status), time.Since(began))
	if ce := c.log.Check(zap.DebugLevel, "attempt"); ce != nil {
		ce.Write(zap.String("request_id", requestID), zap.Int("attempt", n), zap.Int("upstream_status", status),
			zap.Int64("duration_ms", time.Since(began).Milliseconds()))
	}
}

// attemptTimeout is the policy's per-attempt timeout; the request's deadline, when nearer,
// ends the attempt through its context.
func (c *Client) attemptTimeout() time.Duration {
	d := c.pol.AttemptTimeout
	if d <= 0 {
		d = 10 * time.Second
	}
	return d
}

// admit holds a request back for a 429 cool-down and the rate limiter, within the
// deadline and the policy's waits; it answers local_rate_limited at once when a wait cannot
// fit, without calling the vendor.
func (c *Client) admit(ctx context.Context, method, key string) error {
	if !c.pol.coolsDown(method) && !c.pol.shaped(method) {
		return nil // nothing holds this method back (Enrow's GETs, by default)
	}
	began := time.Now()
	waited := false
	for {
		if c.pol.coolsDown(method) {
			left, err := c.limits.HoldLeft(ctx, "cool:"+key)
			if err == nil && left > 0 {
				if left > c.pol.MaxRetryWait || !fits(ctx, left) {
					c.m.RateLimitRejected(c.name)
					return localRateLimited(left, "vendor cool-down after a 429")
				}
				if err := sleep(ctx, left); err != nil {
					return err
				}
				waited = true
			}
		}
		if !c.pol.shaped(method) {
			break
		}
		waited = true
		wait, cancel, err := c.limits.Reserve(ctx, "rate:"+key, c.pol.RateLimit.PerSecond)
		if err != nil {
			break
		}
		if wait > c.pol.MaxQueueWait || !fits(ctx, wait) {
			cancel()
			c.m.RateLimitRejected(c.name)
			return localRateLimited(wait, "rate limit queue full")
		}
		if err := sleep(ctx, wait); err != nil {
			cancel()
			return err
		}
		// A 429 met while this request waited for its slot started a cool-down that holds
		// it too (it has not reached the vendor yet): wait for that, then take a new slot.
		if wait == 0 || !c.pol.coolsDown(method) {
			break
		}
		if left, err := c.limits.HoldLeft(ctx, "cool:"+key); err != nil || left <= 0 {
			break
		}
	}
	if waited {
		c.m.RateLimitWait(c.name, time.Since(began))
	}
	return nil
}

// fits reports whether a wait of d ends before ctx's deadline.
func fits(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) >= d
}

// sleep waits d or until ctx is done; a deadline reached while waiting is a timeout.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return contextError(ctx.Err())
	}
}

// contextError is what a request ends with when its context is done: the client's
// cancellation as is, a deadline as a timeout.
func contextError(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return deadlineExceeded(err)
}

// cancelBody ends the attempt's context when the streamed body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
