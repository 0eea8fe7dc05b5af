package proxy

import (
	"context"
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

// allowedWait caps the preferred wait by what is left of ctx's deadline, in whole seconds
// (the M of Preference-Applied: wait=M).
func allowedWait(ctx context.Context, want time.Duration) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline).Truncate(time.Second); left < want {
			want = max(left, 0)
		}
	}
	return want
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
// answer is pending, until end, never past ctx's deadline. It returns the last
// outcome; a poll that fails leaves the last pending answer standing. Polls are GETs:
// Enrow does not rate-limit or bill them.
func (s *Server) waitFor(ctx context.Context, client *upstream.Client, req *upstream.Request, out *upstream.Outcome, end time.Time) *upstream.Outcome {
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
			return out
		case <-t.C:
		}
		s.m.Poll(client.Name())
		poll := &upstream.Request{Method: http.MethodGet, Path: path, RawQuery: query, Header: req.Header, RequestID: req.RequestID}
		next, err := client.Do(ctx, poll)
		attempts, spent = attempts+next.Attempts, spent+next.Duration
		if err != nil {
			break
		}
		out, req = next, poll
	}
	out.Attempts, out.Duration = attempts, spent
	return out
}
