package normalize

import (
	"bytes"
	"net/http"
	"strings"
)

// enrow maps one Enrow answer (vendors/enrow.md). Enrow is asynchronous: a POST starts a
// search and answers its id, a GET ?id= polls it.
func enrow(r Reply, op Operation) Envelope {
	get := strings.EqualFold(r.Method, http.MethodGet)
	var p *pick
	if get && isBulk(op) {
		// A batch's results are counted by qualification (enrowBulkGet) while the body is read.
		p = &pick{list: "results", key: "qualification"}
	}
	env, b, done := begin(r, p)
	if get && IsResultOperation(op) {
		// SPEC 3.4: Enrow's single results carry no id; the query's is the answer's id,
		// also when the answer is an error (an unknown id says which one).
		env.ID = queryID(r)
	}
	if done {
		if get && IsResultOperation(op) && r.StatusCode == http.StatusAccepted && len(bytes.TrimSpace(r.Body)) == 0 {
			// An empty 202 on a poll still says "running" (§2.1, §3.2: 202 = in progress);
			// the body adds nothing the code does not.
			return enrowRunning(op, env)
		}
		return env
	}
	// SPEC 11: a failed bulk job is job_failed whatever HTTP status Enrow used for it.
	if get && isBulk(op) && (is2xx(r.StatusCode) || bulkFailed(b)) {
		return enrowBulkGet(r, op, b, env)
	}
	if !is2xx(r.StatusCode) {
		return enrowError(r, b, env)
	}
	switch {
	case op == OpAccount:
		return enrowAccount(b, env)
	case !IsResultOperation(op):
		return fromCode(r, b, env, "")
	case strings.EqualFold(r.Method, http.MethodPost):
		return enrowStarted(op, b, env)
	case get:
		return enrowSingleGet(r, op, b, env)
	}
	// Enrow documents only GET and POST on its result paths.
	return fromCode(r, b, env, "")
}

// enrowError maps an Enrow error answer by its code, after the not-found quirks.
func enrowError(r Reply, b body, env Envelope) Envelope {
	msg := message(b)
	lower := strings.ToLower(strings.TrimSpace(msg))
	switch {
	// vendors/enrow.md §3.3: an unknown or expired id on single GETs is a 500 "Could not
	// retrieve single …"; only the text tells it from a real fault.
	case r.StatusCode == http.StatusInternalServerError && strings.HasPrefix(lower, "could not retrieve"):
		return failed(env, StatusNotFound, CodeUnknownID, msg)
	// vendors/enrow.md §3.3: an unknown or expired id on bulk GETs is a 400 "Could not
	// retrieve bulk …".
	case r.StatusCode == http.StatusBadRequest && strings.HasPrefix(lower, "could not retrieve bulk"):
		return failed(env, StatusNotFound, CodeUnknownID, msg)
	}
	// The rest by code: 402 in both shapes and the legacy 422 (vendors/enrow.md §3.1, §3.2),
	// the legacy 404 "Bulk search not found" (§2.2), 429 "Too Many Requests" (§4). message()
	// reads "message" before "error", so the legacy {"error","message","status"} bodies
	// give their human text (§3.1).
	return fromCode(r, b, env, msg)
}

// enrowAccount maps GET /account/info (vendors/enrow.md §2.7): credits is the balance.
func enrowAccount(b body, env Envelope) Envelope {
	if !b.obj.ok() {
		return badReply(env, "account/info answer is %s, not an object", describe(b.kind))
	}
	env.Status = StatusOK
	env.Credits = credits(Credits{Remaining: ptr(b.obj.num("credits"))})
	return env
}

// enrowStarted maps a POST that starts a search (vendors/enrow.md §2.1-§2.6): 200 or 201
// with the search id and the credits reserved.
func enrowStarted(op Operation, b body, env Envelope) Envelope {
	if !b.obj.ok() {
		return badReply(env, "answer to a %s POST is %s, not an object", op, describe(b.kind))
	}
	id, ok := b.obj.id("id")
	if !ok {
		return badReply(env, "answer to a %s POST has no id", op)
	}
	env.Status = StatusPending
	env.ID = id
	env.Credits = credits(Credits{Used: ptr(b.obj.num("credits_used"))})
	if isBulk(op) {
		env.Job = &Job{State: JobPending}
	} else {
		env.Qualification = QualPending
	}
	return env
}

// enrowSingleGet maps a poll of one search (vendors/enrow.md §2.1, §2.3, §2.5): 202 or
// qualification "ongoing" while running, 200 with the qualification when done. The body
// carries no id: the query's is used (SPEC 3.4).
func enrowSingleGet(r Reply, op Operation, b body, env Envelope) Envelope {
	if r.StatusCode == http.StatusAccepted {
		return enrowRunning(op, env)
	}
	if !b.obj.ok() {
		return badReply(env, "%s result is %s, not an object", op, describe(b.kind))
	}
	q := b.obj.get("qualification")
	if kindOf(q) != '"' {
		return badReply(env, "%s result has no qualification", op)
	}
	var buf [16]byte
	qual, ok := enrowQualification(op, string(lowerWord(buf[:0], textBytes(q))))
	if !ok {
		return badReply(env, "qualification %s is not documented for %s", token(text(q)), op)
	}
	if qual == QualPending {
		env.Status, env.Qualification = StatusPending, QualPending
		return env
	}
	env.Status, env.Qualification = StatusOK, qual
	email, _ := b.obj.str("email") // null on a finder miss (§2.2)
	phone, _ := b.obj.str("number")
	country, _ := b.obj.str("country")
	env.Result = result(email, phone, country)
	return env
}

