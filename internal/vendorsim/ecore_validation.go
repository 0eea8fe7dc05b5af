package vendorsim

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// valJob is one email-validation job (ecore.md §6).
type valJob struct {
	id                          int
	uuid, owner, listName       string
	records                     []valRecord
	prog                        progress
	failed                      bool
	created, started, completed time.Time
	charged                     float64 // total_credits_charged: upfront, net once settled
	settled                     bool
}

type valRecord struct {
	id    int
	ecID  *string
	email string
	final string // status once processed
}

// recordOutcome: local part "invalid…" → Invalid, "unknown…"/"catchall…" → Unknown
// (ecore.md §6.4: catch-all is folded into Unknown), "error…" → Error, else Valid.
func recordOutcome(email string) string {
	l := localOf(email)
	switch {
	case strings.HasPrefix(l, "invalid"):
		return "Invalid"
	case strings.HasPrefix(l, "unknown"), strings.HasPrefix(l, "catchall"):
		return "Unknown"
	case strings.HasPrefix(l, "error"):
		return "Error"
	}
	return "Valid"
}

// upload: ecore.md §6.1 POST /email-validation/jobs/upload/, JSON {"emails","list_name"} or
// multipart csv_file (fallback field "file").
func (s *ECore) upload(w http.ResponseWriter, r *http.Request, body []byte, tok, _ string) {
	neither := func() {
		writeJSON(w, http.StatusBadRequest, ecoreError("Provide either a 'csv_file' upload or an 'emails' list."))
	}
	var raw []string
	var ecIDs []*string
	listName := "API Upload" // §6.1 default for JSON
	if form, ok := readMultipart(r, body); ok {
		if form.file == nil {
			neither()
			return
		}
		table, msg := readCSV(form)
		if msg != "" {
			writeJSON(w, http.StatusBadRequest, map[string][]string{"csv_file": {msg}})
			return
		}
		col, ok := table.column("email", "e-mail", "email_address", "email address")
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string][]string{"csv_file": {
				"No email column found (expected email, e-mail, email_address or email address)."}})
			return
		}
		ecCol, hasEC := table.column("ec_id")
		for _, row := range table.rows {
			if strings.TrimSpace(cell(row, col)) == "" {
				continue // §6.1: empty cells are skipped
			}
			raw = append(raw, cell(row, col))
			var ec *string
			if v := cell(row, ecCol); hasEC && v != "" {
				ec = &v
			}
			ecIDs = append(ecIDs, ec)
		}
		listName = form.filename
		if v := form.fields["list_name"]; v != "" {
			listName = v
		}
	} else {
		var in struct {
			Emails   json.RawMessage `json:"emails"`
			ListName string          `json:"list_name"`
		}
		if len(strings.TrimSpace(string(body))) == 0 {
			neither()
			return
		}
		if json.Unmarshal(body, &in) != nil {
			parseError(w)
			return
		}
		if len(in.Emails) == 0 || string(in.Emails) == "null" {
			neither()
			return
		}
		var items []json.RawMessage
		if json.Unmarshal(in.Emails, &items) != nil {
			writeJSON(w, http.StatusBadRequest, map[string][]string{"emails": {"Expected a list of items."}})
			return
		}
		bad := map[string][]string{}
		for i, it := range items {
			var e string
			if json.Unmarshal(it, &e) != nil {
				bad[strconv.Itoa(i)] = []string{"Not a valid string."}
			}
			raw = append(raw, e)
			ecIDs = append(ecIDs, nil)
		}
		if len(bad) > 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"emails": bad})
			return
		}
		if in.ListName != "" {
			listName = in.ListName
		}
	}
	if len(raw) == 0 {
		neither()
		return
	}
	// §6.1 order: format check (errors keyed by index as strings; one bad address rejects
	// the whole request), then trim + lowercase + de-duplicate, then the wallet.
	bad := map[string][]string{}
	for i, e := range raw {
		if !validEmail(strings.TrimSpace(e)) {
			bad[strconv.Itoa(i)] = []string{"Not a valid email address."}
		}
	}
	if len(bad) > 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"emails": bad})
		return
	}
	seen := map[string]bool{}
	var recs []valRecord
	for i, e := range raw {
		e = strings.ToLower(strings.TrimSpace(e))
		if seen[e] {
			continue
		}
		seen[e] = true
		recs = append(recs, valRecord{ecID: ecIDs[i], email: e, final: recordOutcome(e)})
	}
	n := float64(len(recs))
	if !s.charge(w, n, n) { // §8: 1 credit per email up front, refunded unless Valid
		return
	}
	s.mu.Lock()
	s.nextJobID++
	j := &valJob{id: s.nextJobID, uuid: newUUID(), owner: tok, listName: listName, prog: s.newProgress(),
		created: s.now(), charged: n}
	for i := range recs {
		s.nextRecordID++
		recs[i].id = s.nextRecordID
		j.failed = j.failed || localOf(recs[i].email) == wordFailJob
	}
	j.records = recs
	s.valJobs[j.id] = j
	s.mu.Unlock()
	// §6.1: 201 with an integer job_id; the other fields are UNCONFIRMED (from the brief).
	writeJSON(w, http.StatusCreated, map[string]any{"job_id": j.id, "list_name": listName,
		"status": "Uploading", "total_records": len(recs)})
}

