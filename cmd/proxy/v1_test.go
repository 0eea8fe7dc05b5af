package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
	"github.com/enrichproxy/enrichproxy/internal/vendorsim"
)

// The /v1 API (SPEC 7, 11) end to end, and the answers held to the OpenAPI document the
// admin listener serves.

// v1Quick: fast polls, and no credits refresh, whose GET /account/info would otherwise
// show up among the vendor calls and take scripted answers.
func v1Quick(kv ...string) func(*setup) {
	return withEnv(append([]string{"ENROW_POLL_INTERVAL", "20ms", "ECORE_POLL_INTERVAL", "20ms",
		"ENROW_CREDITS_REFRESH", "0"}, kv...)...)
}

const v1TimCook = `{"first_name":"Tim","last_name":"Cook","company_domain":"apple.com"}`

var (
	v1EnrowFindID = regexp.MustCompile(`^enrow:email\.find:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	v1ECoreJobID  = regexp.MustCompile(`^ecore:email\.verify:[0-9]+$`)
)

// v1CallsTo returns the calls with this method and path.
func v1CallsTo(calls []vendorsim.Call, method, path string) []vendorsim.Call {
	var out []vendorsim.Call
	for _, c := range calls {
		if c.Method == method && c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// v1Want checks the status line of an answer and its envelope.
func v1Want(t *testing.T, a answer, code int, status normalize.Status, qual normalize.Qualification, vendor string) {
	t.Helper()
	if a.code != code || a.env.Status != status || a.env.Qualification != qual || a.env.Vendor != vendor {
		t.Fatalf("got %d %s/%s from %q, want %d %s/%s from %q\n%s", a.code, a.env.Status, a.env.Qualification,
			a.env.Vendor, code, status, qual, vendor, a.raw)
	}
}

// v1WantFailover checks the envelope's failover list.
func v1WantFailover(t *testing.T, a answer, want ...normalize.FailoverStep) {
	t.Helper()
	if !slices.Equal(a.env.Failover, want) {
		t.Errorf("got failover %+v, want %+v", a.env.Failover, want)
	}
	if len(want) == 0 && bytes.Contains(a.raw, []byte(`"failover"`)) {
		t.Errorf("an answer without failover has a failover field: %s", a.raw)
	}
}

func v1WantError(t *testing.T, a answer, code int, status normalize.Status, errCode string) {
	t.Helper()
	if a.code != code || a.env.Status != status || a.env.Error == nil || a.env.Error.Code != errCode {
		t.Fatalf("got %d %s %+v, want %d %s/%s\n%s", a.code, a.env.Status, a.env.Error, code, status, errCode, a.raw)
	}
}

func TestV1Failover(t *testing.T) {
	cases := []struct {
		name    string
		opts    []func(*setup)
		prepare func(t *testing.T, h *harness)
		first   string // the vendor passed over
		want    normalize.FailoverStep
	}{
		{name: "enrow breaker open", first: "enrow",
			opts: []func(*setup){v1Quick("ENROW_BREAKER_CONSECUTIVE_FAILURES", "1", "ENROW_MAX_ATTEMPTS", "1")},
			prepare: func(t *testing.T, h *harness) {
				h.enrow.Script(vendorsim.Answer{Status: 503, Body: `{"message":"down"}`})
				if a := h.do("GET", "/enrow/account/info", ""); a.code != 502 {
					t.Fatalf("tripping call: got %d, want 502\n%s", a.code, a.raw)
				}
			},
			want: normalize.FailoverStep{Vendor: "enrow", Status: normalize.StatusUnavailable}},
		{name: "enrow out of credits (402)", first: "enrow", opts: []func(*setup){v1Quick()},
			prepare: func(_ *testing.T, h *harness) { h.enrow.SetCredits(0.1) },
			want:    normalize.FailoverStep{Vendor: "enrow", Status: normalize.StatusInsufficientCredits}},
		{name: "enrow key refused (401)", first: "enrow", opts: []func(*setup){v1Quick("ENROW_API_KEY", "wrong-key")},
			want: normalize.FailoverStep{Vendor: "enrow", Status: normalize.StatusUnauthorized}},
		{name: "ecore first, daily quota used up", first: "ecore",
			opts: []func(*setup){v1Quick("PROXY_VENDOR_ORDER", "ecore,enrow"), withECore(func(o *vendorsim.Options) { o.DailyQuota = 1 })},
			prepare: func(t *testing.T, h *harness) {
				if a := h.do("GET", "/ecore/external/search/", ""); a.code != 200 {
					t.Fatalf("using up the quota: got %d, want 200\n%s", a.code, a.raw)
				}
			},
			want: normalize.FailoverStep{Vendor: "ecore", Status: normalize.StatusQuotaExceeded}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, tc.opts...)
			if tc.prepare != nil {
				tc.prepare(t, h)
			}
			enrowBefore, ecoreBefore := h.enrow.CallCount(), h.ecore.CallCount()
			a := h.do("POST", "/v1/email/find", v1TimCook, "Prefer", "wait=10")
			second := map[string]string{"enrow": "ecore", "ecore": "enrow"}[tc.first]
			v1Want(t, a, 200, normalize.StatusOK, normalize.QualFound, second)
			v1WantFailover(t, a, tc.want)
			if a.env.Operation != normalize.OpEmailFind || a.env.Result == nil || a.env.Result.Email == "" {
				t.Errorf("got operation %q, result %+v; want email.find with an email", a.env.Operation, a.env.Result)
			}
			enrowCalls, ecoreCalls := h.enrow.CallCount()-enrowBefore, h.ecore.CallCount()-ecoreBefore
			switch {
			case tc.want.Status == normalize.StatusUnavailable && enrowCalls != 0:
				t.Errorf("the open breaker let %d calls reach Enrow, want none", enrowCalls)
			case tc.first == "enrow" && tc.want.Status != normalize.StatusUnavailable && enrowCalls != 1:
				t.Errorf("got %d Enrow calls, want the one that was refused", enrowCalls)
			case tc.first == "ecore" && ecoreCalls > 1:
				t.Errorf("got %d eCore calls, want at most the one that was refused", ecoreCalls)
			}
			if tc.first == "enrow" && ecoreCalls != 1 {
				t.Errorf("got %d eCore calls, want 1", ecoreCalls)
			}
			if got := a.header.Get("Preference-Applied"); got != "wait=10" {
				t.Errorf("got Preference-Applied %q, want wait=10", got)
			}
			v1Conform(t, h, "POST", "/v1/email/find", a)
		})
	}
}

// TestV1NotFoundIsAnAnswer: eCore's "not_found" is what the vendor found, not a failure:
// ok/not_found, and Enrow is not asked.
func TestV1NotFoundIsAnAnswer(t *testing.T) {
	h := start(t, v1Quick("PROXY_VENDOR_ORDER", "ecore,enrow"))
	a := h.do("POST", "/v1/email/find", `{"full_name":"Nobody Here","company_domain":"apple.com"}`, "Prefer", "wait=5")
	v1Want(t, a, 200, normalize.StatusOK, normalize.QualNotFound, "ecore")
	v1WantFailover(t, a)
	if n := h.enrow.CallCount(); n != 0 {
		t.Errorf("Enrow got %d calls, want none", n)
	}
	v1Conform(t, h, "POST", "/v1/email/find", a)
}

// TestV1ExplicitVendor: ?vendor= and X-Vendor pick the vendor and disable failover.
func TestV1ExplicitVendor(t *testing.T) {
	h := start(t, v1Quick())
	h.enrow.SetCredits(0.1)
	for _, how := range [][]string{{"?vendor=enrow"}, {"", "X-Vendor", "enrow"}} {
		t.Run(strings.Join(how, " "), func(t *testing.T) {
			before := h.ecore.CallCount()
			a := h.do("POST", "/v1/email/find"+how[0], v1TimCook, how[1:]...)
			v1WantError(t, a, 402, normalize.StatusInsufficientCredits, normalize.CodeInsufficientCredits)
			if a.env.Vendor != "enrow" {
				t.Errorf("got vendor %q, want enrow", a.env.Vendor)
			}
			v1WantFailover(t, a)
			if n := h.ecore.CallCount() - before; n != 0 {
				t.Errorf("eCore got %d calls, want none: failover is off", n)
			}
			v1Conform(t, h, "POST", "/v1/email/find", a)
		})
	}
	t.Run("?vendor=ecore skips the first vendor", func(t *testing.T) {
		before := h.enrow.CallCount()
		a := h.do("POST", "/v1/email/find?vendor=ecore", v1TimCook)
		v1Want(t, a, 200, normalize.StatusOK, normalize.QualFound, "ecore")
		if n := h.enrow.CallCount() - before; n != 0 {
			t.Errorf("Enrow got %d calls, want none", n)
		}
	})
	t.Run("an unknown vendor is invalid_input", func(t *testing.T) {
		a := h.do("POST", "/v1/email/find", v1TimCook, "X-Vendor", "acme")
		v1WantError(t, a, 400, normalize.StatusInvalidRequest, normalize.CodeInvalidInput)
	})
}

// TestV1OnlyConfiguredCredentials: a vendor without a configured credential is never
// chosen, not even by name (SPEC 11).
func TestV1OnlyConfiguredCredentials(t *testing.T) {
	h := start(t, v1Quick("ENROW_API_KEY", ""))
	a := h.do("POST", "/v1/email/find", v1TimCook, "Prefer", "wait=5")
	v1Want(t, a, 200, normalize.StatusOK, normalize.QualFound, "ecore")
	v1WantFailover(t, a)
	for _, how := range [][]string{{"?vendor=enrow"}, {"", "X-Vendor", "enrow"}} {
		a := h.do("POST", "/v1/email/find"+how[0], v1TimCook, how[1:]...)
		v1WantError(t, a, 400, normalize.StatusInvalidRequest, normalize.CodeInvalidInput)
		v1Conform(t, h, "POST", "/v1/email/find", a)
	}
	if n := h.enrow.CallCount(); n != 0 {
		t.Errorf("Enrow got %d calls, want none: it has no configured credential", n)
	}
}

// TestV1Results: the composite id leads back to the vendor's GET, with no state.
func TestV1Results(t *testing.T) {
	h := start(t, v1Quick())
	cases := []struct {
		post, body string
		wantID     string // "{uuid}" for a fresh Enrow id
		vendorPath string
		wantQual   normalize.Qualification
	}{
		{"/v1/email/find", v1TimCook, "enrow:email.find:", "/email/find/single", normalize.QualFound},
		{"/v1/email/verify", `{"email":"tim@apple.com"}`, "enrow:email.verify:", "/email/verify/single", normalize.QualValid},
		{"/v1/phone/find", `{"linkedin_url":"https://www.linkedin.com/in/tim-cook"}`, "enrow:phone.find:", "/phone/single", normalize.QualFound},
	}
	for _, tc := range cases {
		t.Run(tc.post, func(t *testing.T) {
			a := h.do("POST", tc.post, tc.body)
			v1Want(t, a, 202, normalize.StatusPending, normalize.QualPending, "enrow")
			v1Conform(t, h, "POST", tc.post, a)
			ref := a.env.ID
			id, ok := strings.CutPrefix(ref, tc.wantID)
			if !ok || id == "" {
				t.Fatalf("got id %q, want %s<id>", ref, tc.wantID)
			}
			for i, path := range []string{"/v1/results/" + ref, "/v1/results/" + strings.ReplaceAll(ref, ":", "%3A")} {
				before := len(h.enrow.Calls())
				r := h.do("GET", path, "")
				v1Want(t, r, 200, normalize.StatusOK, tc.wantQual, "enrow")
				if r.env.ID != ref {
					t.Errorf("GET %s: got id %q, want %q", path, r.env.ID, ref)
				}
				// The second read of a final result may come from the proxy's cache.
				if calls := h.enrow.Calls()[before:]; i == 0 && (len(calls) != 1 || calls[0].Method != "GET" ||
					calls[0].Path != tc.vendorPath || calls[0].RawQuery != "id="+id) {
					t.Errorf("GET %s reached %v, want one GET %s?id=%s", path, v1Paths(calls), tc.vendorPath, id)
				}
				v1Conform(t, h, "GET", path, r)
			}
		})
	}
	t.Run("ecore:email.verify", func(t *testing.T) {
		a := h.do("POST", "/v1/email/verify?vendor=ecore", `{"email":"tim@apple.com"}`)
		v1Want(t, a, 202, normalize.StatusPending, normalize.QualPending, "ecore")
		if !v1ECoreJobID.MatchString(a.env.ID) || a.env.Operation != normalize.OpEmailVerify || a.env.Job != nil {
			t.Fatalf("got id %q, operation %q, job %+v; want ecore:email.verify:<n>, email.verify, no job", a.env.ID, a.env.Operation, a.env.Job)
		}
		n := strings.TrimPrefix(a.env.ID, "ecore:email.verify:")
		before := len(h.ecore.Calls())
		r := h.do("GET", "/v1/results/"+a.env.ID, "")
		v1Want(t, r, 200, normalize.StatusOK, normalize.QualValid, "ecore")
		calls := h.ecore.Calls()[before:]
		if len(calls) != 1 || calls[0].Method != "GET" || calls[0].Path != "/email-validation/jobs/"+n+"/" {
			t.Errorf("reached %+v, want one GET /email-validation/jobs/%s/", calls, n)
		}
		if r.env.ID != a.env.ID || r.env.Operation != normalize.OpEmailVerify {
			t.Errorf("got id %q operation %q, want %q email.verify", r.env.ID, r.env.Operation, a.env.ID)
		}
		v1Conform(t, h, "GET", "/v1/results/"+a.env.ID, r)
	})
	t.Run("an unknown enrow id is not_found", func(t *testing.T) {
		path := "/v1/results/enrow:email.find:00000000-0000-4000-8000-000000000000"
		r := h.do("GET", path, "")
		v1WantError(t, r, 404, normalize.StatusNotFound, normalize.CodeUnknownID)
		v1Conform(t, h, "GET", path, r)
	})
	t.Run("malformed references are 400 and reach no vendor", func(t *testing.T) {
		for _, ref := range []string{"enrow", "enrow:email.find", "enrow:email.find:", "acme:email.find:1",
			"enrow:search:1", "enrow:email.find.bulk:1", "ecore:email.find:1", "ecore:email.verify:abc",
			"ecore:email.verify:..", "ecore:email.verify:1..", "ecore:email.verify:-1", ":email.find:1"} {
			before := h.enrow.CallCount() + h.ecore.CallCount()
			path := "/v1/results/" + url.PathEscape(ref)
			r := h.do("GET", path, "")
			if r.code != 400 || r.env.Error == nil || r.env.Error.Code != normalize.CodeInvalidInput {
				t.Errorf("GET %s: got %d %+v, want 400 invalid_input\n%s", path, r.code, r.env.Error, r.raw)
			}
			if n := h.enrow.CallCount() + h.ecore.CallCount() - before; n != 0 {
				t.Errorf("GET %s: %d vendor calls, want none", path, n)
			}
			v1Conform(t, h, "GET", path, r)
		}
	})
}

// TestV1FieldTranslation checks on the wire what each vendor receives (SPEC 7, 11).
func TestV1FieldTranslation(t *testing.T) {
	const li = "https://www.linkedin.com/in/tim-cook"
	enrowOnly := v1Quick("ECORE_API_TOKEN", "")
	ecoreOnly := v1Quick("ENROW_API_KEY", "")
	cases := []struct {
		name   string
		opt    func(*setup)
		path   string
		body   string
		vendor string
		want   string // vendor path
		wire   string // the exact JSON body the vendor gets
	}{
		{"enrow finder: fullname from first+last, company, settings.country_code, custom", enrowOnly, "/v1/email/find",
			`{"first_name":"Tim","last_name":"Cook","company_domain":"apple.com","company_name":"Apple","country_code":"US","custom":{"crm_id":42}}`,
			"enrow", "/email/find/single",
			`{"fullname":"Tim Cook","company_domain":"apple.com","company_name":"Apple","settings":{"country_code":"US"},"custom":{"crm_id":42}}`},
		{"enrow finder: full_name as it is", enrowOnly, "/v1/email/find", `{"full_name":"Tim Cook","company_name":"Apple"}`,
			"enrow", "/email/find/single", `{"fullname":"Tim Cook","company_name":"Apple"}`},
		{"enrow phone: linkedin_url alone wins", enrowOnly, "/v1/phone/find",
			`{"linkedin_url":"` + li + `","full_name":"Tim Cook","company_domain":"apple.com"}`,
			"enrow", "/phone/single", `{"linkedin_url":"` + li + `"}`},
		{"enrow phone: names and company", enrowOnly, "/v1/phone/find", `{"full_name":"Tim Cook","company_domain":"apple.com"}`,
			"enrow", "/phone/single", `{"first_name":"Tim","last_name":"Cook","firstname":"Tim","lastname":"Cook","company_domain":"apple.com"}`},
		{"enrow verifier: email and custom", enrowOnly, "/v1/email/verify", `{"email":"tim@apple.com","custom":{"a":1}}`,
			"enrow", "/email/verify/single", `{"email":"tim@apple.com","custom":{"a":1}}`},
		{"ecore finder: full_name split at its first space, company_website from company_domain", ecoreOnly, "/v1/email/find",
			`{"full_name":"Mary Ann Smith","company_domain":"acme.com","country_code":"US","custom":{"a":1}}`,
			"ecore", "/external/email/enrichment/", `{"first_name":"Mary","last_name":"Ann Smith","company_website":"acme.com"}`},
		{"ecore finder: linkedin_url first", ecoreOnly, "/v1/email/find",
			`{"linkedin_url":"` + li + `","first_name":"Tim","last_name":"Cook","company_domain":"apple.com","company_name":"Apple"}`,
			"ecore", "/external/email/enrichment/", `{"linkedin_url":"` + li + `"}`},
		{"ecore finder: names + company_website before names + company_name", ecoreOnly, "/v1/email/find",
			`{"first_name":"Tim","last_name":"Cook","company_domain":"apple.com","company_name":"Apple"}`,
			"ecore", "/external/email/enrichment/", `{"first_name":"Tim","last_name":"Cook","company_website":"apple.com"}`},
		{"ecore finder: names + company_name", ecoreOnly, "/v1/email/find", `{"first_name":"Tim","last_name":"Cook","company_name":"Apple"}`,
			"ecore", "/external/email/enrichment/", `{"first_name":"Tim","last_name":"Cook","company_name":"Apple"}`},
		{"ecore phone: the same combinations", ecoreOnly, "/v1/phone/find", `{"full_name":"Tim Cook","company_name":"Apple"}`,
			"ecore", "/external/phone/enrichment/", `{"first_name":"Tim","last_name":"Cook","company_name":"Apple"}`},
		{"ecore verifier: a one-email validation job", ecoreOnly, "/v1/email/verify", `{"email":"tim@apple.com"}`,
			"ecore", "/email-validation/jobs/upload/", `{"emails":["tim@apple.com"],"list_name":"enrichproxy"}`},
		{"linkedin_url alone goes to the vendor that takes it, with no failover", v1Quick(), "/v1/email/find", `{"linkedin_url":"` + li + `"}`,
			"ecore", "/external/email/enrichment/", `{"linkedin_url":"` + li + `"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, tc.opt)
			a := h.do("POST", tc.path, tc.body)
			if a.code != 200 && a.code != 202 || a.env.Vendor != tc.vendor {
				t.Fatalf("got %d from %q, want 200 or 202 from %s\n%s", a.code, a.env.Vendor, tc.vendor, a.raw)
			}
			v1WantFailover(t, a)
			var sim, other interface {
				Calls() []vendorsim.Call
				CallCount() int
			} = h.enrow, h.ecore
			if tc.vendor == "ecore" {
				sim, other = h.ecore, h.enrow
			}
			if n := other.CallCount(); n != 0 {
				t.Errorf("the other vendor got %d calls, want none", n)
			}
			calls := sim.Calls()
			if len(calls) != 1 || calls[0].Method != "POST" || calls[0].Path != tc.want {
				t.Fatalf("got calls %+v, want one POST %s", calls, tc.want)
			}
			var got, want any
			_ = json.Unmarshal(calls[0].Body, &got)
			_ = json.Unmarshal([]byte(tc.wire), &want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("the vendor got %s\nwant %s", calls[0].Body, tc.wire)
			}
			if ct := calls[0].Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("got Content-Type %q, want application/json", ct)
			}
			v1Conform(t, h, "POST", tc.path, a)
		})
	}
}

