package vendorsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// enrowBulk is one batch; completed is its final 200 body (unless failed).
type enrowBulk struct {
	kind      enrowKind
	prog      progress
	requested int
	failed    bool
	completed any
}

// bulkPayload splits a bulk body into its top-level fields. enrow.md §2.2: an empty body is
// 400 "Missing payload". The text for unparsable JSON is cut off in the docs ("Error while
// par…", UNCONFIRMED); the singles' "Invalid JSON input" is used.
func bulkPayload(w http.ResponseWriter, body []byte) (map[string]json.RawMessage, bool) {
	if len(bytes.TrimSpace(body)) == 0 {
		writeJSON(w, http.StatusBadRequest, enrowMsg("Missing payload"))
		return nil, false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		writeJSON(w, http.StatusBadRequest, enrowMsg("Invalid JSON input"))
		return nil, false
	}
	return top, true
}

// mandatory is enrow.md §2.2's per-item error (LLMS); 1-based position (UNCONFIRMED).
func mandatory(i, n int) enrowMessage {
	return enrowMsg(fmt.Sprintf("Missing mandatory property on search n°%d of %d", i+1, n))
}

func (e *Enrow) addBulk(id string, b *enrowBulk) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b.prog = e.newProgress()
	e.bulks[id] = b
}

// estimate is the documented estimated_duration, in minutes (§2.2: not guaranteed).
func estimate(n int) int { return 1 + n/1000 }

// findBulk: enrow.md §2.2 POST /email/find/bulk.
func (e *Enrow) findBulk(w http.ResponseWriter, _ *http.Request, body []byte) {
	top, ok := bulkPayload(w, body)
	if !ok {
		return
	}
	var items []findInput
	if json.Unmarshal(top["searches"], &items) != nil || len(items) == 0 {
		writeJSON(w, http.StatusBadRequest, enrowMsg("Missing searches payload"))
		return
	}
	if len(items) > 5000 {
		writeJSON(w, http.StatusBadRequest, enrowMsg("Too many searches. Limit is currently at 5000 per batch."))
		return
	}
	b := &enrowBulk{kind: kindFind, requested: len(items)}
	results := make([]map[string]any, 0, len(items))
	valid := 0
	for i, in := range items {
		if in.missing() != "" {
			writeJSON(w, http.StatusBadRequest, mandatory(i, len(items)))
			return
		}
		b.failed = b.failed || hasWord(wordFailJob, in.Fullname)
		raw := map[string]string{"fullname": in.Fullname}
		if in.CompanyDomain != "" {
			raw["company_domain"] = in.CompanyDomain
		}
		if in.CompanyName != "" {
			raw["company_name"] = in.CompanyName
		}
		// enrow.md §2.2: index is a string; invalid rows have email null and no info;
		// info uses "domain" and camelCase "companyInfo".
		row := map[string]any{"index": strconv.Itoa(i), "qualification": "invalid", "email": nil, "raw_params": raw}
		if email, found := in.outcome(); found {
			valid++
			first, last := splitFullname(in.Fullname)
			company := in.CompanyName
			if company == "" {
				company = companyDomain(in.CompanyDomain, "")
			}
			row["qualification"], row["email"] = "valid", email
			row["info"] = map[string]any{"domain": companyDomain(in.CompanyDomain, in.CompanyName),
				"firstname": first, "lastname": last, "fullname": in.Fullname,
				"companyInfo": map[string]string{"name": company}}
		}
		if len(in.Custom) > 0 {
			row["custom"] = in.Custom
		}
		results = append(results, row)
	}
	n := len(items)
	cost := float64(valid)
	if b.failed {
		cost = 0 // a failed batch is refunded
	}
	if !e.spend(float64(n), cost) {
		e.noCredits(w, false)
		return
	}
	general := map[string]any{"status": "completed"}
	if c, ok := top["custom"]; ok {
		general["custom"] = c
	}
	b.completed = map[string]any{"general": general, "results": results,
		"stats": map[string]any{"finished": n, "requested": n, "valid": valid,
			"credits_cost": map[string]int{"initial": n, "refunded": n - valid, "final": valid}}}
	id := newUUID()
	general["id"] = id
	e.addBulk(id, b)
	writeJSON(w, http.StatusCreated, map[string]any{"message": "Bulk search operating", "id": id,
		"credits_used": n, "estimated_duration": estimate(n)})
}

