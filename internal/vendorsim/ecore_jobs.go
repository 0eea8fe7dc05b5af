package vendorsim

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// enrJob is one account/contact enrichment job (ecore.md §7, Bearer auth).
type enrJob struct {
	id, owner          string
	rows               []map[string]any // final result rows
	found              int              // rows with a match (billable)
	prog               progress
	failed, paused     bool
	pausedAt           time.Time
	submitted, updated time.Time
	last               string // status last reported, to move updated_at
	settled            bool
}

// enrResultColumns: ecore.md §7.3, the record keys seen in the example.
var enrResultColumns = []string{"imported_first_name", "imported_last_name", "imported_company_name",
	"first_name", "last_name", "contact_email", "contact_mobile_phone", "job_title",
	"enrichment_source", "name_match_status", "still_in_company_status"}

// submit: ecore.md §7.1 POST /enrichment/submit/. The request schema is UNCONFIRMED: the
// simulator takes JSON {"records":[{"first_name","last_name","company_name"|"company_website"}],
// "enrichment_type", "criteria"} or a multipart CSV (csv_file/file) with those columns. The
// estimate, 1 credit per row (real pricing is dynamic, §8), is deducted up front and the
// rows without a match are refunded when the job completes.
func (s *ECore) submit(w http.ResponseWriter, r *http.Request, body []byte, tok, _ string) {
	var in []map[string]string
	if f, ok := readMultipart(r, body); ok && f.file != nil {
		t, msg := readCSV(f)
		if msg != "" {
			writeJSON(w, http.StatusBadRequest, map[string][]string{"csv_file": {msg}})
			return
		}
		for _, row := range t.rows {
			rec := map[string]string{}
			for i, h := range t.header {
				rec[h] = cell(row, i)
			}
			in = append(in, rec)
		}
	} else if !ok {
		var payload struct {
			Records []map[string]any `json:"records"`
		}
		if len(strings.TrimSpace(string(body))) > 0 && json.Unmarshal(body, &payload) != nil {
			parseError(w)
			return
		}
		for _, rec := range payload.Records {
			m := map[string]string{}
			for k, v := range rec {
				if str, ok := v.(string); ok {
					m[k] = str
				}
			}
			in = append(in, m)
		}
	}
	if len(in) == 0 {
		writeJSON(w, http.StatusBadRequest, ecoreError("Provide either a 'csv_file' upload or a 'records' list."))
		return
	}
	j := &enrJob{owner: tok}
	for _, rec := range in {
		first, last := rec["first_name"], rec["last_name"]
		company := rec["company_name"]
		if company == "" {
			company = rec["company_website"]
		}
		all := []string{first, last, company, rec["email"], rec["linkedin_url"]}
		j.failed = j.failed || hasWord(wordFailJob, all...)
		row := map[string]any{"imported_first_name": first, "imported_last_name": last,
			"imported_company_name": company, "first_name": first, "last_name": last,
			"contact_email": nil, "contact_mobile_phone": nil, "job_title": nil,
			"enrichment_source": "datacore", "name_match_status": "not_matched",
			"still_in_company_status": "unknown"}
		if !hasWord(wordNobody, all...) {
			j.found++
			row["contact_email"] = address(first, last, companyDomain(rec["company_website"], rec["company_name"]))
			row["contact_mobile_phone"], row["job_title"] = simPhone, "Head of Sales"
			row["name_match_status"], row["still_in_company_status"] = "matched", "current"
		}
		j.rows = append(j.rows, row)
	}
	n := float64(len(in))
	if !s.charge(w, n, n) {
		return
	}
	s.mu.Lock()
	j.id, j.prog, j.submitted = newUUID(), s.newProgress(), s.now()
	j.updated, j.last = j.submitted, "queued"
	s.enrJobs[j.id] = j
	s.enrOrder = append(s.enrOrder, j.id)
	s.mu.Unlock()
	// §7.1: the job_id (a UUID) is returned right away; 201 and the body beyond job_id are
	// UNCONFIRMED.
	writeJSON(w, http.StatusCreated, map[string]string{"job_id": j.id, "status": "queued"})
}

// enrObserve returns the job's public status (§7.2 vocabulary), counting a GET when advance
// (never while paused: a paused job does not progress), moving updated_at on a change and
// settling the credits when the job first ends. Caller holds mu.
func (s *ECore) enrObserve(j *enrJob, advance bool) string {
	now := s.now()
	status := "paused"
	if !j.paused {
		var st stage
		if advance {
			st = j.prog.advance(now)
		} else {
			st = j.prog.peek(now)
		}
		switch {
		case st == stageQueued:
			status = "queued"
		case st == stageRunning:
			status = "in-progress"
		case j.failed:
			status = "failed"
		default:
			status = "completed"
		}
	}
	if status != j.last {
		j.last, j.updated = status, now
	}
	if (status == "completed" || status == "failed") && !j.settled {
		j.settled = true
		refund := float64(len(j.rows) - j.found)
		if j.failed {
			refund = float64(len(j.rows)) // §8: a crashed job is refunded in full
		}
		s.credits += refund
	}
	return status
}

// msTime: ecore.md §6.3, ISO-8601 UTC with milliseconds.
func msTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// humanDuration: ecore.md §6.3, readable text like "1m 16s".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if m := int(d / time.Minute); m > 0 {
		return fmt.Sprintf("%dm %ds", m, int((d%time.Minute)/time.Second))
	}
	return fmt.Sprintf("%ds", int(d/time.Second))
}