// observe returns the job's stage (counting a GET when advance), stamping the start and
// end times and settling the credits (one refund of every non-Valid record, or all of it
// when Failed, §8) the first time the job is seen final. Caller holds mu.
func (s *ECore) observe(j *valJob, advance bool) stage {
	now := s.now()
	var st stage
	if advance {
		st = j.prog.advance(now)
	} else {
		st = j.prog.peek(now)
	}
	if st >= stageRunning && j.started.IsZero() {
		j.started = now
	}
	if st == stageDone && !j.settled {
		j.settled, j.completed = true, now
		net := 0.0
		for _, rec := range j.records {
			if !j.failed && rec.final == "Valid" {
				net++
			}
		}
		s.credits += j.charged - net
		j.charged = net
	}
	return st
}

func jobStatusName(j *valJob, st stage) string {
	switch {
	case st == stageQueued:
		return "Uploading"
	case st == stageRunning:
		return "Processing"
	case j.failed:
		return "Failed"
	}
	return "Processed"
}

// summary: ecore.md §6.3 job fields (records added by the caller). Caller holds mu.
func (j *valJob) summary(st stage) map[string]any {
	n := len(j.records)
	counts := map[string]int{}
	done := 0
	switch {
	case st == stageRunning:
		done = n / 2
	case st == stageDone && !j.failed:
		done = n
		for _, rec := range j.records {
			counts[rec.final]++
		}
	}
	var duration any
	if st == stageDone {
		duration = humanDuration(j.completed.Sub(j.created))
	}
	return map[string]any{"id": j.id, "uuid": j.uuid, "list_name": j.listName, "status": jobStatusName(j, st),
		"total_records": n, "valid_count": counts["Valid"], "invalid_count": counts["Invalid"],
		"unknown_count": counts["Unknown"], "total_credits_charged": j.charged,
		"credits_charged_at": msTime(j.created), "created_at": msTime(j.created),
		"started_at": msTime(j.started), "completed_at": msTime(j.completed), "duration": duration,
		"results_summary": fmt.Sprintf("%d/%d", done, n)}
}

// recordView: ecore.md §6.4 record fields. Caller holds mu.
func (j *valJob) recordView(rec valRecord, st stage) map[string]any {
	v := map[string]any{"id": rec.id, "ec_id": rec.ecID, "email": rec.email, "status": "Pending",
		"validator_used": nil, "is_cached": false, "error_message": nil, "processed_at": nil}
	switch {
	case st != stageDone:
	case j.failed:
		v["status"], v["error_message"], v["processed_at"] = "Error", "Batch failed (simulated).", msTime(j.completed)
	case rec.final == "Error":
		v["status"], v["error_message"], v["processed_at"] = "Error", "Validator unreachable (simulated).", msTime(j.completed)
	default:
		v["status"], v["validator_used"], v["processed_at"] = rec.final, "ZeroBounce", msTime(j.completed)
	}
	return v
}

// ownJob returns the caller's job; another user's job is a 404 like an unknown one (§3).
// Caller holds mu.
func (s *ECore) ownJob(arg, tok string) *valJob {
	id, err := strconv.Atoi(arg)
	if err != nil {
		return nil
	}
	j := s.valJobs[id]
	if j == nil || j.owner != tok {
		return nil
	}
	return j
}

