package normalize

import (
	"net/http"
	"strconv"
	"strings"
)

// eCore maps one eCore answer (vendors/ecore.md). eCore is a Django REST Framework API:
// enrichment is synchronous, email validation and account/contact enrichment are jobs.
func eCore(r Reply, op Operation) Envelope {
	var p *pick
	if op == OpEmailVerifyBulk {
		// A validation job's records are counted by status (validationDetails) while the
		// body is read.
		p = &pick{list: "records", key: "status"}
	}
	env, b, done := begin(r, p)
	env.ID = eCorePathID(op, r.Path)
	if done {
		return env
	}
	if !is2xx(r.StatusCode) {
		return eCoreError(r, b, env)
	}
	env.Credits = eCoreCredits(b.obj)
	switch op {
	case OpEmailFind, OpPhoneFind:
		return eCoreEnrichment(op, b, env)
	case OpEmailVerifyBulk:
		return eCoreValidation(r, b, env)
	case OpEnrichment:
		return eCoreEnrichmentJob(r, b, env)
	case OpSearch, OpUnlock:
		if !b.obj.ok() {
			return badReply(env, "%s answer is %s, not an object", op, describe(b.kind))
		}
		env.Status = StatusOK
		return env
	}
	return fromCode(r, b, env, "")
}

// eCorePathID is the job id in a job's path (/email-validation/jobs/{id}/…,
// /enrichment/status|result/{id}/), so that every answer about a job, an error too, says
// which job it is about.
func eCorePathID(op Operation, path string) string {
	p := cleanPath(path)
	var id string
	switch op {
	case OpEmailVerifyBulk:
		if segs := pathSegments(p, ecoreJobsPath); len(segs) > 0 && segs[0] != "upload" {
			id = segs[0]
		}
	case OpEnrichment:
		for _, root := range []string{"/enrichment/status", "/enrichment/result"} {
			if segs := pathSegments(p, root); len(segs) > 0 {
				id = segs[0]
			}
		}
	}
	return strings.ToValidUTF8(id, "\uFFFD")
}

// eCoreError maps an eCore error answer (vendors/ecore.md §3): 400 {"error": "…"} or a DRF
// field map, 401 {"detail": "Invalid token."}, 402 with required/balance, 404 {"detail":
// "Not found."}, 429 for the daily test-token cap.
func eCoreError(r Reply, b body, env Envelope) Envelope {
	if r.StatusCode == http.StatusTooManyRequests {
		if msg, ok := dailyCap(b); ok {
			// vendors/ecore.md §2: a test token's daily quota resets at midnight UTC;
			// retrying before then is pointless (SPEC 4).
			env = failed(env, StatusQuotaExceeded, CodeDailyQuota, msg)
			env.RetryAfterSeconds = CeilSeconds(UntilMidnightUTC(r.Now))
			return env
		}
		// SPEC 11: any other eCore 429 is an ordinary vendor rate limit.
	}
	return fromCode(r, b, env, "")
}

// dailyCap reports whether a 429 body is the daily test-token cap (vendors/ecore.md §2:
// {"error": {"message", "current_usage", "daily_limit", "resets_at": "midnight UTC"}},
// shape UNCONFIRMED), with its message.
func dailyCap(b body) (string, bool) {
	e := b.obj.obj("error")
	hasLimit := e.has("daily_limit")
	hasReset := e.has("resets_at")
	msg := message(b)
	if !hasLimit && !hasReset && !strings.Contains(strings.ToLower(msg), "daily") {
		return "", false
	}
	if msg == "" {
		msg = "daily usage quota exceeded"
	}
	return msg, true
}

// eCoreCredits reads the wallet figures eCore puts in successful answers (vendors/ecore.md
// §8): remaining_credits (enrichment), wallet_balance and credits_charged (unlock),
// total_credits_charged (validation job, net of refunds).
func eCoreCredits(o object) *Credits {
	c := Credits{Remaining: ptr(o.num("remaining_credits")), Used: ptr(o.num("credits_charged"))}
	if c.Remaining == nil {
		c.Remaining = ptr(o.num("wallet_balance"))
	}
	if c.Used == nil {
		c.Used = ptr(o.num("total_credits_charged"))
	}
	return credits(c)
}

