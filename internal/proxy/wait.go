package proxy

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
	"github.com/enrichproxy/enrichproxy/internal/upstream"
)

// preferWait reads `Prefer: wait=N` (RFC 7240 §4.3): N whole seconds; false without it.
// Preferences are comma-separated and their names are case-insensitive.
func preferWait(h http.Header) (time.Duration, bool) {
	for _, v := range h.Values("Prefer") {
		for pref := range strings.SplitSeq(v, ",") {
			pref, _, _ = strings.Cut(pref, ";") // parameters of a preference don't apply here
			name, val, ok := strings.Cut(strings.TrimSpace(pref), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
			if err != nil || n < 0 {
				continue
			}
			return time.Duration(n) * time.Second, true
		}
	}
	return 0, false
}

// waitGrain absorbs the few microseconds between setting a request's deadline and reading
// what is left of it, so that a 2 s deadline allows a 2 s wait, not 1.
const waitGrain = 10 * time.Millisecond

// pollReserve is kept free at the end of a request's deadline: no poll runs into it, so that
// a wait capped by the deadline still answers with its last envelope in time.
const pollReserve = 50 * time.Millisecond

// allowedWait is the wait a request may spend: the preferred wait capped by what is left of
// ctx's deadline. Preference-Applied says wait=M with M its whole seconds, rounded down (SPEC
// 6: "M the seconds actually allowed (N capped by the deadline)"): wait=30 with
// X-Request-Timeout: 2 is allowed 2 s and says wait=2; with X-Request-Timeout: 2.5 it is
// allowed 2.5 s and says wait=2, never more than was allowed.
func allowedWait(ctx context.Context, want time.Duration) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		if r := left % waitGrain; r > 0 {
			left += waitGrain - r
		}
		if left < want {
			want = max(left, 0)
		}
	}
	return want
}

// waitPlan is what a request's Prefer: wait asks for (SPEC 6): whether it was sent, the
// wait allowed (N capped by the deadline, the M of Preference-Applied) and when it ends.
type waitPlan struct {
	prefer  bool
	allowed time.Duration
	end     time.Time
}

// planWait reads the request's Prefer: wait against ctx's deadline. It is made once per
// request, before any vendor call, so failover does not restart the wait.
func planWait(ctx context.Context, r *http.Request) waitPlan {
	want, prefer := preferWait(r.Header)
	allowed := allowedWait(ctx, want)
	return waitPlan{prefer: prefer, allowed: allowed, end: time.Now().Add(allowed)}
}

// forward makes req through client and, when the plan says so, polls until the answer is
// final or the wait runs out. applied is the Preference-Applied value, empty when the
// preference was not honoured (no Prefer, or an answer the proxy made itself).
func (s *Server) forward(ctx context.Context, r *http.Request, client *upstream.Client, req *upstream.Request, plan waitPlan) (out *upstream.Outcome, applied string, err error) {
	out, err = client.Do(ctx, req)
	if plan.prefer && err == nil {
		applied = "wait=" + strconv.Itoa(int(plan.allowed/time.Second))
		out = s.waitFor(ctx, client, req, out, plan.end)
	}
	recordOf(r).breaker = client.BreakerState()
	return out, applied, err
}

// pollTarget is the GET that reads the result of a pending answer (SPEC 6): Enrow's GET of
// the same path with ?id=; eCore's job GET for validation uploads, and the status GET for
// enrichment jobs. ok is false when the answer has none.
func pollTarget(vendor string, req *upstream.Request, env normalize.Envelope) (path, query string, ok bool) {
	if env.ID == "" && req.Method != http.MethodGet {
		return "", "", false
	}
	if req.Method == http.MethodGet {
		return req.Path, req.RawQuery, true
	}
	if req.Method != http.MethodPost {
		return "", "", false
	}
	id := url.PathEscape(env.ID)
	switch vendor {
	case normalize.Enrow:
		if normalize.IsResultOperation(env.Operation) {
			return req.Path, "id=" + url.QueryEscape(env.ID), true
		}
	case normalize.ECore:
		switch env.Operation {
		case normalize.OpEmailVerifyBulk, normalize.OpEmailVerify:
			return "/email-validation/jobs/" + id + "/", "", true
		case normalize.OpEnrichment:
			return "/enrichment/status/" + id + "/", "", true
		}
	}
	return "", "", false
}

