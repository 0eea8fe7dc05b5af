package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
	"github.com/enrichproxy/enrichproxy/internal/vendorsim"
)

// Prefer: wait=N (SPEC 6, 11) end to end.

// TestPreferWaitMakesOneCall: POST /v1/email/find with Prefer: wait is one synchronous
// call while the vendor says "ongoing" twice.
func TestPreferWaitMakesOneCall(t *testing.T) {
	h := start(t, v1Quick(), withEnrow(func(o *vendorsim.Options) { o.PendingPolls = 2 }))
	a := h.do("POST", "/v1/email/find", v1TimCook, "Prefer", "wait=10")
	v1Want(t, a, 200, normalize.StatusOK, normalize.QualFound, "enrow")
	if !v1EnrowFindID.MatchString(a.env.ID) {
		t.Errorf("got id %q, want enrow:email.find:<uuid>", a.env.ID)
	}
	if a.env.Result == nil || a.env.Result.Email != "tim.cook@apple.com" {
		t.Errorf("got result %+v, want tim.cook@apple.com", a.env.Result)
	}
	if got := a.header.Get("Preference-Applied"); got != "wait=10" {
		t.Errorf("got Preference-Applied %q, want wait=10", got)
	}
	uuid := strings.TrimPrefix(a.env.ID, "enrow:email.find:")
	calls := h.enrow.Calls()
	posts, gets := v1CallsTo(calls, "POST", "/email/find/single"), v1CallsTo(calls, "GET", "/email/find/single")
	if len(posts) != 1 || len(gets) != 3 || len(calls) != 4 {
		t.Fatalf("Enrow saw %v, want 1 POST and 3 GETs", v1Paths(calls))
	}
	for _, g := range gets {
		if g.RawQuery != "id="+uuid {
			t.Errorf("poll GET ?%s, want ?id=%s", g.RawQuery, uuid)
		}
	}
	if a.env.Upstream == nil || a.env.Upstream.Attempts != 4 || a.env.Upstream.Status != 200 {
		t.Errorf("got upstream %+v, want 4 attempts (the POST and 3 polls) ending in 200", a.env.Upstream)
	}
	v1Conform(t, h, "POST", "/v1/email/find", a)

	// Polls are counted as polls, not as retries.
	polls, retries := 0.0, 0.0
	for _, line := range wtScrape(t, h) {
		name, value, _ := strings.Cut(line, " ")
		switch {
		case strings.HasPrefix(name, `enrichproxy_polls_total{vendor="enrow"}`):
			polls += wtFloat(t, value)
		case strings.HasPrefix(name, "enrichproxy_retries_total{"):
			retries += wtFloat(t, value)
		}
	}
	if polls != 3 || retries != 0 {
		t.Errorf("got enrichproxy_polls_total %v and enrichproxy_retries_total %v, want 3 polls and no retry", polls, retries)
	}
}

// TestPreferWaitRunsOut: a wait that runs out answers with the last pending envelope, on
// time.
func TestPreferWaitRunsOut(t *testing.T) {
	h := start(t, v1Quick("ENROW_POLL_INTERVAL", "100ms"), withEnrow(func(o *vendorsim.Options) { o.PendingPolls = 1000 }))
	began := time.Now()
	a := h.do("POST", "/v1/email/find", v1TimCook, "Prefer", "wait=1")
	took := time.Since(began)
	v1Want(t, a, 202, normalize.StatusPending, normalize.QualPending, "enrow")
	if !v1EnrowFindID.MatchString(a.env.ID) {
		t.Errorf("got id %q, want enrow:email.find:<uuid>", a.env.ID)
	}
	if took < 700*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("answered after %v, want about 1 s", took)
	}
	if got := a.header.Get("Preference-Applied"); got != "wait=1" {
		t.Errorf("got Preference-Applied %q, want wait=1", got)
	}
	if gets := len(v1CallsTo(h.enrow.Calls(), "GET", "/email/find/single")); gets < 5 || gets > 13 {
		t.Errorf("got %d polls in 1 s every 100 ms ± 20 %%, want about 9", gets)
	}
	v1Conform(t, h, "POST", "/v1/email/find", a)
}