// eCoreEnrichment maps the synchronous email and phone finders (vendors/ecore.md §5):
// 200 with status "success" or "not_found" (nothing charged).
func eCoreEnrichment(op Operation, b body, env Envelope) Envelope {
	if !b.obj.ok() {
		return badReply(env, "%s answer is %s, not an object", op, describe(b.kind))
	}
	s := b.obj.get("status")
	if kindOf(s) != '"' {
		return badReply(env, "%s answer has no status", op)
	}
	var buf [16]byte
	switch string(lowerWord(buf[:0], textBytes(s))) {
	case "success":
		env.Status, env.Qualification = StatusOK, QualFound
		res := b.obj.obj("results")
		email, _ := res.str("email")
		phone, _ := res.str("phone") // §5.2: the matched email comes back free with a phone.
		env.Result = result(email, phone, "")
	case "not_found":
		env.Status, env.Qualification = StatusOK, QualNotFound
	default:
		return badReply(env, "%s status %s is not documented", op, token(text(s)))
	}
	return env
}

// eCoreValidation maps the email-validation endpoints (vendors/ecore.md §6): the upload
// starts a job, the job GET is polled, lists, record pages and JSON downloads are ok.
func eCoreValidation(r Reply, b body, env Envelope) Envelope {
	segs := pathSegments(cleanPath(r.Path), ecoreJobsPath)
	upload := len(segs) == 1 && segs[0] == "upload"
	if upload && strings.EqualFold(r.Method, http.MethodPost) {
		// §6.1: 201 with job_id (an integer); the rest of the body is UNCONFIRMED.
		if !b.obj.ok() {
			return badReply(env, "upload answer is %s, not an object", describe(b.kind))
		}
		id, ok := b.obj.id("job_id")
		if !ok {
			if id, ok = b.obj.id("id"); !ok {
				return badReply(env, "upload answer has no job_id")
			}
		}
		env = eCoreJob(env, b.obj, id, true)
		return validationDetails(env, b.obj, b.picked)
	}
	_, hasStatus := b.obj.str("status")
	jobGet := len(segs) == 1 && !upload && strings.EqualFold(r.Method, http.MethodGet)
	if jobGet || hasStatus {
		// §6.3: the job itself, the polling target.
		if !b.obj.ok() {
			return badReply(env, "validation job is %s, not an object", describe(b.kind))
		}
		id, ok := b.obj.id("id")
		if !ok {
			if id, ok = b.obj.id("job_id"); !ok {
				id = env.ID
			}
		}
		env = eCoreJob(env, b.obj, id, false)
		return validationDetails(env, b.obj, b.picked)
	}
	// §6.2 list, §6.4 records, §6.5 download?format=json (a bare array): nothing to poll.
	if b.kind != '{' && b.kind != '[' {
		return badReply(env, "validation answer is %s", describe(b.kind))
	}
	env.Status = StatusOK
	return env
}

// eCoreEnrichmentJob maps account/contact enrichment (vendors/ecore.md §7): submit starts
// a job, status/{id} is polled; results, control and the status list are ok.
func eCoreEnrichmentJob(r Reply, b body, env Envelope) Envelope {
	p := cleanPath(r.Path)
	switch {
	case p == "/enrichment/submit" && strings.EqualFold(r.Method, http.MethodPost):
		id, ok := b.obj.id("job_id")
		if !ok {
			return badReply(env, "submit answer has no job_id")
		}
		return eCoreJob(env, b.obj, id, true)
	case len(pathSegments(p, "/enrichment/status")) == 1:
		// §7.2: {job_id, status, submitted_at, updated_at}.
		if !b.obj.ok() {
			return badReply(env, "enrichment job status is %s, not an object", describe(b.kind))
		}
		id, ok := b.obj.id("job_id")
		if !ok {
			id = env.ID
		}
		return eCoreJob(env, b.obj, id, false)
	}
	if b.kind != '{' && b.kind != '[' {
		return badReply(env, "enrichment answer is %s", describe(b.kind))
	}
	env.Status = StatusOK
	return env
}

