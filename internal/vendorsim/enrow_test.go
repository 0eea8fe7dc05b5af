package vendorsim

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var enrowKey = map[string]string{"x-api-key": "k1"}

func newEnrowServer(t *testing.T, opts Options) (*Enrow, *httptest.Server) {
	t.Helper()
	if opts.Keys == nil {
		opts.Keys = []string{"k1", "k2"}
	}
	s := NewEnrow(opts)
	return s, serve(t, s)
}

// start POSTs body to path and returns the id of the search or batch.
func start(t *testing.T, srv *httptest.Server, path, body string) string {
	t.Helper()
	got := do(t, srv, req{method: "POST", path: path, header: enrowKey, body: body})
	if got.status != 200 && got.status != 201 {
		t.Fatalf("POST %s: got %d %s", path, got.status, got.body)
	}
	return got.obj(t)["id"].(string)
}

func TestEnrowAuthAndRoutes(t *testing.T) {
	_, srv := newEnrowServer(t, Options{})
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		status             int
		body               string
	}{
		{"missing key", "GET", "/account/info", nil, 401, `{"message":"No apikey found in the x-api-key headers"}`},
		{"unknown key", "GET", "/account/info", map[string]string{"x-api-key": "nope"}, 401, `{"message":"This apikey is not valid"}`},
		{"authorization header is not the key", "GET", "/account/info", map[string]string{"Authorization": "Bearer k1"}, 401, `{"message":"No apikey found in the x-api-key headers"}`},
		{"account info", "GET", "/account/info", enrowKey, 200, `{"credits":1000000,"webhooks":[]}`},
		{"unknown path", "GET", "/v1/email/find/single", enrowKey, 404, `{"message":"Not Found"}`},
		{"trailing slash", "GET", "/account/info/", enrowKey, 404, `{"message":"Not Found"}`},
		{"wrong method", "PUT", "/email/find/single", enrowKey, 404, `{"message":"Not Found"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, do(t, srv, req{method: tc.method, path: tc.path, header: tc.header}), tc.status, tc.body)
		})
	}
}

func TestEnrowSingles(t *testing.T) {
	for _, tc := range []struct {
		name       string
		path       string
		body       string
		postStatus int
		post       string
		final      string
	}{
		{"find by domain", "/email/find/single",
			`{"fullname":"Tim Cook","company_domain":"https://www.Apple.com/about","custom":{"crm":"42"}}`,
			200, `{"message":"Single search operating","id":"<uuid>","credits_used":1}`,
			`{"email":"tim.cook@apple.com","qualification":"valid","custom":{"crm":"42"},
			  "info":{"company_domain":"apple.com","fullname":"Tim Cook","firstname":"Tim","lastname":"Cook"}}`},
		{"find by company name with gender", "/email/find/single",
			`{"fullname":"Angela Noelle Martin","company_name":"Dunder Mifflin","settings":{"retrieve_gender":true}}`,
			200, `{"message":"Single search operating","id":"<uuid>","credits_used":1}`,
			`{"email":"angela.martin@dundermifflin.com","qualification":"valid",
			  "info":{"company_domain":"dundermifflin.com","fullname":"Angela Noelle Martin","firstname":"Angela","lastname":"Martin","gender":"female"}}`},
		{"find nobody", "/email/find/single",
			`{"fullname":"Nobody Here","company_domain":"apple.com"}`,
			200, `{"message":"Single search operating","id":"<uuid>","credits_used":1}`,
			`{"email":null,"qualification":"invalid",
			  "info":{"company_domain":"apple.com","fullname":"Nobody Here","firstname":"Nobody","lastname":"Here"}}`},
		{"verify valid", "/email/verify/single", `{"email":"tim.cook@apple.com","custom":{"a":1}}`,
			200, `{"message":"Single verification operating","id":"<uuid>","credits_used":0.25,
			       "credits":{"amount":0.25,"source":"sub","split":{"fromPaygo":0,"fromSub":0.25}}}`,
			`{"email":"tim.cook@apple.com","qualification":"valid","custom":{"a":1}}`},
		{"verify bounce", "/email/verify/single", `{"email":"bounce.me@apple.com"}`,
			200, `{"message":"Single verification operating","id":"<uuid>","credits_used":0.25,"credits":"<any>"}`,
			`{"email":"bounce.me@apple.com","qualification":"invalid"}`},
		{"verify invalid", "/email/verify/single", `{"email":"Invalid42@apple.com"}`,
			200, `{"message":"Single verification operating","id":"<uuid>","credits_used":0.25,"credits":"<any>"}`,
			`{"email":"Invalid42@apple.com","qualification":"invalid"}`},
		{"phone by linkedin", "/phone/single", `{"linkedin_url":"https://www.linkedin.com/in/tim-cook","custom":"lead_1"}`,
			201, `{"credits_used":50,"id":"<uuid>","message":"Single search operating",
			       "credits":{"amount":50,"source":"sub","split":{"fromPaygo":0,"fromSub":50}}}`,
			`{"params":{"linkedin_url":"https://www.linkedin.com/in/tim-cook"},"custom":"lead_1","number":"+15705551234","country":"US","qualification":"found"}`},
		{"phone by names (DOCS-NEW spelling)", "/phone/single", `{"firstname":"Tim","lastname":"Cook","company_domain":"apple.com"}`,
			201, `{"credits_used":50,"id":"<uuid>","message":"Single search operating","credits":"<any>"}`,
			`{"params":{"firstname":"Tim","lastname":"Cook","company_domain":"apple.com"},"number":"+15705551234","country":"US","qualification":"found"}`},
		{"phone nobody", "/phone/single", `{"first_name":"Nobody","last_name":"X","company_name":"Acme"}`,
			201, `{"credits_used":50,"id":"<uuid>","message":"Single search operating","credits":"<any>"}`,
			`{"params":{"first_name":"Nobody","last_name":"X","company_name":"Acme"},"qualification":"not_found"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := newEnrowServer(t, Options{PendingPolls: 2})
			got := do(t, srv, req{method: "POST", path: tc.path, header: enrowKey, body: tc.body})
			expect(t, got, tc.postStatus, tc.post)
			id := got.obj(t)["id"].(string)
			for range 2 {
				expect(t, do(t, srv, req{path: tc.path + "?id=" + id, header: enrowKey}), 202, `{"qualification":"ongoing"}`)
			}
			expect(t, do(t, srv, req{path: tc.path + "?id=" + id, header: enrowKey}), 200, tc.final)
			expect(t, do(t, srv, req{path: tc.path + "?id=" + id, header: enrowKey}), 200, tc.final)
		})
	}
}

