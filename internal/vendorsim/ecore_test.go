package vendorsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var (
	tokenHdr  = map[string]string{"Authorization": "Token t1"}
	bearerHdr = map[string]string{"Authorization": "Bearer t1"}
)

func newECoreServer(t *testing.T, opts Options) (*ECore, *httptest.Server) {
	t.Helper()
	if opts.Keys == nil {
		opts.Keys = []string{"t1", "t2"}
	}
	s := NewECore(opts)
	return s, serve(t, s)
}

func TestECoreAuthAndRoutes(t *testing.T) {
	_, srv := newECoreServer(t, Options{})
	const invalid = `{"detail":"Invalid token."}`
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		status             int
		want               string
	}{
		{"missing token", "GET", "/external/search/", nil, 401, invalid},
		{"unknown token", "GET", "/external/search/", map[string]string{"Authorization": "Token nope"}, 401, invalid},
		{"bearer where Token is needed", "GET", "/external/search/", bearerHdr, 401, invalid},
		{"Token where Bearer is needed", "GET", "/enrichment/status/", tokenHdr, 401, invalid},
		{"Token where Bearer is needed (control)", "POST", "/enrichment-control/", tokenHdr, 401, invalid},
		{"bare token", "GET", "/external/search/", map[string]string{"Authorization": "t1"}, 401, invalid},
		{"keyword case-insensitive", "GET", "/enrichment/status/", map[string]string{"Authorization": "bearer t1"}, 200, `{"count":0,"results":[]}`},
		{"no trailing slash", "GET", "/external/search", tokenHdr, 404, `{"detail":"Not found."}`},
		{"no trailing slash POST", "POST", "/email-validation/jobs/upload", tokenHdr, 404, `{"detail":"Not found."}`},
		{"unknown path", "GET", "/external/nothing/", tokenHdr, 404, `{"detail":"Not found."}`},
		{"non-integer job id", "GET", "/email-validation/jobs/abc/", tokenHdr, 404, `{"detail":"Not found."}`},
		{"unknown job", "GET", "/email-validation/jobs/99/", tokenHdr, 404, `{"detail":"Not found."}`},
		{"unknown enrichment job", "GET", "/enrichment/status/nope/", bearerHdr, 404, `{"detail":"Not found."}`},
		{"wrong method", "GET", "/external/unlock/", tokenHdr, 405, `{"detail":"Method \"GET\" not allowed."}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, do(t, srv, req{method: tc.method, path: tc.path, header: tc.header}), tc.status, tc.want)
		})
	}
}

func TestECoreEnrichment(t *testing.T) {
	for _, tc := range []struct {
		name, path, body string
		credits          float64
		status           int
		want             string
		remaining        float64
	}{
		{"email by names + website", "/external/email/enrichment/", `{"first_name":"Tim","last_name":"Cook","company_website":"https://www.apple.com"}`, 10,
			200, `{"success":true,"status":"success","results":{"email":"tim.cook@apple.com"},"remaining_credits":9}`, 9},
		{"email by names + company", "/external/email/enrichment/", `{"first_name":"Ada","last_name":"Lovelace","company_name":"Analytical Engines"}`, 10,
			200, `{"success":true,"status":"success","results":{"email":"ada.lovelace@analyticalengines.com"},"remaining_credits":9}`, 9},
		{"email by linkedin", "/external/email/enrichment/", `{"linkedin_url":"https://www.linkedin.com/in/grace-hopper-1906/"}`, 10,
			200, `{"success":true,"status":"success","results":{"email":"grace.hopper@example.com"},"remaining_credits":9}`, 9},
		{"email by email", "/external/email/enrichment/", `{"email":"Tim@Apple.com"}`, 10,
			200, `{"success":true,"status":"success","results":{"email":"tim@apple.com"},"remaining_credits":9}`, 9},
		{"email not found is free", "/external/email/enrichment/", `{"linkedin_url":"https://linkedin.com/in/nobody"}`, 10,
			200, `{"success":true,"status":"not_found","message":"Email not found","remaining_credits":10}`, 10},
		{"phone found costs 5", "/external/phone/enrichment/", `{"first_name":"Tim","last_name":"Cook","company_name":"Apple"}`, 10,
			200, `{"success":true,"status":"success","results":{"phone":"+15705551234","email":"tim.cook@apple.com"},"remaining_credits":5}`, 5},
		{"phone not found", "/external/phone/enrichment/", `{"first_name":"Nobody","last_name":"Cook","company_name":"Apple"}`, 10,
			200, `{"success":true,"status":"not_found","message":"Phone not found","remaining_credits":10}`, 10},
		{"two combinations", "/external/email/enrichment/", `{"email":"a@b.com","linkedin_url":"https://linkedin.com/in/a"}`, 10,
			400, `{"error":"<any>"}`, 10},
		{"names without company", "/external/email/enrichment/", `{"first_name":"Tim","last_name":"Cook"}`, 10,
			400, `{"error":"<any>"}`, 10},
		{"company name and website", "/external/email/enrichment/", `{"first_name":"Tim","last_name":"Cook","company_name":"Apple","company_website":"apple.com"}`, 10,
			400, `{"error":"<any>"}`, 10},
		{"nothing", "/external/phone/enrichment/", `{}`, 10, 400, `{"error":"<any>"}`, 10},
		{"not json", "/external/phone/enrichment/", `{`, 10, 400, `{"detail":"<any>"}`, 10},
		{"low wallet", "/external/email/enrichment/", `{"email":"a@b.com"}`, 0.5,
			402, `{"error":"Insufficient wallet balance.","required":1,"balance":0.5}`, 0.5},
		{"low wallet phone", "/external/phone/enrichment/", `{"email":"a@b.com"}`, 4,
			402, `{"error":"Insufficient wallet balance.","required":5,"balance":4}`, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := newECoreServer(t, Options{})
			s.SetCredits(tc.credits)
			expect(t, do(t, srv, req{method: "POST", path: tc.path, header: tokenHdr, body: tc.body}), tc.status, tc.want)
			if got := s.Credits(); got != tc.remaining {
				t.Errorf("credits: got %v, want %v", got, tc.remaining)
			}
		})
	}
}

// multipartBody builds a multipart upload with a file in field and text fields.
func multipartBody(t *testing.T, field, filename, content string, fields map[string]string) (string, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if field != "" {
		fw, err := mw.CreateFormFile(field, filename)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write([]byte(content))
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String(), mw.FormDataContentType()
}

func TestECoreUpload(t *testing.T) {
	csvBody, csvType := multipartBody(t, "csv_file", "leads.csv", "Name,E-Mail,ec_id\nTim,tim@apple.com,crm-1\nX,,crm-2\nAda,ADA@x.com ,crm-3\n", nil)
	fileBody, fileType := multipartBody(t, "file", "other.csv", "EMAIL ADDRESS\na@b.com\n", map[string]string{"list_name": "Mine"})
	noCol, noColType := multipartBody(t, "csv_file", "x.csv", "name\nTim\n", nil)
	xlsx, xlsxType := multipartBody(t, "csv_file", "x.xlsx", "PK...", nil)
	noFile, noFileType := multipartBody(t, "", "", "", map[string]string{"list_name": "x"})
	for _, tc := range []struct {
		name, body, ctype string
		credits           float64
		status            int
		want              string
	}{
		{"json", `{"emails":["a@b.com"," A@B.com","c@d.com"],"list_name":"Q2"}`, "", 0,
			201, `{"job_id":1,"list_name":"Q2","status":"Uploading","total_records":2}`},
		{"json default list name", `{"emails":["a@b.com"]}`, "", 0,
			201, `{"job_id":1,"list_name":"API Upload","status":"Uploading","total_records":1}`},
		{"csv", csvBody, csvType, 0, 201, `{"job_id":1,"list_name":"leads.csv","status":"Uploading","total_records":2}`},
		{"csv in field file", fileBody, fileType, 0, 201, `{"job_id":1,"list_name":"Mine","status":"Uploading","total_records":1}`},
		{"neither", `{"list_name":"x"}`, "", 0, 400, `{"error":"Provide either a 'csv_file' upload or an 'emails' list."}`},
		{"empty body", ``, "", 0, 400, `{"error":"Provide either a 'csv_file' upload or an 'emails' list."}`},
		{"multipart without file", noFile, noFileType, 0, 400, `{"error":"Provide either a 'csv_file' upload or an 'emails' list."}`},
		{"malformed addresses", `{"emails":["a@b.com","x","y@z.com","nope"]}`, "", 0,
			400, `{"emails":{"1":["Not a valid email address."],"3":["Not a valid email address."]}}`},
		{"no email column", noCol, noColType, 0, 400, `{"csv_file":["<any>"]}`},
		{"excel", xlsx, xlsxType, 0, 400, `{"csv_file":["<any>"]}`},
		{"low wallet", `{"emails":["a@b.com","c@d.com","e@f.com"]}`, "", 2.5,
			402, `{"error":"Insufficient wallet balance.","required":3,"balance":2.5}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := newECoreServer(t, Options{})
			if tc.credits > 0 {
				s.SetCredits(tc.credits)
			}
			h := map[string]string{"Authorization": "Token t1"}
			if tc.ctype != "" {
				h["Content-Type"] = tc.ctype
			}
			expect(t, do(t, srv, req{method: "POST", path: "/email-validation/jobs/upload/", header: h, body: tc.body}), tc.status, tc.want)
		})
	}
	t.Run("ec_id and trimming", func(t *testing.T) {
		_, srv := newECoreServer(t, Options{})
		do(t, srv, req{method: "POST", path: "/email-validation/jobs/upload/",
			header: map[string]string{"Authorization": "Token t1", "Content-Type": csvType}, body: csvBody})
		got := do(t, srv, req{path: "/email-validation/jobs/1/records/?page_size=10", header: tokenHdr}).obj(t)
		res := got["results"].([]any)
		if len(res) != 2 || res[0].(map[string]any)["ec_id"] != "crm-1" || res[1].(map[string]any)["email"] != "ada@x.com" {
			t.Errorf("records: got %v", res)
		}
	})
}