// TestPreferWaitCappedByDeadline: N is capped by the request's deadline, and M of
// Preference-Applied is the whole seconds of the wait allowed: a wait of 30 with a 2 s
// deadline is allowed 2 s and says wait=2 (not 1, which the microseconds spent before
// the wait would give if what is left of the deadline were rounded down); with a 2.5 s
// deadline it says wait=2 too, never more than was allowed. The answer is the last
// pending envelope, before the deadline, not a timeout.
func TestPreferWaitCappedByDeadline(t *testing.T) {
	h := start(t, v1Quick("ENROW_POLL_INTERVAL", "100ms"), withEnrow(func(o *vendorsim.Options) { o.PendingPolls = 1000 }))
	for _, tc := range []struct{ timeout, prefer, want string }{
		{"2", "wait=30", "wait=2"},
		{"2.5", "wait=30", "wait=2"},
		{"2", "wait=1", "wait=1"},
		{"0.5", "wait=30", "wait=0"},
	} {
		t.Run(tc.timeout+" "+tc.prefer, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			a := h.do("POST", "/v1/email/find", v1TimCook, "Prefer", tc.prefer, "X-Request-Timeout", tc.timeout)
			took := time.Since(began)
			v1Want(t, a, 202, normalize.StatusPending, normalize.QualPending, "enrow")
			if got := a.header.Get("Preference-Applied"); got != tc.want {
				t.Errorf("got Preference-Applied %q, want %s", got, tc.want)
			}
			// Capped by the deadline, the answer comes before it; a wait of 1 s ends after
			// its last poll, a few milliseconds past 1 s.
			limit, slack := time.Duration(wtFloat(t, tc.timeout)*float64(time.Second)), time.Duration(0)
			if tc.prefer == "wait=1" {
				limit, slack = time.Second, 300*time.Millisecond
			}
			if took > limit+slack || took < limit-500*time.Millisecond {
				t.Errorf("answered after %v, want about %v", took, limit)
			}
			v1Conform(t, h, "POST", "/v1/email/find", a)
		})
	}
}

// TestPreferWaitAbandonsTheLastPoll: a poll still running when the wait ends is dropped
// at once, like a client cancellation: the answer is on time, the poll is not retried
// past N, and it is no vendor failure for the breaker.
func TestPreferWaitAbandonsTheLastPoll(t *testing.T) {
	h := start(t, v1Quick("ENROW_BREAKER_CONSECUTIVE_FAILURES", "1"))
	h.enrow.Script(
		vendorsim.Answer{Body: `{"message":"Single search operating","id":"5d0c2a34-8d5e-4d38-9f6e-0c3f1f7f6a01","credits_used":1}`},
		vendorsim.Answer{Hang: true})
	began := time.Now()
	a := h.do("POST", "/v1/email/find", v1TimCook, "Prefer", "wait=1")
	took := time.Since(began)
	v1Want(t, a, 202, normalize.StatusPending, normalize.QualPending, "enrow")
	if a.env.ID != "enrow:email.find:5d0c2a34-8d5e-4d38-9f6e-0c3f1f7f6a01" {
		t.Errorf("got id %q, want the search's", a.env.ID)
	}
	if took > 1500*time.Millisecond {
		t.Errorf("answered after %v, want about 1 s: the hanging poll must end with the wait", took)
	}
	if n := len(v1CallsTo(h.enrow.Calls(), "GET", "/email/find/single")); n != 1 {
		t.Errorf("got %d polls, want the one that hung", n)
	}
	if b := h.do("GET", "/enrow/account/info", ""); b.code != 200 {
		t.Errorf("after the wait: got %d, want 200: an abandoned poll is not a vendor failure\n%s", b.code, b.raw)
	}
}