func TestEnrowSingleErrors(t *testing.T) {
	s, srv := newEnrowServer(t, Options{})
	verifyID := start(t, srv, "/email/verify/single", `{"email":"a@b.com"}`)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"find bad json", "POST", "/email/find/single", `{"fullname":`, 400, `{"message":"Invalid JSON input"}`},
		{"find no fullname", "POST", "/email/find/single", `{"company_domain":"apple.com"}`, 400, `{"message":"input payload is missing fullname"}`},
		{"find no company", "POST", "/email/find/single", `{"fullname":"Tim Cook"}`, 400,
			`{"message":"both company_domain and company_name are absent, input payload needs at least one of them"}`},
		{"find missing id", "GET", "/email/find/single", "", 400, `{"message":"Missing id in the query params"}`},
		{"find unknown id is a 500", "GET", "/email/find/single?id=00000000-0000-4000-8000-000000000000", "", 500,
			`{"message":"Could not retrieve single search results"}`},
		{"a verify id is unknown to the finder", "GET", "/email/find/single?id=" + verifyID, "", 500,
			`{"message":"Could not retrieve single search results"}`},
		{"verify bad json is lower case", "POST", "/email/verify/single", `nope`, 400, `{"message":"invalid JSON input"}`},
		{"verify bad format", "POST", "/email/verify/single", `{"email":"not-an-address"}`, 400, `{"message":"invalid email format"}`},
		{"verify missing email", "POST", "/email/verify/single", `{}`, 400, `{"message":"invalid email format"}`},
		{"verify missing id", "GET", "/email/verify/single", "", 400, `{"message":"The single verif id is missing in the URL query string"}`},
		{"verify unknown id", "GET", "/email/verify/single?id=x", "", 500, `{"message":"Could not retrieve single verification results"}`},
		{"phone bad linkedin", "POST", "/phone/single", `{"linkedin_url":"https://example.com/in/x"}`, 400, `{"message":"Invalid linkedin_url"}`},
		{"phone missing company", "POST", "/phone/single", `{"first_name":"Tim","last_name":"Cook"}`, 400, `{"message":"<any>"}`},
		{"phone missing id", "GET", "/phone/single", "", 400, `{"message":"Missing id in the query params"}`},
		{"phone unknown id", "GET", "/phone/single?id=x", "", 500, `{"message":"Could not retrieve single search results"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, do(t, srv, req{method: tc.method, path: tc.path, header: enrowKey, body: tc.body}), tc.status, tc.want)
		})
	}
	if got := s.Credits(); got != 1_000_000-0.25 {
		t.Errorf("credits: got %v, want only the one verification charged", got)
	}
}

func TestEnrowBulks(t *testing.T) {
	for _, tc := range []struct {
		name, path, body string
		post             string
		final            string
	}{
		{"find", "/email/find/bulk",
			`{"searches":[{"fullname":"Tim Cook","company_domain":"apple.com","custom":"lead_001"},
			              {"fullname":"Nobody","company_name":"Acme","custom":{"x":1}},
			              {"fullname":"Ada Lovelace","company_name":"Analytical Engines"}],"custom":{"batch":"b1"}}`,
			`{"message":"Bulk search operating","id":"<uuid>","credits_used":3,"estimated_duration":1}`,
			`{"general":{"id":"<id>","status":"completed","custom":{"batch":"b1"}},
			  "stats":{"finished":3,"requested":3,"valid":2,"credits_cost":{"initial":3,"refunded":1,"final":2}},
			  "results":[
			    {"index":"0","qualification":"valid","email":"tim.cook@apple.com",
			     "info":{"domain":"apple.com","firstname":"Tim","lastname":"Cook","fullname":"Tim Cook","companyInfo":{"name":"apple.com"}},
			     "raw_params":{"company_domain":"apple.com","fullname":"Tim Cook"},"custom":"lead_001"},
			    {"index":"1","qualification":"invalid","email":null,"raw_params":{"company_name":"Acme","fullname":"Nobody"},"custom":{"x":1}},
			    {"index":"2","qualification":"valid","email":"ada.lovelace@analyticalengines.com",
			     "info":{"domain":"analyticalengines.com","firstname":"Ada","lastname":"Lovelace","fullname":"Ada Lovelace","companyInfo":{"name":"Analytical Engines"}},
			     "raw_params":{"company_name":"Analytical Engines","fullname":"Ada Lovelace"}}]}`},
		{"verify with emails", "/email/verify/bulk", `{"emails":["a@b.com","bounce@b.com"]}`,
			`{"message":"Bulk verification operating","id":"<uuid>","credits_used":0.5,"estimated_duration":1,
			  "credits":{"amount":0.5,"source":"sub","split":{"fromPaygo":0,"fromSub":0.5}}}`,
			`{"general":{"id":"<id>","status":"completed"},
			  "results":[{"email":"a@b.com","index":"<uuid>","qualification":"valid"},{"email":"bounce@b.com","index":"<uuid>","qualification":"invalid"}],
			  "stats":{"credits_cost":0.5,"requested":2,"valid":1}}`},
		{"verify with verifications", "/email/verify/bulk", `{"verifications":[{"email":"a@b.com","custom":"c1"}]}`,
			`{"message":"Bulk verification operating","id":"<uuid>","credits_used":0.25,"estimated_duration":1,"credits":"<any>"}`,
			`{"general":{"id":"<id>","status":"completed"},
			  "results":[{"email":"a@b.com","index":"<uuid>","qualification":"valid","custom":"c1"}],
			  "stats":{"credits_cost":0.25,"requested":1,"valid":1}}`},
		{"phone", "/phone/bulk",
			`{"searches":[{"linkedin_url":"https://linkedin.com/in/tim-cook"},{"firstname":"Nobody","lastname":"Body","company_domain":"x.com"}]}`,
			`{"credits_used":100,"estimated_duration":1,"id":"<uuid>","message":"Bulk search operating"}`,
			`{"general":{"id":"<id>","status":"completed"},
			  "results":[{"country":"US","index":0,"number":"+15705551234","params":{"linkedin_url":"https://linkedin.com/in/tim-cook"},"qualification":"found"},
			             {"index":1,"params":{"firstname":"Nobody","lastname":"Body","company_domain":"x.com"},"qualification":"not_found"}],
			  "stats":{"credits_cost":50,"credits_to_refund":50,"found":1,"requested":2}}`},
	} {
		for _, ongoing202 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/202=%v", tc.name, ongoing202), func(t *testing.T) {
				_, srv := newEnrowServer(t, Options{PendingPolls: 1, BulkOngoing202: ongoing202})
				got := do(t, srv, req{method: "POST", path: tc.path, header: enrowKey, body: tc.body})
				expect(t, got, 201, tc.post)
				id := got.obj(t)["id"].(string)
				ongoing := 200
				if ongoing202 {
					ongoing = 202
				}
				expect(t, do(t, srv, req{path: tc.path + "?id=" + id, header: enrowKey}), ongoing,
					fmt.Sprintf(`{"general":{"id":%q,"status":"ongoing"},"stats":{"finished":0,"requested":"<any>"}}`, id))
				expect(t, do(t, srv, req{path: tc.path + "?id=" + id, header: enrowKey}), 200,
					strings.ReplaceAll(tc.final, `"<id>"`, fmt.Sprintf("%q", id)))
			})
		}
	}
}

func TestEnrowBulkErrors(t *testing.T) {
	_, srv := newEnrowServer(t, Options{})
	many := func(n int, item string) string {
		return `{"searches":[` + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + `]}`
	}
	emails := `{"emails":[` + strings.TrimSuffix(strings.Repeat(`"a@b.com",`, 5001), ",") + `]}`
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"find empty body", "POST", "/email/find/bulk", ``, 400, `{"message":"Missing payload"}`},
		{"find no searches", "POST", "/email/find/bulk", `{"custom":{}}`, 400, `{"message":"Missing searches payload"}`},
		{"find too many", "POST", "/email/find/bulk", many(5001, `{"fullname":"a b","company_name":"c"}`), 400,
			`{"message":"Too many searches. Limit is currently at 5000 per batch."}`},
		{"find item missing property", "POST", "/email/find/bulk", `{"searches":[{"fullname":"a","company_name":"c"},{"fullname":"b"}]}`, 400,
			`{"message":"Missing mandatory property on search n°2 of 2"}`},
		{"find unknown id", "GET", "/email/find/bulk?id=nope", "", 400, `{"message":"Could not retrieve bulk search results"}`},
		{"find missing id", "GET", "/email/find/bulk", "", 400, `{"message":"Missing id in the query params"}`},
		{"verify empty", "POST", "/email/verify/bulk", `{"emails":[]}`, 400, `{"message":"At least 1 verification must be present in the payload"}`},
		{"verify too many", "POST", "/email/verify/bulk", emails, 400, `{"message":"Too many verifications. Limit is currently at 5000 per batch."}`},
		{"verify unknown id", "GET", "/email/verify/bulk?id=nope", "", 400, `{"message":"Could not retrieve bulk verification results"}`},
		{"phone none", "POST", "/phone/bulk", `{"searches":[]}`, 400, `{"message":"At least 1 phone search must be present in the payload"}`},
		{"phone too many", "POST", "/phone/bulk", many(3001, `{"linkedin_url":"linkedin.com/in/a"}`), 400,
			`{"message":"Too many searches. Limit is currently at 3000 per batch."}`},
		{"phone bad linkedin", "POST", "/phone/bulk", `{"searches":[{"linkedin_url":"x"}]}`, 400, `{"message":"Invalid linkedin_url"}`},
		{"phone unknown id", "GET", "/phone/bulk?id=nope", "", 400, `{"message":"Could not retrieve bulk search results"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, do(t, srv, req{method: tc.method, path: tc.path, header: enrowKey, body: tc.body}), tc.status, tc.want)
		})
	}
}