func TestECoreValidationJob(t *testing.T) {
	clock := newClock()
	s, srv := newECoreServer(t, Options{PendingPolls: 2, Now: clock.Now, Credits: 100})
	emails := `{"emails":["tim@apple.com","invalid.x@apple.com","catchall@apple.com","unknown@a.com","error@a.com"],"list_name":"L"}`
	expect(t, do(t, srv, req{method: "POST", path: "/email-validation/jobs/upload/", header: tokenHdr, body: emails}), 201,
		`{"job_id":1,"list_name":"L","status":"Uploading","total_records":5}`)
	if s.Credits() != 95 {
		t.Errorf("charged up front: credits %v, want 95", s.Credits())
	}
	pending := `{"id":1,"ec_id":null,"email":"<any>","status":"Pending","validator_used":null,"is_cached":false,"error_message":null,"processed_at":null}`
	job := func(status, started, completed, duration, summary string, valid, invalid, unknown int, charged float64, records string) string {
		return fmt.Sprintf(`{"id":1,"uuid":"<uuid>","list_name":"L","status":%q,"total_records":5,"valid_count":%d,"invalid_count":%d,
			"unknown_count":%d,"total_credits_charged":%v,"credits_charged_at":"2026-05-06T11:42:08.913Z","created_at":"2026-05-06T11:42:08.913Z",
			"started_at":%s,"completed_at":%s,"duration":%s,"results_summary":%q,"records":%s}`,
			status, valid, invalid, unknown, charged, started, completed, duration, summary, records)
	}
	// The download before completion counts as a poll (GET 1: Uploading).
	expect(t, do(t, srv, req{path: "/email-validation/jobs/1/download/", header: tokenHdr}), 400, `{"error":"Job is not yet complete."}`)
	clock.Advance(time.Second)
	got := do(t, srv, req{path: "/email-validation/jobs/1/", header: tokenHdr})
	expect(t, got, 200, job("Processing", `"2026-05-06T11:42:09.913Z"`, "null", "null", "2/5", 0, 0, 0, 5, `"<any>"`))
	rec0 := got.obj(t)["records"].([]any)[0]
	if diffs := matchJSON("records[0]", rec0, mustJSON(t, strings.Replace(pending, `"id":1`, `"id":"<any>"`, 1))); len(diffs) > 0 {
		t.Error(diffs)
	}
	clock.Advance(75 * time.Second)
	done := `[
		{"id":"<any>","ec_id":null,"email":"tim@apple.com","status":"Valid","validator_used":"ZeroBounce","is_cached":false,"error_message":null,"processed_at":"2026-05-06T11:43:24.913Z"},
		{"id":"<any>","ec_id":null,"email":"invalid.x@apple.com","status":"Invalid","validator_used":"ZeroBounce","is_cached":false,"error_message":null,"processed_at":"<time>"},
		{"id":"<any>","ec_id":null,"email":"catchall@apple.com","status":"Unknown","validator_used":"ZeroBounce","is_cached":false,"error_message":null,"processed_at":"<time>"},
		{"id":"<any>","ec_id":null,"email":"unknown@a.com","status":"Unknown","validator_used":"ZeroBounce","is_cached":false,"error_message":null,"processed_at":"<time>"},
		{"id":"<any>","ec_id":null,"email":"error@a.com","status":"Error","validator_used":null,"is_cached":false,"error_message":"<any>","processed_at":"<time>"}]`
	expect(t, do(t, srv, req{path: "/email-validation/jobs/1/", header: tokenHdr}), 200,
		job("Processed", `"2026-05-06T11:42:09.913Z"`, `"2026-05-06T11:43:24.913Z"`, `"1m 16s"`, "5/5", 1, 1, 2, 1, done))
	if s.Credits() != 99 {
		t.Errorf("refund of every non-Valid record: credits %v, want 99", s.Credits())
	}

	t.Run("records pages", func(t *testing.T) {
		got := do(t, srv, req{path: "/email-validation/jobs/1/records/?page_size=2&page=2", header: tokenHdr})
		base := srv.URL + "/email-validation/jobs/1/records/"
		expect(t, got, 200, fmt.Sprintf(`{"count":5,"total_pages":3,"current_page":2,"next":%q,"previous":%q,"results":"<any>"}`,
			base+"?page=3&page_size=2", base+"?page=1&page_size=2"))
		if n := len(got.obj(t)["results"].([]any)); n != 2 {
			t.Errorf("page size: got %d results, want 2", n)
		}
		got = do(t, srv, req{path: "/email-validation/jobs/1/records/?status=Unknown", header: tokenHdr})
		expect(t, got, 200, `{"count":2,"total_pages":1,"current_page":1,"next":null,"previous":null,"results":"<any>"}`)
		expect(t, do(t, srv, req{path: "/email-validation/jobs/1/records/?status=bogus", header: tokenHdr}), 400, `{"error":"Invalid status filter."}`)
		expect(t, do(t, srv, req{path: "/email-validation/jobs/1/records/?page=9", header: tokenHdr}), 404, `{"detail":"Invalid page."}`)
	})
	t.Run("download csv", func(t *testing.T) {
		got := do(t, srv, req{path: "/email-validation/jobs/1/download/", header: tokenHdr})
		uuid := do(t, srv, req{path: "/email-validation/jobs/1/", header: tokenHdr}).obj(t)["uuid"].(string)
		if got.status != 200 || got.header.Get("Content-Type") != "text/csv" ||
			got.header.Get("Content-Disposition") != `attachment; filename="email_validation_`+uuid[:8]+`.csv"` {
			t.Fatalf("got %d %v", got.status, got.header)
		}
		lines := strings.Split(strings.TrimSpace(string(got.body)), "\n")
		if len(lines) != 6 || lines[0] != "Email,Status,Validator,Cached,Processed At" ||
			lines[1] != "tim@apple.com,Valid,ZeroBounce,false,2026-05-06T11:43:24.913Z" {
			t.Errorf("csv: got %q", got.body)
		}
	})
	t.Run("download json", func(t *testing.T) {
		expect(t, do(t, srv, req{path: "/email-validation/jobs/1/download/?format=json", header: tokenHdr}), 200, done)
	})
	t.Run("another user's job", func(t *testing.T) {
		expect(t, do(t, srv, req{path: "/email-validation/jobs/1/", header: map[string]string{"Authorization": "Token t2"}}), 404, `{"detail":"Not found."}`)
	})
	t.Run("list", func(t *testing.T) {
		do(t, srv, req{method: "POST", path: "/email-validation/jobs/upload/", header: tokenHdr, body: `{"emails":["a@b.com"]}`})
		got := do(t, srv, req{path: "/email-validation/jobs/", header: tokenHdr})
		expect(t, got, 200, `{"count":2,"total_pages":1,"current_page":1,"next":null,"previous":null,"results":"<any>"}`)
		res := got.obj(t)["results"].([]any)
		first := res[0].(map[string]any)
		if first["id"] != 2.0 || first["status"] != "Uploading" || res[1].(map[string]any)["status"] != "Processed" {
			t.Errorf("newest first: got %v", res)
		}
		if _, ok := first["records"]; ok {
			t.Error("list items carry no records")
		}
		expect(t, do(t, srv, req{path: "/email-validation/jobs/?status=Processed", header: tokenHdr}), 200,
			`{"count":1,"total_pages":1,"current_page":1,"next":null,"previous":null,"results":"<any>"}`)
		expect(t, do(t, srv, req{path: "/email-validation/jobs/?status=Done", header: tokenHdr}), 400, `{"error":"Invalid status filter."}`)
		expect(t, do(t, srv, req{path: "/email-validation/jobs/", header: map[string]string{"Authorization": "Token t2"}}), 200,
			`{"count":0,"total_pages":1,"current_page":1,"next":null,"previous":null,"results":[]}`)
	})
}

func mustJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestECoreFailedValidationJob(t *testing.T) {
	s, srv := newECoreServer(t, Options{Credits: 10})
	do(t, srv, req{method: "POST", path: "/email-validation/jobs/upload/", header: tokenHdr, body: `{"emails":["a@b.com","failjob@x.com"]}`})
	got := do(t, srv, req{path: "/email-validation/jobs/1/", header: tokenHdr}).obj(t)
	if got["status"] != "Failed" || got["total_credits_charged"] != 0.0 {
		t.Errorf("got %v", got)
	}
	if rec := got["records"].([]any)[0].(map[string]any); rec["status"] != "Error" || rec["error_message"] == nil {
		t.Errorf("records of a failed job: got %v", rec)
	}
	if s.Credits() != 10 {
		t.Errorf("a failed job is refunded in full: credits %v", s.Credits())
	}
	expect(t, do(t, srv, req{path: "/email-validation/jobs/1/download/", header: tokenHdr}), 400, `{"error":"Job is not yet complete."}`)
}

func TestECoreSearchUnlock(t *testing.T) {
	s, srv := newECoreServer(t, Options{Credits: 20})
	got := do(t, srv, req{path: "/external/search/?limit=2", header: tokenHdr})
	expect(t, got, 200, `{"success":true,"count":5,"results":[
		{"uuid":"0b6f7c1e-2a4d-4e8b-9c61-5d2f8a9e0c11","first_name":"Tim","last_name":"Cook","company_name":"Apple","job_title":"Chief Executive Officer",
		 "job_level":"C Level","industry":"Consumer Electronics","contact_linkedin_url":"https://www.linkedin.com/in/tim-cook",
		 "contact_email":null,"contact_direct_phone":null,"contact_mobile_phone":null,"is_email_unlocked":false,"is_phone_unlocked":false},"<any>"]}`)
	expect(t, do(t, srv, req{path: "/external/search/?job_level=c%20level&industry=software", header: tokenHdr}), 200,
		`{"success":true,"count":1,"results":["<any>"]}`)
	expect(t, do(t, srv, req{path: "/external/search/?offset=4&limit=10", header: tokenHdr}), 200, `{"success":true,"count":5,"results":["<any>"]}`)

	tim, alan := "0b6f7c1e-2a4d-4e8b-9c61-5d2f8a9e0c11", "4f0d1a5c-6e8b-4c2f-9a05-9b6d2e3c4a55"
	unlock := func(typ string, uuids ...string) reply {
		b, _ := json.Marshal(map[string]any{"uuids": uuids, "unlock_type": typ})
		return do(t, srv, req{method: "POST", path: "/external/unlock/", header: tokenHdr, body: string(b)})
	}
	expect(t, unlock("email", tim, alan, "not-a-record"), 200,
		`{"success":true,"message":"<any>","unlocked":2,"credits_charged":2,"wallet_balance":18}`)
	expect(t, unlock("email", tim), 200, `{"success":true,"message":"<any>","unlocked":0,"credits_charged":0,"wallet_balance":18}`)
	expect(t, unlock("phone", tim, alan), 200, `{"success":true,"message":"<any>","unlocked":2,"credits_charged":6,"wallet_balance":12}`)
	got = do(t, srv, req{path: "/external/search/?company_name=apple", header: tokenHdr})
	expect(t, got, 200, `{"success":true,"count":1,"results":[{"uuid":"<any>","first_name":"Tim","last_name":"Cook","company_name":"Apple",
		"job_title":"<any>","job_level":"<any>","industry":"<any>","contact_linkedin_url":"<any>",
		"contact_email":"tim.cook@apple.com","contact_direct_phone":"+14089961010","contact_mobile_phone":"+14085550101",
		"is_email_unlocked":true,"is_phone_unlocked":true}]}`)
	// Unlocks belong to the token's user.
	other := do(t, srv, req{path: "/external/search/?company_name=apple", header: map[string]string{"Authorization": "Token t2"}}).obj(t)
	if r := other["results"].([]any)[0].(map[string]any); r["contact_email"] != nil {
		t.Errorf("another user sees unlocked data: %v", r)
	}
	s.SetCredits(4)
	expect(t, unlock("phone", "1c7a8d2f-3b5e-4f9c-8d72-6e3a9b0f1d22"), 402, `{"error":"Insufficient wallet balance.","required":5,"balance":4}`)
	expect(t, unlock("fax", tim), 400, `{"unlock_type":["\"fax\" is not a valid choice."]}`)
	expect(t, do(t, srv, req{method: "POST", path: "/external/unlock/", header: tokenHdr, body: `{}`}), 400,
		`{"uuids":["This field is required."],"unlock_type":["This field is required."]}`)
}

