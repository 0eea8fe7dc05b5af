package vendorsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// ECore is a simulated eCore API (facts: ../shared/vendors/ecore.md, cited as "ecore.md
// §n"). It serves at the root: the paths are what follows the documented base URL
// https://app.ecoreservice.com/backend/api/v1 (§2). It is safe for concurrent use.
type ECore struct {
	core
	dailyQuota   int
	usage        map[string]*dayUsage // per token
	nextJobID    int
	nextRecordID int
	valJobs      map[int]*valJob
	enrJobs      map[string]*enrJob
	enrOrder     []string
	unlocked     map[string]map[string]*unlockState // token → record uuid → what is unlocked
}

type dayUsage struct {
	day string
	n   int
}

// NewECore returns a simulated eCore API.
func NewECore(opts Options) *ECore {
	s := &ECore{
		dailyQuota: opts.DailyQuota,
		usage:      map[string]*dayUsage{},
		valJobs:    map[int]*valJob{},
		enrJobs:    map[string]*enrJob{},
		unlocked:   map[string]map[string]*unlockState{},
	}
	s.core.init(opts, ecoreFaultBody)
	s.onReset = func() { clear(s.usage) }
	return s
}

// ecoreFaultBody: ecore.md §3, the 500 body is "not shown" and no 503 or per-second 429
// exists in the docs; the simulator uses Django REST Framework's default bodies
// (INFERENCE: §2 notes the API is DRF-style).
func ecoreFaultBody(status int) any {
	switch status {
	case http.StatusServiceUnavailable:
		return drfDetail("Service temporarily unavailable, try again later.")
	case http.StatusTooManyRequests:
		return drfDetail("Request was throttled.")
	case http.StatusInternalServerError:
		return drfDetail("A server error occurred.")
	}
	return drfDetail(http.StatusText(status))
}

func drfDetail(s string) map[string]string { return map[string]string{"detail": s} }

func ecoreError(s string) map[string]string { return map[string]string{"error": s} }

// notFound: ecore.md §3, 404 {"detail":"Not found."}, also for another user's resource.
func notFound(w http.ResponseWriter) { writeJSON(w, http.StatusNotFound, drfDetail("Not found.")) }

// parseError is DRF's answer to a body that is not JSON (INFERENCE; not in the docs).
func parseError(w http.ResponseWriter) {
	writeJSON(w, http.StatusBadRequest, drfDetail("JSON parse error - the request body is not valid JSON."))
}

type ecoreHandler func(s *ECore, w http.ResponseWriter, r *http.Request, body []byte, tok, arg string)

// ecoreRoute is one documented path; "{int}" matches a Django <int:…> segment, "{id}" any
// segment. Every path ends in "/" (§2).
type ecoreRoute struct {
	method  string
	pattern []string
	h       ecoreHandler
}

var ecoreRoutes = []ecoreRoute{
	{"POST", []string{"external", "email", "enrichment"}, enrichEmail},
	{"POST", []string{"external", "phone", "enrichment"}, enrichPhone},
	{"GET", []string{"external", "search"}, (*ECore).search},
	{"POST", []string{"external", "unlock"}, (*ECore).unlock},
	{"POST", []string{"email-validation", "jobs", "upload"}, (*ECore).upload},
	{"GET", []string{"email-validation", "jobs"}, (*ECore).listJobs},
	{"GET", []string{"email-validation", "jobs", "{int}"}, (*ECore).jobStatus},
	{"GET", []string{"email-validation", "jobs", "{int}", "records"}, (*ECore).jobRecords},
	{"GET", []string{"email-validation", "jobs", "{int}", "download"}, (*ECore).jobDownload},
	{"POST", []string{"enrichment", "submit"}, (*ECore).submit},
	{"GET", []string{"enrichment", "status"}, (*ECore).enrList},
	{"GET", []string{"enrichment", "status", "{id}"}, (*ECore).enrStatus},
	{"GET", []string{"enrichment", "result", "{id}"}, (*ECore).enrResult},
	{"POST", []string{"enrichment-control"}, (*ECore).enrControl},
}

func (rt ecoreRoute) match(segs []string) (string, bool) {
	if len(segs) != len(rt.pattern) {
		return "", false
	}
	arg := ""
	for i, p := range rt.pattern {
		switch p {
		case "{int}":
			if !isDigits(segs[i]) {
				return "", false
			}
			arg = segs[i]
		case "{id}":
			arg = segs[i]
		default:
			if segs[i] != p {
				return "", false
			}
		}
	}
	return arg, true
}

// ServeHTTP answers like eCore.
func (s *ECore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := s.front(w, r)
	if !ok {
		return
	}
	// ecore.md §2: every documented path ends in "/"; without it Django does not match
	// (INFERENCE) → 404.
	if !strings.HasSuffix(r.URL.Path, "/") {
		notFound(w)
		return
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var route *ecoreRoute
	var arg string
	var allowed []string
	for i := range ecoreRoutes {
		a, ok := ecoreRoutes[i].match(segs)
		if !ok {
			continue
		}
		if ecoreRoutes[i].method == r.Method {
			route, arg = &ecoreRoutes[i], a
			break
		}
		allowed = append(allowed, ecoreRoutes[i].method)
	}
	if route == nil && len(allowed) == 0 {
		notFound(w)
		return
	}
	// ecore.md §2: "Token <t>", except the account/contact enrichment endpoints, "Bearer
	// <t>"; missing, unknown or wrongly prefixed → 401 {"detail":"Invalid token."}.
	scheme := "Token"
	if segs[0] == "enrichment" || segs[0] == "enrichment-control" {
		scheme = "Bearer"
	}
	tok, ok := s.token(r, scheme)
	if !ok {
		w.Header().Set("WWW-Authenticate", scheme)
		writeJSON(w, http.StatusUnauthorized, drfDetail("Invalid token."))
		return
	}
	if used, ok := s.countUsage(tok); !ok {
		// ecore.md §2: test tokens have a daily quota; over it → 429. The body is from
		// the brief (UNCONFIRMED in the stored docs); no Retry-After is documented (§9).
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": map[string]any{
			"message": "Daily usage limit exceeded", "current_usage": used,
			"daily_limit": s.dailyQuota, "resets_at": "midnight UTC"}})
		return
	}
	if route == nil {
		// DRF answers a known path with the wrong method 405 after authentication.
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, drfDetail(fmt.Sprintf("Method %q not allowed.", r.Method)))
		return
	}
	route.h(s, w, r, body, tok, arg)
}