func TestEnrowFailedBulk(t *testing.T) {
	for _, tc := range []struct{ path, body string }{
		{"/email/find/bulk", `{"searches":[{"fullname":"Failjob Smith","company_name":"c"}]}`},
		{"/email/verify/bulk", `{"emails":["failjob@x.com"]}`},
		{"/phone/bulk", `{"searches":[{"linkedin_url":"linkedin.com/in/failjob"}]}`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			s, srv := newEnrowServer(t, Options{})
			id := start(t, srv, tc.path, tc.body)
			expect(t, do(t, srv, req{path: tc.path + "?id=" + id, header: enrowKey}), 200,
				fmt.Sprintf(`{"general":{"id":%q,"status":"failed"},"stats":{"finished":0,"requested":1}}`, id))
			if s.Credits() != 1_000_000 {
				t.Errorf("a failed batch costs nothing: credits %v", s.Credits())
			}
		})
	}
}

func TestEnrowCredits(t *testing.T) {
	single := `{"fullname":"Tim Cook","company_domain":"apple.com"}`
	bulk := `{"searches":[{"fullname":"Tim Cook","company_domain":"apple.com"}]}`
	for _, tc := range []struct {
		name      string
		legacy    bool
		credits   float64
		path      string
		body      string
		status    int
		want      string
		remaining float64
	}{
		{"single 402", false, 0.5, "/email/find/single", single, 402, `{"reason":"Insufficient credits","success":false}`, 0.5},
		{"verify 402", false, 0.2, "/email/verify/single", `{"email":"a@b.com"}`, 402, `{"reason":"Insufficient credits","success":false}`, 0.2},
		{"phone 402", false, 49, "/phone/single", `{"linkedin_url":"linkedin.com/in/a-b"}`, 402, `{"reason":"Insufficient credits","success":false}`, 49},
		{"bulk 402", false, 0.5, "/email/find/bulk", bulk, 402, `{"message":"Insufficient credits"}`, 0.5},
		{"legacy single 422", true, 0.5, "/email/find/single", single, 422, `{"message":"Insufficient balance"}`, 0.5},
		{"legacy bulk 422", true, 0.5, "/phone/bulk", `{"searches":[{"linkedin_url":"linkedin.com/in/a"}]}`, 422, `{"message":"Insufficient balance"}`, 0.5},
		{"find charges 1 when found", false, 10, "/email/find/single", single, 200, "", 9},
		{"find free when not found", false, 10, "/email/find/single", `{"fullname":"nobody","company_domain":"a.com"}`, 200, "", 10},
		{"verify charges 0.25", false, 10, "/email/verify/single", `{"email":"invalid@a.com"}`, 200, "", 9.75},
		{"phone charges 50 when found", false, 100, "/phone/single", `{"linkedin_url":"linkedin.com/in/a-b"}`, 201, "", 50},
		{"phone free when not found", false, 100, "/phone/single", `{"linkedin_url":"linkedin.com/in/nobody"}`, 201, "", 100},
		{"verify bulk charges every check", false, 10, "/email/verify/bulk", `{"emails":["a@b.com","invalid@b.com"]}`, 201, "", 9.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := newEnrowServer(t, Options{Legacy422: tc.legacy})
			s.SetCredits(tc.credits)
			expect(t, do(t, srv, req{method: "POST", path: tc.path, header: enrowKey, body: tc.body}), tc.status, tc.want)
			if got := s.Credits(); got != tc.remaining {
				t.Errorf("credits: got %v, want %v", got, tc.remaining)
			}
			expect(t, do(t, srv, req{path: "/account/info", header: enrowKey}), 200,
				fmt.Sprintf(`{"credits":%v,"webhooks":[]}`, tc.remaining))
		})
	}
}