func TestECoreDailyQuota(t *testing.T) {
	clock := newClock()
	s, srv := newECoreServer(t, Options{DailyQuota: 2, Now: clock.Now})
	for i := range 2 {
		if got := do(t, srv, req{path: "/external/search/", header: tokenHdr}); got.status != 200 {
			t.Fatalf("request %d: got %d", i+1, got.status)
		}
	}
	want := `{"error":{"message":"Daily usage limit exceeded","current_usage":2,"daily_limit":2,"resets_at":"midnight UTC"}}`
	expect(t, do(t, srv, req{path: "/external/search/", header: tokenHdr}), 429, want)
	expect(t, do(t, srv, req{path: "/enrichment/status/", header: bearerHdr}), 429, want) // every endpoint
	if got := do(t, srv, req{path: "/external/search/", header: map[string]string{"Authorization": "Token t2"}}); got.status != 200 {
		t.Errorf("another token has its own quota: got %d", got.status)
	}
	if got := do(t, srv, req{path: "/external/search/"}); got.status != 401 {
		t.Errorf("no token: got %d, want 401 before the quota", got.status)
	}
	clock.Advance(13 * time.Hour) // past midnight UTC
	if got := do(t, srv, req{path: "/external/search/", header: tokenHdr}); got.status != 200 {
		t.Errorf("a new UTC day: got %d, want 200", got.status)
	}
	s.Reset()
	for range 2 {
		if got := do(t, srv, req{path: "/external/search/", header: tokenHdr}); got.status != 200 {
			t.Errorf("Reset clears the usage: got %d", got.status)
		}
	}
}