// token extracts the credential after scheme (matched case-insensitively, as DRF does)
// and reports whether it is accepted.
func (s *ECore) token(r *http.Request, scheme string) (string, bool) {
	f := strings.Fields(r.Header.Get("Authorization"))
	if len(f) != 2 || !strings.EqualFold(f[0], scheme) {
		return "", false
	}
	return f[1], s.keyOK(f[1])
}

// countUsage counts one request against tok's quota for the current UTC day and reports
// false with the usage when the quota is already used up.
func (s *ECore) countUsage(tok string) (int, bool) {
	if s.dailyQuota <= 0 {
		return 0, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	day := s.now().UTC().Format("2006-01-02")
	u := s.usage[tok]
	if u == nil || u.day != day {
		u = &dayUsage{day: day}
		s.usage[tok] = u
	}
	if u.n >= s.dailyQuota {
		return u.n, false
	}
	u.n++
	return u.n, true
}

// charge deducts cost when the wallet covers need; otherwise it answers ecore.md §3's 402
// {"error","required","balance"} (a pre-charge check, nothing deducted) and reports false.
func (s *ECore) charge(w http.ResponseWriter, need, cost float64) bool {
	s.mu.Lock()
	bal := s.credits
	if bal >= need {
		s.credits -= cost
	}
	s.mu.Unlock()
	if bal < need {
		writeJSON(w, http.StatusPaymentRequired, map[string]any{"error": "Insufficient wallet balance.",
			"required": need, "balance": bal})
		return false
	}
	return true
}

// enrichInput: ecore.md §5.1, the four allowed input combinations.
type enrichInput struct {
	LinkedinURL    string `json:"linkedin_url"`
	Email          string `json:"email"`
	FirstName      string `json:"first_name"`
	LastName       string `json:"last_name"`
	CompanyName    string `json:"company_name"`
	CompanyWebsite string `json:"company_website"`
}

// combination reports whether exactly one documented combination is present: linkedin_url
// alone · email alone · first_name+last_name+company_name · first_name+last_name+company_website.
func (in enrichInput) combination() bool {
	var set []string
	for _, f := range []struct{ name, v string }{{"l", in.LinkedinURL}, {"e", in.Email}, {"f", in.FirstName},
		{"n", in.LastName}, {"c", in.CompanyName}, {"w", in.CompanyWebsite}} {
		if strings.TrimSpace(f.v) != "" {
			set = append(set, f.name)
		}
	}
	switch strings.Join(set, "") {
	case "l", "e", "fnc", "fnw":
		return true
	}
	return false
}

func (in enrichInput) email() string {
	switch {
	case in.LinkedinURL != "":
		return linkedinAddress(in.LinkedinURL)
	case in.Email != "":
		return strings.ToLower(strings.TrimSpace(in.Email))
	}
	return address(in.FirstName, in.LastName, companyDomain(in.CompanyWebsite, in.CompanyName))
}

func enrichEmail(s *ECore, w http.ResponseWriter, r *http.Request, body []byte, _, _ string) {
	s.enrich(w, body, false)
}

func enrichPhone(s *ECore, w http.ResponseWriter, r *http.Request, body []byte, _, _ string) {
	s.enrich(w, body, true)
}

// enrich: ecore.md §5.1/§5.2, synchronous; 200 for found and not found; charge 1 (email)
// or 5 (phone) only when found (§8).
func (s *ECore) enrich(w http.ResponseWriter, body []byte, phone bool) {
	var in enrichInput
	if json.Unmarshal(body, &in) != nil {
		parseError(w)
		return
	}
	if !in.combination() {
		// §5.1: any other combination → 400; the text is UNCONFIRMED.
		writeJSON(w, http.StatusBadRequest, ecoreError("Provide exactly one of: linkedin_url; email; "+
			"first_name + last_name + company_name; first_name + last_name + company_website."))
		return
	}
	cost, what := 1.0, "Email"
	if phone {
		cost, what = 5, "Phone"
	}
	found := !hasWord(wordNobody, in.LinkedinURL, in.Email, in.FirstName, in.LastName, in.CompanyName, in.CompanyWebsite)
	charged := cost
	if !found {
		charged = 0
	}
	if !s.charge(w, cost, charged) {
		return
	}
	bal := s.Credits()
	if !found {
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "status": "not_found",
			"message": what + " not found", "remaining_credits": bal})
		return
	}
	results := map[string]any{"email": in.email()}
	if phone {
		results["phone"] = simPhone // the matched email comes back free (§5.2)
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "status": "success",
		"results": results, "remaining_credits": bal})
}