// TestV1InvalidInput: input no vendor could take is invalid_request/invalid_input, with
// error.fields naming what is missing, before any vendor call.
func TestV1InvalidInput(t *testing.T) {
	h := start(t, v1Quick())
	ecoreOnly := start(t, v1Quick("ENROW_API_KEY", ""))
	cases := []struct {
		h          *harness
		path, body string
		wantFields []string // keys that must be in error.fields; nil: don't check
	}{
		{h, "/v1/email/find", `{"company_domain":"apple.com"}`, []string{"full_name", "linkedin_url"}},
		{h, "/v1/email/find", `{"full_name":"Tim Cook"}`, []string{"company_domain"}},
		{h, "/v1/email/find", `{}`, []string{"full_name", "company_domain", "linkedin_url"}},
		{h, "/v1/email/find", `null`, []string{"full_name", "company_domain"}},
		{h, "/v1/phone/find", `{"first_name":"Tim"}`, []string{"full_name", "company_domain", "linkedin_url"}},
		{h, "/v1/email/verify", `{}`, []string{"email"}},
		{h, "/v1/email/verify", `{"email":"  "}`, []string{"email"}},
		{ecoreOnly, "/v1/email/find", `{"full_name":"Cher","company_domain":"apple.com"}`, []string{"full_name"}},
		{h, "/v1/email/find", `not json`, nil},
		{h, "/v1/email/find", `[1,2]`, nil},
		{h, "/v1/email/find", `{"full_name":5,"company_domain":"apple.com"}`, nil},
		{h, "/v1/email/verify", `{"email":"tim@apple.com"`, nil},
		{h, "/v1/phone/find", ``, nil},
	}
	for _, tc := range cases {
		t.Run(tc.path+" "+tc.body, func(t *testing.T) {
			before := tc.h.enrow.CallCount() + tc.h.ecore.CallCount()
			a := tc.h.do("POST", tc.path, tc.body)
			v1WantError(t, a, 400, normalize.StatusInvalidRequest, normalize.CodeInvalidInput)
			for _, f := range tc.wantFields {
				if len(a.env.Error.Fields[f]) == 0 {
					t.Errorf("error.fields %v does not name %q", a.env.Error.Fields, f)
				}
			}
			if n := tc.h.enrow.CallCount() + tc.h.ecore.CallCount() - before; n != 0 {
				t.Errorf("%d vendor calls, want none", n)
			}
			v1Conform(t, tc.h, "POST", tc.path, a)
		})
	}
}