// TestPreferenceAppliedWhenFinalAtOnce: the preference is honoured, and said, also when
// the first answer is final (SPEC 11); without Prefer nothing is said.
func TestPreferenceAppliedWhenFinalAtOnce(t *testing.T) {
	h := start(t, v1Quick("PROXY_VENDOR_ORDER", "ecore,enrow"))
	a := h.do("POST", "/v1/email/find", v1TimCook, "Prefer", "wait=5")
	v1Want(t, a, 200, normalize.StatusOK, normalize.QualFound, "ecore")
	if got := a.header.Get("Preference-Applied"); got != "wait=5" {
		t.Errorf("got Preference-Applied %q, want wait=5", got)
	}
	if n := h.ecore.CallCount(); n != 1 {
		t.Errorf("got %d eCore calls, want 1 (a synchronous answer is not polled)", n)
	}
	id := post(t, h, "/enrow/email/find/single", timCook)
	b := h.do("GET", "/enrow/email/find/single?id="+id, "", "Prefer", "respond-async, wait=3")
	if b.code != 200 || b.header.Get("Preference-Applied") != "wait=3" {
		t.Errorf("vendor route: got %d, Preference-Applied %q; want 200, wait=3", b.code, b.header.Get("Preference-Applied"))
	}
	c := h.do("POST", "/v1/email/find", v1TimCook)
	if got := c.header.Get("Preference-Applied"); c.code != 200 || got != "" {
		t.Errorf("without Prefer: got %d, Preference-Applied %q; want 200 and none", c.code, got)
	}
}

// TestPreferenceNotAppliedWhenTheProxyAnswers: with the breaker open the proxy answers for
// the vendor at once; nothing was waited for, and Preference-Applied is not said, on /v1
// as on the vendor routes.
func TestPreferenceNotAppliedWhenTheProxyAnswers(t *testing.T) {
	h := start(t, v1Quick("ENROW_BREAKER_CONSECUTIVE_FAILURES", "1", "ENROW_MAX_ATTEMPTS", "1"))
	h.enrow.Script(vendorsim.Answer{Status: 503, Body: `{"message":"down"}`})
	if a := h.do("GET", "/enrow/account/info", ""); a.code != 502 {
		t.Fatalf("tripping call: got %d, want 502\n%s", a.code, a.raw)
	}
	for _, path := range []string{"/v1/email/find?vendor=enrow", "/enrow/email/find/single"} {
		body := v1TimCook
		if !strings.HasPrefix(path, "/v1/") {
			body = timCook
		}
		a := h.do("POST", path, body, "Prefer", "wait=5")
		v1WantError(t, a, 503, normalize.StatusUnavailable, normalize.CodeCircuitOpen)
		if got := a.header.Get("Preference-Applied"); got != "" {
			t.Errorf("POST %s: got Preference-Applied %q, want none", path, got)
		}
		v1Conform(t, h, "POST", path, a)
	}
}

