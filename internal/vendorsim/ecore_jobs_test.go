package vendorsim

import (
	"fmt"
	"strings"
	"testing"
)

func TestECoreEnrichmentJobs(t *testing.T) {
	s, srv := newECoreServer(t, Options{PendingPolls: 3, Credits: 10})
	submit := `{"records":[{"first_name":"Tim","last_name":"Cook","company_name":"Apple"},{"first_name":"Nobody","last_name":"X","company_website":"x.com"}]}`
	got := do(t, srv, req{method: "POST", path: "/enrichment/submit/", header: bearerHdr, body: submit})
	expect(t, got, 201, `{"job_id":"<uuid>","status":"queued"}`)
	id := got.obj(t)["job_id"].(string)
	status := func(want string) {
		t.Helper()
		expect(t, do(t, srv, req{path: "/enrichment/status/" + id + "/", header: bearerHdr}), 200,
			fmt.Sprintf(`{"job_id":%q,"status":%q,"submitted_at":"<time>","updated_at":"<time>"}`, id, want))
	}
	control := func(action string, status int, want string) {
		t.Helper()
		body := fmt.Sprintf(`{"csv_file_id":%q,"action":%q}`, id, action)
		expect(t, do(t, srv, req{method: "POST", path: "/enrichment-control/", header: bearerHdr, body: body}), status, want)
	}
	control("pause", 400, `{"error":"<any>"}`) // still queued
	status("queued")
	expect(t, do(t, srv, req{path: "/enrichment/result/" + id + "/", header: bearerHdr}), 400, `{"error":"<any>"}`) // GET 2: in-progress
	control("resume", 400, `{"error":"<any>"}`)
	control("pause", 200, fmt.Sprintf(`{"job_id":%q,"status":"paused","message":"Job paused."}`, id))
	status("paused")
	status("paused") // a paused job does not progress
	expect(t, do(t, srv, req{path: "/enrichment/result/" + id + "/", header: bearerHdr}), 200,
		fmt.Sprintf(`{"job_id":%q,"total_records":1,"page":1,"page_size":50,"data":["<any>"]}`, id))
	control("resume", 200, fmt.Sprintf(`{"job_id":%q,"status":"in-progress","message":"Job resumed."}`, id))
	status("in-progress")
	status("completed")
	expect(t, do(t, srv, req{path: "/enrichment/result/" + id + "/?page_size=1&page=2", header: bearerHdr}), 200,
		fmt.Sprintf(`{"job_id":%q,"total_records":2,"page":2,"page_size":1,"data":[{"imported_first_name":"Nobody","imported_last_name":"X",
		"imported_company_name":"x.com","first_name":"Nobody","last_name":"X","contact_email":null,"contact_mobile_phone":null,"job_title":null,
		"enrichment_source":"datacore","name_match_status":"not_matched","still_in_company_status":"unknown"}]}`, id))
	expect(t, do(t, srv, req{path: "/enrichment/result/" + id + "/", header: bearerHdr}), 200,
		fmt.Sprintf(`{"job_id":%q,"total_records":2,"page":1,"page_size":50,"data":[{"imported_first_name":"Tim","imported_last_name":"Cook",
		"imported_company_name":"Apple","first_name":"Tim","last_name":"Cook","contact_email":"tim.cook@apple.com","contact_mobile_phone":"+15705551234",
		"job_title":"Head of Sales","enrichment_source":"datacore","name_match_status":"matched","still_in_company_status":"current"},"<any>"]}`, id))
	csv := do(t, srv, req{path: "/enrichment/result/" + id + "/?report_type=csv", header: bearerHdr})
	if csv.status != 200 || csv.header.Get("Content-Type") != "text/csv" || !strings.HasPrefix(string(csv.body), "imported_first_name,") {
		t.Errorf("csv: got %d %v %q", csv.status, csv.header, csv.body)
	}
	if s.Credits() != 9 {
		t.Errorf("1 per row up front, unmatched rows refunded: credits %v, want 9", s.Credits())
	}
	expect(t, do(t, srv, req{path: "/enrichment/status/", header: bearerHdr}), 200,
		fmt.Sprintf(`{"count":1,"results":[{"job_id":%q,"status":"completed","submitted_at":"<time>","updated_at":"<time>"}]}`, id))
	expect(t, do(t, srv, req{path: "/enrichment/status/" + id + "/", header: map[string]string{"Authorization": "Bearer t2"}}), 404, `{"detail":"Not found."}`)
	expect(t, do(t, srv, req{method: "POST", path: "/enrichment-control/", header: bearerHdr, body: `{"csv_file_id":"nope","action":"pause"}`}), 404, `{"detail":"Not found."}`)
	expect(t, do(t, srv, req{method: "POST", path: "/enrichment-control/", header: bearerHdr, body: `{"action":"stop"}`}), 400,
		`{"csv_file_id":["This field is required."],"action":"<any>"}`)
	expect(t, do(t, srv, req{method: "POST", path: "/enrichment/submit/", header: bearerHdr, body: `{}`}), 400, `{"error":"<any>"}`)
	s.SetCredits(1)
	expect(t, do(t, srv, req{method: "POST", path: "/enrichment/submit/", header: bearerHdr, body: submit}), 402,
		`{"error":"Insufficient wallet balance.","required":2,"balance":1}`)
}

func TestECoreFailedEnrichmentJob(t *testing.T) {
	s, srv := newECoreServer(t, Options{Credits: 10})
	body, ctype := multipartBody(t, "csv_file", "in.csv", "first_name,last_name,company_name\nFailjob,A,B\nTim,Cook,Apple\n", nil)
	got := do(t, srv, req{method: "POST", path: "/enrichment/submit/", header: map[string]string{"Authorization": "Bearer t1", "Content-Type": ctype}, body: body})
	expect(t, got, 201, `{"job_id":"<uuid>","status":"queued"}`)
	id := got.obj(t)["job_id"].(string)
	expect(t, do(t, srv, req{path: "/enrichment/status/" + id + "/", header: bearerHdr}), 200,
		fmt.Sprintf(`{"job_id":%q,"status":"failed","submitted_at":"<time>","updated_at":"<time>"}`, id))
	expect(t, do(t, srv, req{path: "/enrichment/result/" + id + "/", header: bearerHdr}), 400, `{"error":"<any>"}`)
	if s.Credits() != 10 {
		t.Errorf("a failed job is refunded in full: %v", s.Credits())
	}
}