// enrowRunning is a poll answered 202 (vendors/enrow.md §3.2: in progress): pending, with
// qualification pending on a single result and a running job on a bulk one.
func enrowRunning(op Operation, env Envelope) Envelope {
	env.Status, env.Error = StatusPending, nil
	if isBulk(op) {
		env.Job = &Job{State: JobRunning}
	} else {
		env.Qualification = QualPending
	}
	return env
}

// enrowQualification maps Enrow's qualification for op (vendors/enrow.md §7), given
// trimmed and in lower case (lowerWord). The finder's "invalid" means nothing was found;
// the verifier's means undeliverable.
func enrowQualification(op Operation, q string) (Qualification, bool) {
	if q == "ongoing" {
		return QualPending, true
	}
	switch op {
	case OpEmailFind, OpEmailFindBulk:
		switch q {
		case "valid", "found":
			return QualFound, true
		case "invalid", "not_found":
			return QualNotFound, true
		case "catchall", "catch_all", "accept_all":
			// §7: never documented; third-party clients map it defensively. The finder
			// still returned an address.
			return QualFound, true
		}
	case OpEmailVerify, OpEmailVerifyBulk:
		switch q {
		case "valid":
			return QualValid, true
		case "invalid":
			return QualInvalid, true
		case "catchall", "catch_all", "accept_all", "unknown":
			// §7: the docs say these never occur; accepted defensively as undecided.
			return QualUnknown, true
		}
	case OpPhoneFind, OpPhoneFindBulk:
		switch q {
		case "found", "valid":
			return QualFound, true
		case "not_found", "invalid":
			return QualNotFound, true
		}
	}
	return "", false
}

// bulkFailed reports whether a bulk GET body says general.status "failed".
func bulkFailed(b body) bool {
	s, _ := b.obj.obj("general").str("status")
	return strings.EqualFold(strings.TrimSpace(s), "failed")
}

// enrowBulkGet maps a poll of a batch (vendors/enrow.md §2.2, §2.4, §2.6), keyed off
// general.status whatever the HTTP code: "ongoing" comes as 200 (DOCS-NEW) or 202 (LLMS).
func enrowBulkGet(r Reply, op Operation, b body, env Envelope) Envelope {
	if !b.obj.ok() {
		return badReply(env, "%s result is %s, not an object", op, describe(b.kind))
	}
	general := b.obj.obj("general")
	if id, ok := general.id("id"); ok {
		env.ID = id
	}
	s, hasStatus := general.str("status")
	job := &Job{}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "ongoing":
		env.Status, job.State = StatusPending, JobRunning
	case "completed":
		env.Status, job.State = StatusOK, JobCompleted
	case "failed":
		msg := message(b)
		if msg == "" {
			msg = "the vendor reports the bulk job failed"
		}
		env = failed(env, StatusUpstreamError, CodeJobFailed, msg)
		job.State = JobFailed
	default:
		if !hasStatus && r.StatusCode == http.StatusAccepted {
			// A 202 says "still running" even without the documented body (§2.2 LLMS).
			return enrowRunning(op, env)
		}
		if !hasStatus {
			return badReply(env, "%s result has no general.status", op)
		}
		return badReply(env, "general.status %s is not documented", token(s))
	}
	stats := b.obj.obj("stats")
	job.Total = intPtr(stats.integer("requested"))
	job.Done = intPtr(stats.integer("finished"))
	results, hasResults := b.obj.list("results")
	if hasResults {
		var n int
		job.Counts, n = countResults(op, results, b.picked)
		if job.Done == nil && job.State == JobCompleted {
			job.Done = intPtr(n, true)
		}
	} else {
		job.Counts = countStats(op, stats)
	}
	env.Job = job
	env.Credits = credits(Credits{Used: bulkCost(stats)})
	return env
}

// countResults counts the items' qualifications, mapped as for single results; items
// with an undocumented qualification are not counted. Counts is nil when nothing was
// counted; n is the number of items.
func countResults(op Operation, results []byte, p *pick) (counts map[Qualification]int, n int) {
	var t tally
	count := func(q []byte, items int) {
		if kindOf(q) != '"' {
			return // not a string: undocumented, like a string that is not a qualification
		}
		var buf [16]byte
		if qual, ok := enrowQualification(op, string(lowerWord(buf[:0], textBytes(q)))); ok {
			t.add(qual, items)
		}
	}
	if vals, n, ok := p.of(results); ok {
		// Picked while the body was read: each distinct qualification once.
		for _, v := range vals {
			count(v.raw, v.n)
		}
		return t.counts(), n
	}
	n = eachField(results, "qualification", func(q []byte) { count(q, 1) })
	return t.counts(), n
}

// countStats counts from the batch totals when no items are given: stats.valid is the
// finder's found or the verifier's valid, stats.found the phone finder's found (§2.6).
func countStats(op Operation, stats object) map[Qualification]int {
	var key string
	var qual Qualification
	switch op {
	case OpEmailFindBulk:
		key, qual = "valid", QualFound
	case OpEmailVerifyBulk:
		key, qual = "valid", QualValid
	case OpPhoneFindBulk:
		key, qual = "found", QualFound
		if !stats.has("found") {
			key = "valid" // §2.6: the LLMS copy shows stats.valid for phones.
		}
	}
	n, ok := stats.integer(key)
	if !ok {
		return nil
	}
	return map[Qualification]int{qual: n}
}

// bulkCost reads stats.credits_cost: a number (verifier, phone) or an object whose final
// is the net cost (email finder, §2.2).
func bulkCost(stats object) *float64 {
	if f, ok := stats.num("credits_cost"); ok {
		return &f
	}
	return ptr(stats.obj("credits_cost").num("final"))
}
