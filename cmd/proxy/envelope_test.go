package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
	"github.com/enrichproxy/enrichproxy/internal/vendorsim"
)

// statusCase is one row of SPEC 3.1 / 3.2 produced by a vendor (or by the proxy), end to
// end: the request, what the simulators were told to do, and what the client must see.
type statusCase struct {
	name    string
	opts    []func(*setup)
	prepare func(t *testing.T, h *harness) (path string) // returns the path when it needs an id
	method  string
	path    string
	body    string
	headers []string

	wantCode   int
	wantStatus normalize.Status
	wantQual   normalize.Qualification
	wantError  string
	wantCalls  int // vendor calls for the request itself; -1: don't check
	check      func(t *testing.T, h *harness, a answer)
}

// post starts a search and returns its id.
func post(t *testing.T, h *harness, path, body string) string {
	t.Helper()
	a := h.do(http.MethodPost, path, body)
	if a.code != http.StatusAccepted {
		t.Fatalf("POST %s: got %d, want 202\n%s", path, a.code, a.raw)
	}
	return idOf(t, a)
}

func withEnv(kv ...string) func(*setup) {
	return func(s *setup) {
		for i := 0; i+1 < len(kv); i += 2 {
			s.env[kv[i]] = kv[i+1]
		}
	}
}

func withEnrow(f func(*vendorsim.Options)) func(*setup) { return func(s *setup) { f(&s.enrowOpts) } }
func withECore(f func(*vendorsim.Options)) func(*setup) { return func(s *setup) { f(&s.ecoreOpts) } }

const timCook = `{"fullname":"Tim Cook","company_domain":"apple.com"}`