// TestPreferWaitOnVendorRoutes: the vendor routes and drop-in mode wait too.
func TestPreferWaitOnVendorRoutes(t *testing.T) {
	h := start(t, v1Quick(), withEnrow(func(o *vendorsim.Options) { o.PendingPolls = 1 }),
		withECore(func(o *vendorsim.Options) { o.PendingPolls = 2 }))
	t.Run("enrow finder", func(t *testing.T) {
		a := h.do("POST", "/enrow/email/find/single", timCook, "Prefer", "wait=10")
		v1Want(t, a, 200, normalize.StatusOK, normalize.QualFound, "enrow")
		if a.env.Result == nil || a.env.Result.Email != "tim.cook@apple.com" || a.env.ID == "" {
			t.Errorf("got result %+v id %q, want tim.cook@apple.com with the search id", a.env.Result, a.env.ID)
		}
		if a.header.Get("Preference-Applied") != "wait=10" {
			t.Errorf("got Preference-Applied %q, want wait=10", a.header.Get("Preference-Applied"))
		}
		v1Conform(t, h, "POST", "/enrow/email/find/single", a)
	})
	t.Run("ecore validation job", func(t *testing.T) {
		before := len(h.ecore.Calls())
		a := h.do("POST", "/ecore/email-validation/jobs/upload/", `{"emails":["a@apple.com","invalid@apple.com","unknown@apple.com"]}`,
			"Prefer", "wait=10")
		v1Want(t, a, 200, normalize.StatusOK, "", "ecore")
		j := a.env.Job
		if j == nil || j.State != normalize.JobCompleted || j.Counts[normalize.QualValid] != 1 ||
			j.Counts[normalize.QualInvalid] != 1 || j.Counts[normalize.QualUnknown] != 1 {
			t.Errorf("got job %+v, want completed with valid 1, invalid 1, unknown 1", j)
		}
		calls := h.ecore.Calls()[before:]
		if len(calls) != 4 || len(v1CallsTo(calls, "GET", "/email-validation/jobs/"+a.env.ID+"/")) != 3 {
			t.Errorf("eCore saw %v, want the upload and 3 GETs of job %s", v1Paths(calls), a.env.ID)
		}
		v1Conform(t, h, "POST", "/ecore/email-validation/jobs/upload/", a)
	})
	t.Run("drop-in mode returns the final vendor body", func(t *testing.T) {
		a := h.do("POST", "/raw/enrow/email/find/single", timCook, "Prefer", "wait=10")
		if a.code != 200 || !strings.Contains(string(a.raw), `"tim.cook@apple.com"`) || strings.Contains(string(a.raw), `"request_id"`) {
			t.Errorf("got %d %s, want 200 and Enrow's final body", a.code, a.raw)
		}
		if a.header.Get("X-Enrich-Status") != "ok" || a.header.Get("Preference-Applied") != "wait=10" {
			t.Errorf("got X-Enrich-Status %q, Preference-Applied %q; want ok, wait=10", a.header.Get("X-Enrich-Status"), a.header.Get("Preference-Applied"))
		}
		v1Conform(t, h, "POST", "/raw/enrow/email/find/single", a)
	})
	t.Run("a /v1 result read waits too", func(t *testing.T) {
		a := h.do("POST", "/v1/email/find", v1TimCook)
		v1Want(t, a, 202, normalize.StatusPending, normalize.QualPending, "enrow")
		r := h.do("GET", "/v1/results/"+a.env.ID, "", "Prefer", "wait=10")
		v1Want(t, r, 200, normalize.StatusOK, normalize.QualFound, "enrow")
		if r.header.Get("Preference-Applied") != "wait=10" || r.env.ID != a.env.ID {
			t.Errorf("got Preference-Applied %q id %q, want wait=10 and %q", r.header.Get("Preference-Applied"), r.env.ID, a.env.ID)
		}
	})
}

// TestPreferWaitKeepsPendingWhenAPollFails: a poll the vendor fails (5xx after retries)
// ends the wait with the last pending answer: the search was started and paid for, and
// is still there to read by its id; a 502 would have the client start it again.
func TestPreferWaitKeepsPendingWhenAPollFails(t *testing.T) {
	h := start(t, v1Quick("ENROW_MAX_ATTEMPTS", "1"), withEnrow(func(o *vendorsim.Options) { o.PendingPolls = 5 }))
	h.enrow.OnRequest(func(c vendorsim.Call) {
		if c.Method == "GET" && len(v1CallsTo(h.enrow.Calls(), "GET", "/email/find/single")) == 1 {
			// The script is read before this hook runs: this is the second poll's answer.
			h.enrow.Script(vendorsim.Answer{Status: 503, Body: `{"message":"Service Unavailable"}`})
		}
	})
	a := h.do("POST", "/v1/email/find", v1TimCook, "Prefer", "wait=10")
	v1Want(t, a, 202, normalize.StatusPending, normalize.QualPending, "enrow")
	if !v1EnrowFindID.MatchString(a.env.ID) {
		t.Errorf("got id %q, want enrow:email.find:<uuid>", a.env.ID)
	}
	if n := len(v1CallsTo(h.enrow.Calls(), "GET", "/email/find/single")); n != 2 {
		t.Errorf("got %d polls, want 2: the wait ends at the failed one", n)
	}
	r := h.do("GET", "/v1/results/"+a.env.ID, "", "Prefer", "wait=10")
	v1Want(t, r, 200, normalize.StatusOK, normalize.QualFound, "enrow")
}

func wtScrape(t *testing.T, h *harness) []string {
	t.Helper()
	return strings.Split(h.metricsText(t), "\n")
}

func wtFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q is not a number: %v", s, err)
	}
	return f
}