func TestEnrowRateLimit(t *testing.T) {
	body := `{"email":"a@b.com"}`
	post := func(srv *httptest.Server, key string) reply {
		return do(t, srv, req{method: "POST", path: "/email/verify/single", header: map[string]string{"x-api-key": key}, body: body})
	}
	t.Run("11th POST in a second", func(t *testing.T) {
		clock := newClock()
		s, srv := newEnrowServer(t, Options{Now: clock.Now})
		for i := range 10 {
			if got := post(srv, "k1"); got.status != 200 {
				t.Fatalf("POST %d: got %d", i+1, got.status)
			}
			clock.Advance(50 * time.Millisecond)
		}
		got := post(srv, "k1")
		expect(t, got, 429, `{"message":"Too Many Requests"}`)
		if got.header.Get("Retry-After") != "" {
			t.Errorf("no Retry-After is documented, got %q", got.header.Get("Retry-After"))
		}
		if got := post(srv, "k2"); got.status != 200 {
			t.Errorf("another key has its own quota: got %d", got.status)
		}
		if got := do(t, srv, req{path: "/account/info", header: enrowKey}); got.status != 200 {
			t.Errorf("GETs are never limited: got %d", got.status)
		}
		clock.Advance(501 * time.Millisecond) // only the first POST (t=0) leaves the window
		if got := post(srv, "k1"); got.status != 200 {
			t.Errorf("after the window slid: got %d", got.status)
		}
		if got := post(srv, "k1"); got.status != 429 {
			t.Errorf("the second POST left the window later: got %d, want 429", got.status)
		}
		s.Reset()
		if got := post(srv, "k1"); got.status != 200 {
			t.Errorf("Reset clears the window: got %d", got.status)
		}
	})
	t.Run("NoRateLimit", func(t *testing.T) {
		clock := newClock()
		_, srv := newEnrowServer(t, Options{Now: clock.Now, NoRateLimit: true})
		for i := range 20 {
			if got := post(srv, "k1"); got.status != 200 {
				t.Fatalf("POST %d: got %d", i+1, got.status)
			}
		}
	})
}

func TestEnrowAnyKey(t *testing.T) {
	s := NewEnrow(Options{})
	srv := serve(t, s)
	expect(t, do(t, srv, req{path: "/account/info", header: map[string]string{"x-api-key": "whatever"}}), 200, `{"credits":1000000,"webhooks":[]}`)
}