// eCoreJob sets the id, job state and status from a job's "status". A job that was just
// started (lenient) may have no status, or one not documented: it is pending.
func eCoreJob(env Envelope, o object, id string, lenient bool) Envelope {
	env.ID = id
	s, hasStatus := o.str("status")
	state, ok := eCoreState(s)
	switch {
	case !ok && lenient:
		state = JobPending
	case !ok && !hasStatus:
		return badReply(env, "job has no status")
	case !ok:
		return badReply(env, "job status %s is not documented", token(s))
	}
	env.Job = &Job{State: state}
	switch state {
	case JobPending, JobRunning:
		env.Status = StatusPending
	case JobCompleted, JobPaused:
		// §7.2: a paused enrichment job changes only when resumed: nothing to poll.
		env.Status = StatusOK
	case JobFailed:
		msg := message(body{kind: '{', obj: o})
		if msg == "" {
			msg = "the vendor reports the job failed"
		}
		env = failed(env, StatusUpstreamError, CodeJobFailed, msg)
	}
	return env
}

// eCoreState maps eCore job statuses (vendors/ecore.md §6.3 validation, §7.2 enrichment)
// to job states, in any letter case.
func eCoreState(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "uploading", "queued", "draft", "pending":
		return JobPending, true
	case "processing", "in-progress", "in_progress", "running":
		return JobRunning, true
	case "processed", "completed":
		return JobCompleted, true
	case "failed", "failure":
		return JobFailed, true
	case "paused":
		return JobPaused, true
	}
	return "", false
}

// validationDetails adds a validation job's totals (vendors/ecore.md §6.3): total_records,
// the *_count fields (else counted from the first 100 records), results_summary "done/total".
func validationDetails(env Envelope, o object, picked *pick) Envelope {
	if env.Job == nil {
		return env
	}
	job := env.Job
	job.Total = intPtr(o.integer("total_records"))
	counts := map[Qualification]int{}
	for key, qual := range map[string]Qualification{"valid_count": QualValid, "invalid_count": QualInvalid, "unknown_count": QualUnknown} {
		if n, ok := o.integer(key); ok {
			counts[qual] = n
		}
	}
	records, _ := o.list("records")
	if len(counts) == 0 {
		var t tally
		if vals, _, ok := picked.of(records); ok {
			for _, v := range vals {
				if q, ok := recordStatus(v.raw); ok {
					t.add(q, v.n)
				}
			}
		} else {
			eachField(records, "status", func(s []byte) {
				if q, ok := recordStatus(s); ok {
					t.add(q, 1)
				}
			})
		}
		counts = t.counts()
	}
	if len(counts) > 0 {
		job.Counts = counts
	}
	job.Done = summaryDone(o)
	if job.Done == nil && job.Counts != nil {
		sum := 0
		for _, n := range job.Counts {
			sum += n
		}
		job.Done = &sum
	}
	// A one-email job is how the proxy verifies one address (SPEC 11): the record's status
	// is the answer's qualification.
	if job.Total != nil && *job.Total == 1 && job.State == JobCompleted {
		c := newCursor(records)
		first, ok := c.item()
		if _, more := c.item(); ok && !more {
			if q, ok := recordQualification(first); ok {
				env.Qualification = q
				email, _ := object{raw: first}.str("email")
				env.Result = result(email, "", "")
			}
		}
	}
	return env
}

// recordQualification maps a validation record's status (vendors/ecore.md §6.4): Unknown
// holds catch-all too; Error means the record's batch failed.
func recordQualification(raw []byte) (Qualification, bool) {
	if kindOf(raw) != '{' {
		return "", false
	}
	return recordStatus(object{raw: raw}.get("status"))
}

// recordStatus maps the value of a record's status, a JSON string in any letter case.
func recordStatus(raw []byte) (Qualification, bool) {
	if kindOf(raw) != '"' {
		return "", false
	}
	var buf [16]byte
	switch string(lowerWord(buf[:0], textBytes(raw))) {
	case "valid":
		return QualValid, true
	case "invalid":
		return QualInvalid, true
	case "unknown", "error":
		return QualUnknown, true
	case "pending":
		return QualPending, true
	}
	return "", false
}

// summaryDone reads the processed count from results_summary, e.g. "250/250" (INFERENCE
// in vendors/ecore.md §6.3: processed/total).
func summaryDone(o object) *int {
	s, _ := o.str("results_summary")
	a, _, ok := strings.Cut(s, "/")
	if !ok {
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(a))
	if err != nil || n < 0 {
		return nil
	}
	return &n
}