func TestEnvelopeStatuses(t *testing.T) {
	script := func(answers ...vendorsim.Answer) func(*testing.T, *harness) string {
		return func(_ *testing.T, h *harness) string { h.enrow.Script(answers...); return "" }
	}
	ecoreScript := func(answers ...vendorsim.Answer) func(*testing.T, *harness) string {
		return func(_ *testing.T, h *harness) string { h.ecore.Script(answers...); return "" }
	}
	cases := []statusCase{
		{name: "enrow find POST is pending with the search id", method: "POST", path: "/enrow/email/find/single", body: timCook,
			wantCode: 202, wantStatus: "pending", wantQual: "pending", wantCalls: 1,
			check: func(t *testing.T, h *harness, a answer) {
				if a.env.Credits == nil || a.env.Credits.Used == nil || *a.env.Credits.Used != 1 {
					t.Errorf("got credits %+v, want used 1", a.env.Credits)
				}
				if a.env.Upstream == nil || a.env.Upstream.Status != 200 || a.env.Upstream.Attempts != 1 {
					t.Errorf("got upstream %+v, want status 200 in 1 attempt", a.env.Upstream)
				}
			}},
		{name: "enrow finder valid is ok/found with the email",
			prepare: func(t *testing.T, h *harness) string {
				return "/enrow/email/find/single?id=" + post(t, h, "/enrow/email/find/single", timCook)
			},
			method: "GET", wantCode: 200, wantStatus: "ok", wantQual: "found", wantCalls: 1,
			check: func(t *testing.T, h *harness, a answer) {
				if a.env.Result == nil || a.env.Result.Email != "tim.cook@apple.com" {
					t.Errorf("got result %+v, want email tim.cook@apple.com", a.env.Result)
				}
				if a.env.ID == "" {
					t.Error("single GET answer has no id: want the id query parameter")
				}
			}},
		{name: "enrow finder invalid is ok/not_found",
			prepare: func(t *testing.T, h *harness) string {
				return "/enrow/email/find/single?id=" + post(t, h, "/enrow/email/find/single", `{"fullname":"Nobody Here","company_domain":"apple.com"}`)
			},
			method: "GET", wantCode: 200, wantStatus: "ok", wantQual: "not_found", wantCalls: 1},
		{name: "enrow single GET while ongoing is 202 pending",
			opts: []func(*setup){withEnrow(func(o *vendorsim.Options) { o.PendingPolls = 5 })},
			prepare: func(t *testing.T, h *harness) string {
				return "/enrow/email/find/single?id=" + post(t, h, "/enrow/email/find/single", timCook)
			},
			method: "GET", wantCode: 202, wantStatus: "pending", wantQual: "pending", wantCalls: 1},
		{name: "enrow not-found 500 on a single GET is not_found after one call",
			method: "GET", path: "/enrow/email/find/single?id=00000000-0000-0000-0000-000000000000",
			wantCode: 404, wantStatus: "not_found", wantError: "unknown_id", wantCalls: 1},
		{name: "enrow verifier valid is ok/valid",
			prepare: func(t *testing.T, h *harness) string {
				return "/enrow/email/verify/single?id=" + post(t, h, "/enrow/email/verify/single", `{"email":"tim@apple.com"}`)
			},
			method: "GET", wantCode: 200, wantStatus: "ok", wantQual: "valid", wantCalls: 1},
		{name: "enrow verifier invalid is ok/invalid (undeliverable)",
			prepare: func(t *testing.T, h *harness) string {
				return "/enrow/email/verify/single?id=" + post(t, h, "/enrow/email/verify/single", `{"email":"bounce@apple.com"}`)
			},
			method: "GET", wantCode: 200, wantStatus: "ok", wantQual: "invalid", wantCalls: 1},
		{name: "enrow phone found is ok/found with phone and country",
			prepare: func(t *testing.T, h *harness) string {
				return "/enrow/phone/single?id=" + post(t, h, "/enrow/phone/single", `{"linkedin_url":"https://www.linkedin.com/in/timcook"}`)
			},
			method: "GET", wantCode: 200, wantStatus: "ok", wantQual: "found", wantCalls: 1,
			check: func(t *testing.T, h *harness, a answer) {
				if a.env.Result == nil || a.env.Result.Phone == "" || a.env.Result.Country == "" {
					t.Errorf("got result %+v, want phone and country", a.env.Result)
				}
			}},
		{name: "enrow phone not_found is ok/not_found",
			prepare: func(t *testing.T, h *harness) string {
				return "/enrow/phone/single?id=" + post(t, h, "/enrow/phone/single", `{"linkedin_url":"https://www.linkedin.com/in/nobody"}`)
			},
			method: "GET", wantCode: 200, wantStatus: "ok", wantQual: "not_found", wantCalls: 1},
		{name: "enrow bulk completed is ok with job counts",
			prepare: func(t *testing.T, h *harness) string {
				return "/enrow/email/find/bulk?id=" + post(t, h, "/enrow/email/find/bulk",
					`{"searches":[{"fullname":"Tim Cook","company_domain":"apple.com"},{"fullname":"Nobody","company_domain":"apple.com"},{"fullname":"Jeff Williams","company_domain":"apple.com"}]}`)
			},
			method: "GET", wantCode: 200, wantStatus: "ok", wantCalls: 1,
			check: func(t *testing.T, h *harness, a answer) {
				j := a.env.Job
				if j == nil || j.State != "completed" || j.Total == nil || *j.Total != 3 ||
					j.Counts[normalize.QualFound] != 2 || j.Counts[normalize.QualNotFound] != 1 {
					t.Errorf("got job %+v, want completed 3 with found 2, not_found 1", j)
				}
				if a.env.Qualification != "" {
					t.Errorf("got qualification %q on a bulk job, want none", a.env.Qualification)
				}
			}},
		{name: "enrow bulk ongoing answered 202 is pending/running",
			opts: []func(*setup){withEnrow(func(o *vendorsim.Options) { o.PendingPolls = 5; o.BulkOngoing202 = true })},
			prepare: func(t *testing.T, h *harness) string {
				return "/enrow/email/verify/bulk?id=" + post(t, h, "/enrow/email/verify/bulk", `{"verifications":["a@apple.com","b@apple.com"]}`)
			},
			method: "GET", wantCode: 202, wantStatus: "pending", wantCalls: 1,
			check: func(t *testing.T, h *harness, a answer) {
				if a.env.Job == nil || a.env.Job.State != "running" {
					t.Errorf("got job %+v, want state running", a.env.Job)
				}
			}},
		{name: "enrow bulk ongoing answered 200 is pending too",
			opts: []func(*setup){withEnrow(func(o *vendorsim.Options) { o.PendingPolls = 5 })},
			prepare: func(t *testing.T, h *harness) string {
				return "/enrow/phone/bulk?id=" + post(t, h, "/enrow/phone/bulk", `{"searches":[{"linkedin_url":"https://www.linkedin.com/in/a"}]}`)
			},
			method: "GET", wantCode: 202, wantStatus: "pending", wantCalls: 1},
		{name: "enrow failed bulk job is upstream_error/job_failed",
			prepare: func(t *testing.T, h *harness) string {
				return "/enrow/email/find/bulk?id=" + post(t, h, "/enrow/email/find/bulk", `{"searches":[{"fullname":"failjob","company_domain":"apple.com"}]}`)
			},
			method: "GET", wantCode: 502, wantStatus: "upstream_error", wantError: "job_failed", wantCalls: 1},
		{name: "enrow unknown bulk id (400 Could not retrieve bulk) is not_found",
			method: "GET", path: "/enrow/email/verify/bulk?id=nope",
			wantCode: 404, wantStatus: "not_found", wantError: "unknown_id", wantCalls: 1},
		{name: "enrow 400 is invalid_request/vendor_rejected with the vendor's message",
			method: "POST", path: "/enrow/email/find/single", body: `{"company_domain":"apple.com"}`,
			wantCode: 400, wantStatus: "invalid_request", wantError: "vendor_rejected", wantCalls: 1,
			check: func(t *testing.T, h *harness, a answer) {
				if a.env.Error.Message != "input payload is missing fullname" {
					t.Errorf("got message %q, want the vendor's", a.env.Error.Message)
				}
			}},
		{name: "enrow 401 is unauthorized/vendor_auth", opts: []func(*setup){withEnv("ENROW_API_KEY", "wrong-key")},
			method: "GET", path: "/enrow/account/info",
			wantCode: 401, wantStatus: "unauthorized", wantError: "vendor_auth", wantCalls: 1},
		{name: "enrow 402 reason shape is insufficient_credits",
			prepare: func(_ *testing.T, h *harness) string { h.enrow.SetCredits(0.1); return "" },
			method:  "POST", path: "/enrow/email/find/single", body: timCook,
			wantCode: 402, wantStatus: "insufficient_credits", wantError: "insufficient_credits", wantCalls: 1},
		{name: "enrow 402 message shape on bulk is insufficient_credits",
			prepare: func(_ *testing.T, h *harness) string { h.enrow.SetCredits(0.1); return "" },
			method:  "POST", path: "/enrow/email/find/bulk", body: `{"searches":[{"fullname":"Tim Cook","company_domain":"apple.com"}]}`,
			wantCode: 402, wantStatus: "insufficient_credits", wantError: "insufficient_credits", wantCalls: 1},
		{name: "enrow legacy 422 is insufficient_credits",
			opts:    []func(*setup){withEnrow(func(o *vendorsim.Options) { o.Legacy422 = true })},
			prepare: func(_ *testing.T, h *harness) string { h.enrow.SetCredits(0.1); return "" },
			method:  "POST", path: "/enrow/email/find/single", body: timCook,
			wantCode: 402, wantStatus: "insufficient_credits", wantError: "insufficient_credits", wantCalls: 1},
		{name: "enrow 429 with a Retry-After beyond max_retry_wait is answered at once",
			prepare: script(vendorsim.Answer{Status: 429, Header: http.Header{"Retry-After": {"120"}}, Body: `{"message":"Too Many Requests"}`}),
			method:  "POST", path: "/enrow/email/find/single", body: timCook,
			wantCode: 429, wantStatus: "rate_limited", wantError: "vendor_rate_limited", wantCalls: 1,
			check: func(t *testing.T, h *harness, a answer) {
				if a.env.RetryAfterSeconds != 120 || a.header.Get("Retry-After") != "120" {
					t.Errorf("got retry_after_seconds %d, Retry-After %q, want 120", a.env.RetryAfterSeconds, a.header.Get("Retry-After"))
				}
			}},
		{name: "enrow 5xx after retries is upstream_error/vendor_error",
			prepare: script(vendorsim.Answer{Status: 503, Body: `{"message":"Service Unavailable"}`},
				vendorsim.Answer{Status: 503, Body: `{"message":"Service Unavailable"}`},
				vendorsim.Answer{Status: 500, Body: `{"message":"Internal Server Error"}`}),
			method: "GET", path: "/enrow/account/info",
			wantCode: 502, wantStatus: "upstream_error", wantError: "vendor_error", wantCalls: 3,
			check: func(t *testing.T, h *harness, a answer) {
				if a.env.Upstream == nil || a.env.Upstream.Attempts != 3 || a.env.Upstream.Status != 500 {
					t.Errorf("got upstream %+v, want 3 attempts ending in 500", a.env.Upstream)
				}
				if a.header.Get("X-Upstream-Status") != "500" {
					t.Errorf("got X-Upstream-Status %q, want 500", a.header.Get("X-Upstream-Status"))
				}
			}},
		{name: "a load balancer's HTML 502 is still a vendor 5xx",
			prepare: script(vendorsim.Answer{Status: 502, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html><body>Bad Gateway</body></html>"},
				vendorsim.Answer{Status: 502, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html><body>Bad Gateway</body></html>"},
				vendorsim.Answer{Status: 502, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html><body>Bad Gateway</body></html>"}),
			method: "GET", path: "/enrow/account/info",
			wantCode: 502, wantStatus: "upstream_error", wantError: "vendor_error", wantCalls: 3},
		{name: "an HTML 200 is bad_vendor_reply with the text kept in the message",
			prepare: script(vendorsim.Answer{Status: 200, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html>maintenance</html>"}),
			method:  "GET", path: "/enrow/account/info",
			wantCode: 502, wantStatus: "upstream_error", wantError: "bad_vendor_reply", wantCalls: 1,
			check: func(t *testing.T, h *harness, a answer) {
				if !strings.Contains(a.env.Error.Message, "maintenance") {
					t.Errorf("got message %q, want the vendor's text", a.env.Error.Message)
				}
			}},
		{name: "a redirect is not followed: bad_vendor_reply",
			prepare: script(vendorsim.Answer{Status: 302, Header: http.Header{"Location": {"http://127.0.0.1:1/elsewhere"}}, Body: `{}`}),
			method:  "GET", path: "/enrow/account/info",
			wantCode: 502, wantStatus: "upstream_error", wantError: "bad_vendor_reply", wantCalls: 1},
		{name: "a vendor hang is a 504 at the request's deadline",
			prepare: script(vendorsim.Answer{Hang: true}),
			method:  "GET", path: "/enrow/account/info", headers: []string{"X-Request-Timeout", "0.2"},
			wantCode: 504, wantStatus: "timeout", wantError: "deadline_exceeded", wantCalls: 1},
		{name: "an open breaker fails fast without calling the vendor",
			opts: []func(*setup){withEnv("ENROW_BREAKER_CONSECUTIVE_FAILURES", "1", "ENROW_MAX_ATTEMPTS", "1")},
			prepare: func(t *testing.T, h *harness) string {
				h.enrow.Script(vendorsim.Answer{Status: 503, Body: `{"message":"down"}`})
				if a := h.do("GET", "/enrow/account/info", ""); a.code != 502 {
					t.Fatalf("tripping call: got %d, want 502", a.code)
				}
				return ""
			},
			method: "GET", path: "/enrow/account/info",
			wantCode: 503, wantStatus: "unavailable", wantError: "circuit_open", wantCalls: 0,
			check: func(t *testing.T, h *harness, a answer) {
				if a.env.RetryAfterSeconds < 25 || a.header.Get("Retry-After") == "" {
					t.Errorf("got retry_after_seconds %d (Retry-After %q), want about 30", a.env.RetryAfterSeconds, a.header.Get("Retry-After"))
				}
				if a.env.Upstream != nil {
					t.Errorf("got upstream %+v, want none: the vendor was not called", a.env.Upstream)
				}
			}},
		{name: "ecore enrichment success is ok/found", method: "POST", path: "/ecore/external/email/enrichment/",
			body:     `{"first_name":"Tim","last_name":"Cook","company_website":"apple.com"}`,
			wantCode: 200, wantStatus: "ok", wantQual: "found", wantCalls: 1,
			check: func(t *testing.T, h *harness, a answer) {
				if a.env.Result == nil || a.env.Result.Email == "" {
					t.Errorf("got result %+v, want an email", a.env.Result)
				}
				if a.env.Credits == nil || a.env.Credits.Remaining == nil {
					t.Errorf("got credits %+v, want remaining", a.env.Credits)
				}
			}},
		{name: "ecore 200 not_found is ok/not_found", method: "POST", path: "/ecore/external/phone/enrichment/",
			body:     `{"linkedin_url":"https://www.linkedin.com/in/nobody"}`,
			wantCode: 200, wantStatus: "ok", wantQual: "not_found", wantCalls: 1},
		{name: "ecore validation upload is pending with the integer job id as a string",
			method: "POST", path: "/ecore/email-validation/jobs/upload/", body: `{"emails":["a@apple.com","b@apple.com"]}`,
			wantCode: 202, wantStatus: "pending", wantCalls: 1,
			check: func(t *testing.T, h *harness, a answer) {
				if a.env.ID != "1" {
					t.Errorf("got id %q, want \"1\"", a.env.ID)
				}
				if a.env.Operation != normalize.OpEmailVerifyBulk {
					t.Errorf("got operation %q, want email.verify.bulk", a.env.Operation)
				}
			}},
		{name: "ecore processed job is ok/completed with counts",
			prepare: func(t *testing.T, h *harness) string {
				id := post(t, h, "/ecore/email-validation/jobs/upload/", `{"emails":["a@apple.com","invalid@apple.com","unknown@apple.com"]}`)
				return "/ecore/email-validation/jobs/" + id + "/"
			},
			method: "GET", wantCode: 200, wantStatus: "ok", wantCalls: 1,
			check: func(t *testing.T, h *harness, a answer) {
				j := a.env.Job
				if j == nil || j.State != "completed" || j.Counts[normalize.QualValid] != 1 ||
					j.Counts[normalize.QualInvalid] != 1 || j.Counts[normalize.QualUnknown] != 1 {
					t.Errorf("got job %+v, want completed with valid 1, invalid 1, unknown 1", j)
				}
			}},
		{name: "ecore processing job is pending/running",
			opts: []func(*setup){withECore(func(o *vendorsim.Options) { o.PendingPolls = 5 })},
			prepare: func(t *testing.T, h *harness) string {
				return "/ecore/email-validation/jobs/" + post(t, h, "/ecore/email-validation/jobs/upload/", `{"emails":["a@apple.com"]}`) + "/"
			},
			method: "GET", wantCode: 202, wantStatus: "pending", wantCalls: 1},
		{name: "ecore failed job is upstream_error/job_failed",
			prepare: func(t *testing.T, h *harness) string {
				return "/ecore/email-validation/jobs/" + post(t, h, "/ecore/email-validation/jobs/upload/", `{"emails":["failjob@apple.com"]}`) + "/"
			},
			method: "GET", wantCode: 502, wantStatus: "upstream_error", wantError: "job_failed", wantCalls: 1},
		{name: "ecore 404 is not_found/unknown_id", method: "GET", path: "/ecore/email-validation/jobs/999/",
			wantCode: 404, wantStatus: "not_found", wantError: "unknown_id", wantCalls: 1},
		{name: "ecore 401 is unauthorized/vendor_auth", opts: []func(*setup){withEnv("ECORE_API_TOKEN", "wrong")},
			method: "GET", path: "/ecore/external/search/",
			wantCode: 401, wantStatus: "unauthorized", wantError: "vendor_auth", wantCalls: 1},
		{name: "ecore 402 carries required and balance",
			prepare: func(_ *testing.T, h *harness) string { h.ecore.SetCredits(0.5); return "" },
			method:  "POST", path: "/ecore/email-validation/jobs/upload/", body: `{"emails":["a@apple.com","b@apple.com"]}`,
			wantCode: 402, wantStatus: "insufficient_credits", wantError: "insufficient_credits", wantCalls: 1,
			check: func(t *testing.T, h *harness, a answer) {
				if c := a.env.Credits; c == nil || c.Required == nil || c.Balance == nil {
					t.Errorf("got credits %+v, want required and balance", c)
				}
			}},
		{name: "ecore DRF field map is flattened into error.fields",
			method: "POST", path: "/ecore/email-validation/jobs/upload/", body: `{"emails":["a@apple.com","b@apple.com","c@apple.com","not-an-email"]}`,
			wantCode: 400, wantStatus: "invalid_request", wantError: "vendor_rejected", wantCalls: 1,
			check: func(t *testing.T, h *harness, a answer) {
				if got := a.env.Error.Fields["emails.3"]; len(got) != 1 {
					t.Errorf("got fields %v, want emails.3", a.env.Error.Fields)
				}
			}},
		{name: "ecore non-daily 429 is rate_limited",
			prepare: ecoreScript(vendorsim.Answer{Status: 429, Header: http.Header{"Retry-After": {"60"}}, Body: `{"detail":"Request was throttled."}`}),
			method:  "GET", path: "/ecore/external/search/",
			wantCode: 429, wantStatus: "rate_limited", wantError: "vendor_rate_limited", wantCalls: 1},
		{name: "a body over the limit is 413 and nothing is forwarded", opts: []func(*setup){withEnv("PROXY_MAX_BODY_BYTES", "64")},
			method: "POST", path: "/enrow/email/find/single", body: `{"fullname":"` + strings.Repeat("x", 100) + `","company_domain":"apple.com"}`,
			wantCode: 413, wantStatus: "payload_too_large", wantError: "body_too_large", wantCalls: 0},
		{name: "an unknown route is 404 unknown_route", method: "GET", path: "/nowhere/at/all",
			wantCode: 404, wantStatus: "not_found", wantError: "unknown_route", wantCalls: 0},
		{name: "a dot-dot path is rejected before forwarding", method: "GET", path: "/enrow/email/../../admin",
			wantCode: 400, wantStatus: "invalid_request", wantError: "path_escape", wantCalls: 0},
		{name: "an X-Request-Timeout that is not a number of seconds is invalid_input", method: "GET", path: "/enrow/account/info",
			headers:  []string{"X-Request-Timeout", "soon"},
			wantCode: 400, wantStatus: "invalid_request", wantError: "invalid_input", wantCalls: 0},
		{name: "an encoded slash is rejected before forwarding", method: "GET", path: "/enrow/email%2F..%2Fadmin",
			wantCode: 400, wantStatus: "invalid_request", wantError: "path_escape", wantCalls: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, tc.opts...)
			path := tc.path
			if tc.prepare != nil {
				if p := tc.prepare(t, h); p != "" {
					path = p
				}
			}
			before := h.enrow.CallCount() + h.ecore.CallCount()
			a := h.do(tc.method, path, tc.body, tc.headers...)
			if a.code != tc.wantCode {
				t.Errorf("got HTTP %d, want %d\n%s", a.code, tc.wantCode, a.raw)
			}
			if a.env.Status != tc.wantStatus {
				t.Errorf("got status %q, want %q", a.env.Status, tc.wantStatus)
			}
			if a.env.Qualification != tc.wantQual {
				t.Errorf("got qualification %q, want %q", a.env.Qualification, tc.wantQual)
			}
			switch {
			case tc.wantError == "" && a.env.Error != nil:
				t.Errorf("got error %+v, want none", a.env.Error)
			case tc.wantError != "" && (a.env.Error == nil || a.env.Error.Code != tc.wantError):
				t.Errorf("got error %+v, want code %q", a.env.Error, tc.wantError)
			}
			if a.env.RequestID == "" || a.env.RequestID != a.header.Get("X-Request-Id") {
				t.Errorf("got request_id %q and X-Request-Id %q, want the same non-empty id", a.env.RequestID, a.header.Get("X-Request-Id"))
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("got Content-Type %q, want application/json", ct)
			}
			if code := tc.wantCode; (code == 429 || code == 503) && a.header.Get("Retry-After") != fmt.Sprint(a.env.RetryAfterSeconds) {
				t.Errorf("got Retry-After %q, want retry_after_seconds %d", a.header.Get("Retry-After"), a.env.RetryAfterSeconds)
			}
			if tc.wantCalls >= 0 {
				if got := h.enrow.CallCount() + h.ecore.CallCount() - before; got != tc.wantCalls {
					t.Errorf("got %d vendor calls, want %d", got, tc.wantCalls)
				}
			}
			if tc.check != nil {
				tc.check(t, h, a)
			}
		})
	}
}

// TestDailyQuotaIsRemembered: eCore's daily test-token cap is quota_exceeded with the wait
// to midnight UTC, never retried, and answered by the proxy until then.
func TestDailyQuotaIsRemembered(t *testing.T) {
	h := start(t, withECore(func(o *vendorsim.Options) { o.DailyQuota = 1 }))
	if a := h.do("GET", "/ecore/external/search/", ""); a.code != 200 {
		t.Fatalf("first call: got %d, want 200\n%s", a.code, a.raw)
	}
	now := time.Now().UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	want := int(midnight.Sub(now).Seconds())
	for i, wantCalls := range []int{2, 2} {
		a := h.do("GET", "/ecore/external/search/", "")
		if a.code != 429 || a.env.Status != "quota_exceeded" || a.env.Error == nil || a.env.Error.Code != "daily_quota" {
			t.Fatalf("call %d: got %d %q %+v, want 429 quota_exceeded/daily_quota", i+2, a.code, a.env.Status, a.env.Error)
		}
		if d := a.env.RetryAfterSeconds - want; d < -5 || d > 5 {
			t.Errorf("call %d: got retry_after_seconds %d, want about %d (to midnight UTC)", i+2, a.env.RetryAfterSeconds, want)
		}
		if got := h.ecore.CallCount(); got != wantCalls {
			t.Errorf("call %d: got %d vendor calls in all, want %d", i+2, got, wantCalls)
		}
	}
}

// TestStreamedAnswers: a file download and an answer over the normalize limit pass through
// unchanged, with the X-Enrich-* headers (SPEC 3.5).
func TestStreamedAnswers(t *testing.T) {
	t.Run("an eCore CSV download", func(t *testing.T) {
		h := start(t)
		id := post(t, h, "/ecore/email-validation/jobs/upload/", `{"emails":["a@apple.com"]}`)
		a := h.do("GET", "/ecore/email-validation/jobs/"+id+"/download/", "")
		if a.code != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("got %d %q, want 200 text/csv\n%s", a.code, a.header.Get("Content-Type"), a.raw)
		}
		if !strings.HasPrefix(string(a.raw), "Email,Status") {
			t.Errorf("got body %q, want the vendor's CSV", a.raw)
		}
		want := map[string]string{"X-Enrich-Status": "ok", "X-Enrich-Vendor": "ecore",
			"X-Enrich-Operation": "email.verify.bulk", "X-Upstream-Status": "200"}
		for k, v := range want {
			if got := a.header.Get(k); got != v {
				t.Errorf("got %s %q, want %q", k, got, v)
			}
		}
		if a.header.Get("X-Request-Id") == "" {
			t.Error("no X-Request-Id on a streamed answer")
		}
	})
	t.Run("a JSON answer over PROXY_MAX_NORMALIZE_BYTES", func(t *testing.T) {
		h := start(t, withEnv("PROXY_MAX_NORMALIZE_BYTES", "64"))
		h.enrow.Script(vendorsim.Answer{Status: 200, Body: `{"credits":12,"webhooks":["https://example.com/` + strings.Repeat("a", 200) + `"]}`})
		a := h.do("GET", "/enrow/account/info", "")
		if a.code != 200 || a.header.Get("X-Enrich-Status") != "ok" || !strings.Contains(string(a.raw), strings.Repeat("a", 200)) {
			t.Errorf("got %d, X-Enrich-Status %q, body %d bytes; want 200, ok and the vendor's body", a.code, a.header.Get("X-Enrich-Status"), len(a.raw))
		}
		if strings.Contains(string(a.raw), `"request_id"`) {
			t.Errorf("got an envelope, want the vendor's body unchanged")
		}
	})
}