// verifyBulk: enrow.md §2.4 POST /email/verify/bulk. The array is "verifications" in the
// newest docs and "emails" in the older docs and every SDK (UNCONFIRMED which is live):
// both are accepted. Items may be strings or {"email", "custom"} objects.
func (e *Enrow) verifyBulk(w http.ResponseWriter, _ *http.Request, body []byte) {
	top, ok := bulkPayload(w, body)
	if !ok {
		return
	}
	var raw []json.RawMessage
	for _, k := range []string{"emails", "verifications"} {
		if json.Unmarshal(top[k], &raw) == nil && len(raw) > 0 {
			break
		}
	}
	if len(raw) == 0 {
		writeJSON(w, http.StatusBadRequest, enrowMsg("At least 1 verification must be present in the payload"))
		return
	}
	if len(raw) > 5000 {
		writeJSON(w, http.StatusBadRequest, enrowMsg("Too many verifications. Limit is currently at 5000 per batch."))
		return
	}
	b := &enrowBulk{kind: kindVerify, requested: len(raw)}
	results := make([]map[string]any, 0, len(raw))
	valid := 0
	for i, item := range raw {
		var in struct {
			Email  string          `json:"email"`
			Custom json.RawMessage `json:"custom"`
		}
		if json.Unmarshal(item, &in.Email) != nil && json.Unmarshal(item, &in) != nil {
			writeJSON(w, http.StatusBadRequest, mandatory(i, len(raw)))
			return
		}
		b.failed = b.failed || localOf(in.Email) == wordFailJob
		q := verifyQualification(in.Email)
		if q == "valid" {
			valid++
		}
		// enrow.md §2.4: index is a UUID string here.
		row := map[string]any{"email": in.Email, "index": newUUID(), "qualification": q}
		if len(in.Custom) > 0 {
			row["custom"] = in.Custom
		}
		results = append(results, row)
	}
	n := len(raw)
	cost := 0.25 * float64(n) // enrow.md §6: every check is charged
	charge := cost
	if b.failed {
		charge = 0
	}
	if !e.spend(cost, charge) {
		e.noCredits(w, false)
		return
	}
	general := map[string]any{"status": "completed"}
	if c, ok := top["custom"]; ok {
		general["custom"] = c
	}
	// enrow.md §2.4: credits_cost is a plain number, not the finder's object.
	b.completed = map[string]any{"general": general, "results": results,
		"stats": map[string]any{"credits_cost": cost, "requested": n, "valid": valid}}
	id := newUUID()
	general["id"] = id
	e.addBulk(id, b)
	writeJSON(w, http.StatusCreated, map[string]any{"message": "Bulk verification operating", "id": id,
		"credits_used": cost, "estimated_duration": estimate(n), "credits": creditsObject(cost)})
}

// phoneBulk: enrow.md §2.6 POST /phone/bulk, at most 3,000 searches (DOCS-NEW).
func (e *Enrow) phoneBulk(w http.ResponseWriter, _ *http.Request, body []byte) {
	top, ok := bulkPayload(w, body)
	if !ok {
		return
	}
	var items []phoneInput
	if json.Unmarshal(top["searches"], &items) != nil || len(items) == 0 {
		writeJSON(w, http.StatusBadRequest, enrowMsg("At least 1 phone search must be present in the payload"))
		return
	}
	if len(items) > 3000 {
		// Text by analogy with the finder's (UNCONFIRMED).
		writeJSON(w, http.StatusBadRequest, enrowMsg("Too many searches. Limit is currently at 3000 per batch."))
		return
	}
	b := &enrowBulk{kind: kindPhone, requested: len(items)}
	results := make([]map[string]any, 0, len(items))
	found := 0
	for i, in := range items {
		switch m := in.check(); {
		case m == "Invalid linkedin_url":
			writeJSON(w, http.StatusBadRequest, enrowMsg(m))
			return
		case m != "":
			writeJSON(w, http.StatusBadRequest, mandatory(i, len(items)))
			return
		}
		first, last := in.names()
		b.failed = b.failed || hasWord(wordFailJob, in.LinkedinURL, first, last)
		// enrow.md §2.6: index is an integer here.
		row := map[string]any{"index": i, "params": in.params(), "qualification": "not_found"}
		if in.found() {
			found++
			row["number"], row["country"], row["qualification"] = simPhone, "US", "found"
		}
		if len(in.Custom) > 0 {
			row["custom"] = in.Custom
		}
		results = append(results, row)
	}
	n := len(items)
	cost := 50 * float64(found)
	if b.failed {
		cost = 0
	}
	if !e.spend(50*float64(n), cost) {
		e.noCredits(w, false)
		return
	}
	general := map[string]any{"status": "completed"}
	if c, ok := top["custom"]; ok {
		general["custom"] = c
	}
	b.completed = map[string]any{"general": general, "results": results,
		"stats": map[string]any{"credits_cost": 50 * found, "credits_to_refund": 50 * (n - found),
			"found": found, "requested": n}}
	id := newUUID()
	general["id"] = id
	e.addBulk(id, b)
	writeJSON(w, http.StatusCreated, map[string]any{"credits_used": 50 * n, "estimated_duration": estimate(n),
		"id": id, "message": "Bulk search operating"})
}

// getBulk answers a bulk GET. enrow.md §2.2/§2.4/§2.6: running → 200 (202 with
// BulkOngoing202, per LLMS) and a reduced body; done → the full body, or general.status
// "failed"; §3.3: an unknown id on bulk GETs is a 400, not a 404.
func getBulk(kind enrowKind, unknownMsg string) enrowHandler {
	return func(e *Enrow, w http.ResponseWriter, r *http.Request, _ []byte) {
		id := r.URL.Query().Get("id")
		if id == "" {
			// enrow.md §2.6 (phone); the finder's text is UNCONFIRMED (§10), same used.
			writeJSON(w, http.StatusBadRequest, enrowMsg("Missing id in the query params"))
			return
		}
		e.mu.Lock()
		b, ok := e.bulks[id]
		var st stage
		if ok && b.kind == kind {
			st = b.prog.advance(e.now())
		}
		e.mu.Unlock()
		switch {
		case !ok || b.kind != kind:
			writeJSON(w, http.StatusBadRequest, enrowMsg(unknownMsg))
		case st != stageDone:
			finished, status := 0, http.StatusOK
			if st == stageRunning {
				finished = b.requested / 2
			}
			if e.bulkOngoing202 {
				status = http.StatusAccepted
			}
			writeJSON(w, status, map[string]any{"general": map[string]string{"id": id, "status": "ongoing"},
				"stats": map[string]int{"finished": finished, "requested": b.requested}})
		case b.failed:
			writeJSON(w, http.StatusOK, map[string]any{"general": map[string]string{"id": id, "status": "failed"},
				"stats": map[string]int{"finished": 0, "requested": b.requested}})
		default:
			writeJSON(w, http.StatusOK, b.completed)
		}
	}
}