// TestV1EmailVerifyWithECore: a one-email eCore validation job answers as email.verify
// with the record's qualification (SPEC 11), waited for with Prefer: wait.
func TestV1EmailVerifyWithECore(t *testing.T) {
	h := start(t, v1Quick("PROXY_VENDOR_ORDER", "ecore,enrow"), withECore(func(o *vendorsim.Options) { o.PendingPolls = 1 }))
	for _, tc := range []struct {
		email string
		want  normalize.Qualification
	}{{"tim@apple.com", normalize.QualValid}, {"invalid@apple.com", normalize.QualInvalid}, {"unknown@apple.com", normalize.QualUnknown}} {
		t.Run(tc.email, func(t *testing.T) {
			before := len(h.ecore.Calls())
			a := h.do("POST", "/v1/email/verify", `{"email":"`+tc.email+`"}`, "Prefer", "wait=10")
			v1Want(t, a, 200, normalize.StatusOK, tc.want, "ecore")
			if a.env.Operation != normalize.OpEmailVerify || !v1ECoreJobID.MatchString(a.env.ID) || a.env.Job != nil {
				t.Errorf("got operation %q id %q job %+v, want email.verify, ecore:email.verify:<n>, no job", a.env.Operation, a.env.ID, a.env.Job)
			}
			if a.env.Result == nil || a.env.Result.Email != tc.email {
				t.Errorf("got result %+v, want the email", a.env.Result)
			}
			calls := h.ecore.Calls()[before:]
			n := strings.TrimPrefix(a.env.ID, "ecore:email.verify:")
			if len(calls) != 3 || calls[0].Path != "/email-validation/jobs/upload/" ||
				len(v1CallsTo(calls, "GET", "/email-validation/jobs/"+n+"/")) != 2 {
				t.Errorf("got calls %v, want the upload and two GETs of job %s", v1Paths(calls), n)
			}
			if h.enrow.CallCount() != 0 {
				t.Errorf("Enrow was called")
			}
			v1Conform(t, h, "POST", "/v1/email/verify", a)
		})
	}
}