// secTime: ecore.md §7.2 timestamps like 2026-05-06T14:23:11Z.
func secTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func (j *enrJob) view(status string) map[string]string {
	return map[string]string{"job_id": j.id, "status": status,
		"submitted_at": secTime(j.submitted), "updated_at": secTime(j.updated)}
}

// ownEnr returns the caller's job, nil for an unknown or another user's (§7.2). Caller
// holds mu.
func (s *ECore) ownEnr(id, tok string) *enrJob {
	j := s.enrJobs[id]
	if j == nil || j.owner != tok {
		return nil
	}
	return j
}

// enrStatus: ecore.md §7.2 GET /enrichment/status/{job_id}/.
func (s *ECore) enrStatus(w http.ResponseWriter, _ *http.Request, _ []byte, tok, id string) {
	s.mu.Lock()
	j := s.ownEnr(id, tok)
	var v map[string]string
	if j != nil {
		v = j.view(s.enrObserve(j, true))
	}
	s.mu.Unlock()
	if j == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// enrList: ecore.md §7.2 GET /enrichment/status/, the caller's jobs newest first. The
// element shape is UNCONFIRMED; the simulator answers {"count", "results": [status views]}.
func (s *ECore) enrList(w http.ResponseWriter, _ *http.Request, _ []byte, tok, _ string) {
	s.mu.Lock()
	results := []map[string]string{}
	for _, id := range slices.Backward(s.enrOrder) {
		if j := s.ownEnr(id, tok); j != nil {
			results = append(results, j.view(s.enrObserve(j, false)))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"count": len(results), "results": results})
}

// enrResult: ecore.md §7.3 GET /enrichment/result/{job_id}/, only when completed or paused
// (a paused job has its first half of rows done); report_type json (paginated, page_size
// 1–200, default 50) or csv.
func (s *ECore) enrResult(w http.ResponseWriter, r *http.Request, _ []byte, tok, id string) {
	s.mu.Lock()
	j := s.ownEnr(id, tok)
	var status string
	var rows []map[string]any
	if j != nil {
		status = s.enrObserve(j, true)
		switch status {
		case "completed":
			rows = j.rows
		case "paused":
			rows = j.rows[:len(j.rows)/2]
		}
	}
	s.mu.Unlock()
	switch {
	case j == nil:
		notFound(w)
		return
	case status != "completed" && status != "paused":
		// The text is UNCONFIRMED (the page only says results need completed or paused).
		writeJSON(w, http.StatusBadRequest, ecoreError("Job is not completed yet (status: "+status+")."))
		return
	}
	q := r.URL.Query()
	if q.Get("report_type") == "csv" {
		w.Header().Set("Content-Type", "text/csv")
		w.Header().Set("Content-Disposition", `attachment; filename="enrichment_`+id[:min(8, len(id))]+`.csv"`)
		w.WriteHeader(http.StatusOK)
		cw := csv.NewWriter(w)
		_ = cw.Write(enrResultColumns)
		for _, row := range rows {
			rec := make([]string, len(enrResultColumns))
			for i, c := range enrResultColumns {
				rec[i], _ = row[c].(string)
			}
			_ = cw.Write(rec)
		}
		cw.Flush()
		return
	}
	page, size := queryInt(q.Get("page"), 1), queryInt(q.Get("page_size"), 50)
	page, size = max(page, 1), min(max(size, 1), 200)
	lo := min((page-1)*size, len(rows))
	data := rows[lo:min(lo+size, len(rows))]
	if data == nil {
		data = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"job_id": id, "total_records": len(rows),
		"page": page, "page_size": size, "data": data})
}

// enrControl: ecore.md §7.4 POST /enrichment-control/ {"csv_file_id","action"}: pause only
// while in-progress, resume only while paused; otherwise 400 (texts UNCONFIRMED).
func (s *ECore) enrControl(w http.ResponseWriter, _ *http.Request, body []byte, tok, _ string) {
	var in struct {
		ID     string `json:"csv_file_id"`
		Action string `json:"action"`
	}
	if json.Unmarshal(body, &in) != nil {
		parseError(w)
		return
	}
	fields := map[string][]string{}
	if in.ID == "" {
		fields["csv_file_id"] = []string{"This field is required."}
	}
	if in.Action != "pause" && in.Action != "resume" {
		fields["action"] = []string{"Action must be 'pause' or 'resume'."}
	}
	if len(fields) > 0 {
		writeJSON(w, http.StatusBadRequest, fields)
		return
	}
	s.mu.Lock()
	j := s.ownEnr(in.ID, tok)
	var status, problem string
	if j != nil {
		now := s.now()
		status = s.enrObserve(j, false)
		switch {
		case in.Action == "pause" && status != "in-progress":
			problem = "Only an in-progress job can be paused (status: " + status + ")."
		case in.Action == "resume" && status != "paused":
			problem = "Only a paused job can be resumed (status: " + status + ")."
		case in.Action == "pause":
			j.paused, j.pausedAt = true, now
		default:
			j.paused = false
			j.prog.created = j.prog.created.Add(now.Sub(j.pausedAt)) // time paused does not count
		}
		if problem == "" {
			status = s.enrObserve(j, false)
		}
	}
	s.mu.Unlock()
	switch {
	case j == nil:
		notFound(w)
	case problem != "":
		writeJSON(w, http.StatusBadRequest, ecoreError(problem))
	default:
		writeJSON(w, http.StatusOK, map[string]string{"job_id": in.ID, "status": status,
			"message": "Job " + in.Action + "d."})
	}
}