// waitFor polls the vendor's result endpoint every poll interval (±20 % jitter) while the
// answer is pending, until end, never past ctx's deadline less pollReserve. It returns the
// last answer about the work. A poll that fails — an answer the proxy makes itself (breaker
// open, deadline…) or a vendor failure that says nothing about the work (5xx after retries,
// 429, timeout) — ends the wait and leaves the last pending answer standing: the work was
// accepted and can still be polled by its id, and a client that got a 502 would start it
// (and pay for it) again. A poll still running when the wait ends is abandoned like a
// client cancellation, so it is neither a vendor failure for the breaker nor a wait past
// N. Polls are GETs: Enrow does not rate-limit or bill them.
func (s *Server) waitFor(ctx context.Context, client *upstream.Client, req *upstream.Request, out *upstream.Outcome, end time.Time) *upstream.Outcome {
	if deadline, ok := ctx.Deadline(); ok && deadline.Add(-pollReserve).Before(end) {
		end = deadline.Add(-pollReserve)
	}
	interval := client.Policy().PollInterval
	attempts, spent := out.Attempts, out.Duration
	for out.Stream == nil && out.Envelope.Status == normalize.StatusPending {
		path, query, ok := pollTarget(client.Name(), req, out.Envelope)
		if !ok {
			break
		}
		d := time.Duration(float64(interval) * (0.8 + 0.4*rand.Float64()))
		if time.Until(end) < d {
			break
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			out.Attempts, out.Duration = attempts, spent
			return out
		case <-t.C:
		}
		s.m.Poll(client.Name())
		poll := &upstream.Request{Method: http.MethodGet, Path: path, RawQuery: query, Header: req.Header, RequestID: req.RequestID}
		next, err := pollUntil(ctx, client, poll, end)
		attempts, spent = attempts+next.Attempts, spent+next.Duration
		if err != nil || pollFailed(next.Envelope) {
			if next.Stream != nil {
				next.Stream.Close()
			}
			break
		}
		out, req = next, poll
	}
	out.Attempts, out.Duration = attempts, spent
	return out
}

// pollUntil makes one poll that is cancelled (not timed out) when the wait ends at end.
func pollUntil(ctx context.Context, client *upstream.Client, poll *upstream.Request, end time.Time) (*upstream.Outcome, error) {
	pctx, cancel := context.WithCancel(ctx)
	cut := time.AfterFunc(time.Until(end), cancel)
	out, err := client.Do(pctx, poll)
	cut.Stop()
	if out.Stream != nil {
		// A streamed answer is read after this returns: it ends with its reader, or at the
		// request's deadline, not at the end of the wait.
		out.Stream = &cancelOnClose{ReadCloser: out.Stream, cancel: cancel}
		return out, err
	}
	cancel()
	return out, err
}

// cancelOnClose releases a poll's context when its streamed body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// pollFailed reports a poll answer that says nothing about the work: the vendor failed
// (5xx after retries, an unreadable reply), throttled or timed out, or the proxy stood in
// for it. A failed job (job_failed), an unknown id and every other answer are about the
// work and end the wait as they are.
func pollFailed(env normalize.Envelope) bool {
	switch env.Status {
	case normalize.StatusUpstreamError:
		return env.Error == nil || env.Error.Code != normalize.CodeJobFailed
	case normalize.StatusRateLimited, normalize.StatusQuotaExceeded, normalize.StatusTimeout, normalize.StatusUnavailable:
		return true
	}
	return false
}