func v1Paths(calls []vendorsim.Call) []string {
	out := make([]string, 0, len(calls))
	for _, c := range calls {
		out = append(out, c.Method+" "+c.Path+"?"+c.RawQuery)
	}
	return out
}

// TestOpenAPIServedByTheProgram: the admin listener of the running program serves the
// OpenAPI document, and a range of real answers conforms to it (the other /v1 and wait
// tests check theirs too).
func TestOpenAPIServedByTheProgram(t *testing.T) {
	h := start(t, v1Quick("ENROW_BREAKER_CONSECUTIVE_FAILURES", "1", "ENROW_MAX_ATTEMPTS", "1"))
	spec := v1Spec(t, h)
	if v, _ := spec.doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("got openapi %q, want 3.1.x", v)
	}
	id := post(t, h, "/enrow/email/find/single", timCook)
	ecoreJob := post(t, h, "/ecore/email-validation/jobs/upload/", `{"emails":["a@apple.com","invalid@apple.com"]}`)
	h.ecore.SetCredits(0.5)
	steps := []struct{ method, path, body string }{
		{"GET", "/enrow/email/find/single?id=" + id, ""},
		{"GET", "/enrow/account/info", ""},
		{"GET", "/ecore/email-validation/jobs/" + ecoreJob + "/", ""},
		{"POST", "/ecore/email-validation/jobs/upload/", `{"emails":["a@apple.com","b@apple.com"]}`}, // 402
		{"POST", "/ecore/email-validation/jobs/upload/", `{"emails":["not-an-email"]}`},              // 400 with fields
		{"GET", "/ecore/email-validation/jobs/999/", ""},                                             // 404
		{"GET", "/nowhere", ""},                                                                      // 404 unknown_route
		{"GET", "/raw/enrow/email/find/single?id=" + id, ""},
		{"GET", "/raw/enrow/email/find/single?id=nope", ""},
		{"GET", "/enrow/email/%2e%2e/x", ""}, // 400 path_escape
	}
	for _, s := range steps {
		a := h.do(s.method, s.path, s.body)
		v1Conform(t, h, s.method, s.path, a)
	}
	// A 502 and then a 503 with Retry-After.
	h.enrow.Script(vendorsim.Answer{Status: 503, Body: `{"message":"down"}`})
	for _, want := range []int{502, 503} {
		a := h.do("GET", "/enrow/account/info", "")
		if a.code != want {
			t.Fatalf("got %d, want %d\n%s", a.code, want, a.raw)
		}
		v1Conform(t, h, "GET", "/enrow/account/info", a)
	}
}