// listJobs: ecore.md §6.2 GET /email-validation/jobs/, the caller's jobs, newest first.
func (s *ECore) listJobs(w http.ResponseWriter, r *http.Request, _ []byte, tok, _ string) {
	filter := r.URL.Query().Get("status")
	switch filter {
	case "", "All", "Uploading", "Processing", "Processed", "Failed":
	default:
		writeJSON(w, http.StatusBadRequest, ecoreError("Invalid status filter."))
		return
	}
	s.mu.Lock()
	var items []map[string]any
	for id := s.nextJobID; id >= 1; id-- {
		j := s.valJobs[id]
		if j == nil || j.owner != tok {
			continue
		}
		sum := j.summary(s.observe(j, false))
		if filter == "" || filter == "All" || sum["status"] == filter {
			items = append(items, sum)
		}
	}
	s.mu.Unlock()
	writePage(w, r, items, 20, 100)
}

// jobStatus: ecore.md §6.3 GET /email-validation/jobs/{id}/, with the first 100 records.
func (s *ECore) jobStatus(w http.ResponseWriter, _ *http.Request, _ []byte, tok, arg string) {
	s.mu.Lock()
	j := s.ownJob(arg, tok)
	if j == nil {
		s.mu.Unlock()
		notFound(w)
		return
	}
	st := s.observe(j, true)
	sum := j.summary(st)
	recs := make([]map[string]any, 0, min(100, len(j.records)))
	for _, rec := range j.records[:min(100, len(j.records))] {
		recs = append(recs, j.recordView(rec, st))
	}
	sum["records"] = recs
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, sum)
}

// jobRecords: ecore.md §6.4 GET /email-validation/jobs/{id}/records/, paginated.
func (s *ECore) jobRecords(w http.ResponseWriter, r *http.Request, _ []byte, tok, arg string) {
	filter := r.URL.Query().Get("status")
	switch filter {
	case "", "All", "Pending", "Valid", "Invalid", "Unknown", "Error":
	default:
		// The records page's error list is not documented; list-jobs' text is used.
		writeJSON(w, http.StatusBadRequest, ecoreError("Invalid status filter."))
		return
	}
	s.mu.Lock()
	j := s.ownJob(arg, tok)
	if j == nil {
		s.mu.Unlock()
		notFound(w)
		return
	}
	st := s.observe(j, true)
	var items []map[string]any
	for _, rec := range j.records {
		v := j.recordView(rec, st)
		if filter == "" || filter == "All" || v["status"] == filter {
			items = append(items, v)
		}
	}
	s.mu.Unlock()
	writePage(w, r, items, 100, 1000)
}

// jobDownload: ecore.md §6.5, only when Processed; CSV (default) or a bare JSON array.
func (s *ECore) jobDownload(w http.ResponseWriter, r *http.Request, _ []byte, tok, arg string) {
	s.mu.Lock()
	j := s.ownJob(arg, tok)
	if j == nil {
		s.mu.Unlock()
		notFound(w)
		return
	}
	st := s.observe(j, true)
	var items []map[string]any
	if st == stageDone && !j.failed {
		for _, rec := range j.records {
			items = append(items, j.recordView(rec, st))
		}
	}
	name := "email_validation_" + j.uuid[:8] + ".csv"
	s.mu.Unlock()
	if items == nil {
		writeJSON(w, http.StatusBadRequest, ecoreError("Job is not yet complete."))
		return
	}
	switch r.URL.Query().Get("format") {
	case "json":
		writeJSON(w, http.StatusOK, items)
	case "", "csv":
		w.Header().Set("Content-Type", "text/csv")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		w.WriteHeader(http.StatusOK)
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"Email", "Status", "Validator", "Cached", "Processed At"})
		for _, v := range items {
			validator, _ := v["validator_used"].(string)
			at, _ := v["processed_at"].(string)
			_ = cw.Write([]string{v["email"].(string), v["status"].(string), validator,
				strconv.FormatBool(v["is_cached"].(bool)), at})
		}
		cw.Flush()
	default:
		writeJSON(w, http.StatusBadRequest, ecoreError("Invalid format. Use 'csv' or 'json'."))
	}
}