// The OpenAPI document, as the program serves it, and a checker of answers against it.

type v1OpenAPI struct{ doc map[string]any }

var (
	v1SpecMu    sync.Mutex
	v1SpecCache *v1OpenAPI
)

// v1Spec fetches /openapi.json from the program's admin listener (once per test binary:
// the document is embedded, the same for every harness).
func v1Spec(t *testing.T, h *harness) *v1OpenAPI {
	t.Helper()
	v1SpecMu.Lock()
	defer v1SpecMu.Unlock()
	if v1SpecCache != nil {
		return v1SpecCache
	}
	resp, err := h.client.Get(h.adminURL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json on the admin listener: got %d %q, want 200 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	doc, err := v1Decode(raw)
	if err != nil {
		t.Fatalf("/openapi.json is not JSON: %v", err)
	}
	v1SpecCache = &v1OpenAPI{doc: doc.(map[string]any)}
	return v1SpecCache
}

func v1Decode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data")
	}
	return v, nil
}

func v1At(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// resolve follows local $refs.
func (s *v1OpenAPI) resolve(v any) any {
	for range 10 {
		ref, ok := v1At(v, "$ref").(string)
		if !ok {
			return v
		}
		v = v1At(s.doc, strings.Split(strings.TrimPrefix(ref, "#/"), "/")...)
	}
	return v
}

// operation finds the documented operation for a concrete request path: a trailing
// {path} takes the rest of the path, other parameters one segment; literal segments win.
func (s *v1OpenAPI) operation(method, path string) (string, map[string]any) {
	path, _, _ = strings.Cut(path, "?")
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	match := func(tmpl string) (int, bool) {
		ts := strings.Split(strings.TrimPrefix(tmpl, "/"), "/")
		score := 0
		for i, t := range ts {
			switch {
			case t == "{path}" && i == len(ts)-1:
				return score, len(segs) > i && segs[i] != ""
			case i >= len(segs):
				return 0, false
			case strings.HasPrefix(t, "{"):
				if segs[i] == "" {
					return 0, false
				}
			case t == segs[i]:
				score++
			default:
				return 0, false
			}
		}
		return score, len(ts) == len(segs)
	}
	best, bestScore := "", -1
	for tmpl := range s.doc["paths"].(map[string]any) {
		if score, ok := match(tmpl); ok && score > bestScore {
			best, bestScore = tmpl, score
		}
	}
	op, _ := v1At(s.doc, "paths", best, strings.ToLower(method)).(map[string]any)
	return best, op
}

// v1Conform checks a real answer against the document: the response for its status code
// is documented, its required headers are present and valid, and its JSON body validates
// against the response's schema (the envelope's required fields and closed enums).
func v1Conform(t *testing.T, h *harness, method, path string, a answer) {
	t.Helper()
	s := v1Spec(t, h)
	tmpl, op := s.operation(method, path)
	var resp any
	switch {
	case op != nil:
		resp = v1At(op, "responses", strconv.Itoa(a.code))
		if resp == nil {
			resp = v1At(op, "responses", "default")
		}
	case a.env.Error != nil && a.env.Error.Code == normalize.CodeUnknownRoute:
		// Every undocumented path answers this (info.description says so).
		resp = v1At(s.doc, "components", "responses", "NotFound")
	default:
		t.Errorf("%s %s: no documented operation", method, path)
		return
	}
	if resp == nil {
		t.Errorf("%s %s (%s): status %d is not documented", method, path, tmpl, a.code)
		return
	}
	resp = s.resolve(resp)
	where := fmt.Sprintf("%s %s → %d", method, path, a.code)
	headers, _ := v1At(resp, "headers").(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		hd := s.resolve(headers[name])
		v := a.header.Get(name)
		if v == "" {
			if req, _ := v1At(hd, "required").(bool); req {
				t.Errorf("%s: header %s is required and missing", where, name)
			}
			continue
		}
		var hv any = v
		if typ, _ := v1At(s.resolve(v1At(hd, "schema")), "type").(string); typ == "integer" {
			hv = json.Number(v)
		}
		for _, e := range s.validate(where+" header "+name, v1At(hd, "schema"), hv) {
			t.Error(e)
		}
	}
	ct, _, _ := strings.Cut(a.header.Get("Content-Type"), ";")
	schema := v1At(resp, "content", ct, "schema")
	if schema == nil {
		t.Errorf("%s: content type %q is not documented", where, ct)
		return
	}
	if ct != "application/json" {
		return
	}
	body, err := v1Decode(a.raw)
	if err != nil {
		t.Errorf("%s: body is not JSON: %v", where, err)
		return
	}
	for _, e := range s.validate(where, schema, body) {
		t.Errorf("%s\n%s", e, a.raw)
	}
}

// validate is a JSON Schema (2020-12) check of the keywords the document uses; a keyword
// it does not know is an error, so that no constraint is silently skipped.
func (s *v1OpenAPI) validate(at string, schema, v any) []string {
	if b, ok := schema.(bool); ok {
		if !b {
			return []string{at + ": no value is allowed here"}
		}
		return nil
	}
	sc, ok := schema.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: schema is a %T", at, schema)}
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	obj, isObj := v.(map[string]any)
	arr, isArr := v.([]any)
	str, isStr := v.(string)
	num, isNum := v.(json.Number)
	for _, k := range slices.Sorted(maps.Keys(sc)) {
		kv := sc[k]
		switch k {
		case "$ref":
			errs = append(errs, s.validate(at, s.resolve(sc), v)...)
		case "type":
			types, ok := kv.([]any)
			if !ok {
				types = []any{kv}
			}
			if !slices.ContainsFunc(types, func(t any) bool { return v1TypeIs(t.(string), v) }) {
				fail("%v is not of type %v", v, kv)
			}
		case "enum":
			if !slices.ContainsFunc(kv.([]any), func(e any) bool { return reflect.DeepEqual(e, v) }) {
				fail("%v is not one of %v", v, kv)
			}
		case "const":
			if !reflect.DeepEqual(kv, v) {
				fail("%v is not %v", v, kv)
			}
		case "required":
			for _, r := range kv.([]any) {
				if _, ok := obj[r.(string)]; isObj && !ok {
					fail("required %q is missing", r)
				}
			}
		case "properties":
			props := kv.(map[string]any)
			for name, ps := range props {
				if pv, ok := obj[name]; isObj && ok {
					errs = append(errs, s.validate(at+"."+name, ps, pv)...)
				}
			}
		case "additionalProperties":
			props, _ := sc["properties"].(map[string]any)
			for name, pv := range obj {
				if _, ok := props[name]; !ok {
					errs = append(errs, s.validate(at+"."+name, kv, pv)...)
				}
			}
		case "propertyNames":
			for name := range obj {
				errs = append(errs, s.validate(at+" key "+name, kv, name)...)
			}
		case "items":
			for i, iv := range arr {
				errs = append(errs, s.validate(fmt.Sprintf("%s[%d]", at, i), kv, iv)...)
			}
		case "minItems":
			if n, _ := kv.(json.Number).Int64(); isArr && int64(len(arr)) < n {
				fail("%d items, want at least %d", len(arr), n)
			}
		case "minLength":
			if n, _ := kv.(json.Number).Int64(); isStr && int64(len(str)) < n {
				fail("%q is shorter than %d", str, n)
			}
		case "minimum", "exclusiveMinimum":
			lim, _ := kv.(json.Number).Float64()
			if f, err := num.Float64(); isNum && err == nil && (f < lim || k == "exclusiveMinimum" && f == lim) {
				fail("%v is below the %s %v", v, k, lim)
			}
		case "pattern":
			if isStr && !regexp.MustCompile(kv.(string)).MatchString(str) {
				fail("%q does not match %s", str, kv)
			}
		case "allOf":
			for _, sub := range kv.([]any) {
				errs = append(errs, s.validate(at, sub, v)...)
			}
		case "anyOf", "oneOf":
			n := 0
			for _, sub := range kv.([]any) {
				if len(s.validate(at, sub, v)) == 0 {
					n++
				}
			}
			if n == 0 || k == "oneOf" && n > 1 {
				fail("%d of the %s alternatives match", n, k)
			}
		case "description", "title", "example", "examples", "format", "contentMediaType", "deprecated":
		default:
			fail("the test's validator does not know the keyword %q", k)
		}
	}
	return errs
}

func v1TypeIs(typ string, v any) bool {
	switch x := v.(type) {
	case nil:
		return typ == "null"
	case bool:
		return typ == "boolean"
	case string:
		return typ == "string"
	case []any:
		return typ == "array"
	case map[string]any:
		return typ == "object"
	case json.Number:
		if typ == "number" {
			return true
		}
		_, err := x.Int64()
		return typ == "integer" && err == nil
	}
	return false
}
