package vendorsim

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Enrow is a simulated Enrow API (facts: ../shared/vendors/enrow.md, cited as "enrow.md
// §n"). It serves at the root, as https://api.enrow.io has no version prefix (§1). It is
// safe for concurrent use.
type Enrow struct {
	core
	legacy422      bool
	bulkOngoing202 bool
	noRateLimit    bool
	posts          map[string][]time.Time // per key: accepted POSTs in the last second
	singles        map[string]*enrowSingle
	bulks          map[string]*enrowBulk
}

type enrowKind int

const (
	kindFind enrowKind = iota
	kindVerify
	kindPhone
)

// enrowSingle is one single search; result is its final 200 body.
type enrowSingle struct {
	kind   enrowKind
	prog   progress
	result any
}

// NewEnrow returns a simulated Enrow API.
func NewEnrow(opts Options) *Enrow {
	e := &Enrow{
		legacy422:      opts.Legacy422,
		bulkOngoing202: opts.BulkOngoing202,
		noRateLimit:    opts.NoRateLimit,
		posts:          map[string][]time.Time{},
		singles:        map[string]*enrowSingle{},
		bulks:          map[string]*enrowBulk{},
	}
	e.core.init(opts, enrowFaultBody)
	e.onReset = func() { clear(e.posts) }
	return e
}

// enrowFaultBody: enrow.md §3.1, every error body is {"message": ...}; §3.2, the 503 body
// is undocumented, so it follows the default shape; 429 is {"message":"Too Many Requests"}.
func enrowFaultBody(status int) any {
	return enrowMsg(http.StatusText(status))
}

type enrowMessage struct {
	Message string `json:"message"`
}

func enrowMsg(s string) enrowMessage { return enrowMessage{Message: s} }

type enrowHandler func(e *Enrow, w http.ResponseWriter, r *http.Request, body []byte)

// enrowRoutes: enrow.md §2 summary table; GETs take the id as ?id= (§1). Missing-id and
// unknown-id texts per §3.3; the finder's missing-id text is UNCONFIRMED (§10), the
// phone's "Missing id in the query params" is used for it.
var enrowRoutes = map[string]enrowHandler{
	"POST /email/find/single":   (*Enrow).findSingle,
	"GET /email/find/single":    getSingle(kindFind, "Missing id in the query params", "Could not retrieve single search results"),
	"POST /email/verify/single": (*Enrow).verifySingle,
	"GET /email/verify/single":  getSingle(kindVerify, "The single verif id is missing in the URL query string", "Could not retrieve single verification results"),
	"POST /phone/single":        (*Enrow).phoneSingle,
	"GET /phone/single":         getSingle(kindPhone, "Missing id in the query params", "Could not retrieve single search results"),
	"POST /email/find/bulk":     (*Enrow).findBulk,
	"GET /email/find/bulk":      getBulk(kindFind, "Could not retrieve bulk search results"),
	"POST /email/verify/bulk":   (*Enrow).verifyBulk,
	"GET /email/verify/bulk":    getBulk(kindVerify, "Could not retrieve bulk verification results"),
	"POST /phone/bulk":          (*Enrow).phoneBulk,
	"GET /phone/bulk":           getBulk(kindPhone, "Could not retrieve bulk search results"),
	"GET /account/info":         (*Enrow).accountInfo,
}

// ServeHTTP answers like Enrow.
func (e *Enrow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := e.front(w, r)
	if !ok {
		return
	}
	h, found := enrowRoutes[r.Method+" "+r.URL.Path]
	if !found {
		// enrow.md §3.2: the API itself "never returns 404"; an edge 404 for an unknown
		// path is plausible but UNCONFIRMED. The simulator answers 404 JSON.
		writeJSON(w, http.StatusNotFound, enrowMsg("Not Found"))
		return
	}
	// enrow.md §1, §3.2: x-api-key on every request; two 401 texts.
	key := r.Header.Get("x-api-key")
	if key == "" {
		writeJSON(w, http.StatusUnauthorized, enrowMsg("No apikey found in the x-api-key headers"))
		return
	}
	if !e.keyOK(key) {
		writeJSON(w, http.StatusUnauthorized, enrowMsg("This apikey is not valid"))
		return
	}
	if r.Method == http.MethodPost && !e.allowPost(key) {
		// enrow.md §4: over 10 POSTs/s per key → 429 {"message":"Too Many Requests"}, no
		// documented header.
		writeJSON(w, http.StatusTooManyRequests, enrowMsg("Too Many Requests"))
		return
	}
	h(e, w, r, body)
}

// allowPost applies enrow.md §4: 10 requests per second per key on every POST (a bulk
// POST counts as one), a sliding one-second window; GETs are never limited.
func (e *Enrow) allowPost(key string) bool {
	if e.noRateLimit {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	kept := e.posts[key][:0]
	for _, t := range e.posts[key] {
		if now.Sub(t) < time.Second {
			kept = append(kept, t)
		}
	}
	if len(kept) >= 10 {
		e.posts[key] = kept
		return false
	}
	e.posts[key] = append(kept, now)
	return true
}

// spend checks the wallet against need (the reservation) and deducts cost, the net charge
// (enrow.md §6: reserve up front, refund what found nothing; a rejected request deducts
// nothing). It reports false, deducting nothing, when the balance is too low.
func (e *Enrow) spend(need, cost float64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.credits < need {
		return false
	}
	e.credits -= cost
	return true
}

// noCredits answers insufficient credits. enrow.md §3.2: singles 402
// {"reason":"Insufficient credits","success":false}, bulks 402 {"message":...};
// older docs (§3.1, LLMS): 422 {"message":"Insufficient balance"}.
func (e *Enrow) noCredits(w http.ResponseWriter, single bool) {
	switch {
	case e.legacy422:
		writeJSON(w, http.StatusUnprocessableEntity, enrowMsg("Insufficient balance"))
	case single:
		writeJSON(w, http.StatusPaymentRequired, map[string]any{"reason": "Insufficient credits", "success": false})
	default:
		writeJSON(w, http.StatusPaymentRequired, enrowMsg("Insufficient credits"))
	}
}

func (e *Enrow) addSingle(kind enrowKind, result any) string {
	id := newUUID()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.singles[id] = &enrowSingle{kind: kind, prog: e.newProgress(), result: result}
	return id
}

// creditsObject: enrow.md §2.3, §2.5, §6: verifier and phone POSTs carry
// {"amount","source","split":{"fromPaygo","fromSub"}}.
func creditsObject(amount float64) map[string]any {
	return map[string]any{"amount": amount, "source": "sub",
		"split": map[string]float64{"fromPaygo": 0, "fromSub": amount}}
}

type enrowSettings struct {
	Webhook        string `json:"webhook,omitempty"`
	CountryCode    string `json:"country_code,omitempty"`
	RetrieveGender bool   `json:"retrieve_gender,omitempty"`
}

// findInput: enrow.md §2.1 request body (also a §2.2 bulk item).
type findInput struct {
	Fullname      string          `json:"fullname"`
	CompanyDomain string          `json:"company_domain"`
	CompanyName   string          `json:"company_name"`
	Custom        json.RawMessage `json:"custom"`
	Settings      enrowSettings   `json:"settings"`
}

func (in findInput) missing() string {
	if strings.TrimSpace(in.Fullname) == "" {
		return "input payload is missing fullname"
	}
	if strings.TrimSpace(in.CompanyDomain) == "" && strings.TrimSpace(in.CompanyName) == "" {
		return "both company_domain and company_name are absent, input payload needs at least one of them"
	}
	return ""
}

// outcome: "nobody" in the name or company → not found; else first.last@domain.
func (in findInput) outcome() (email string, found bool) {
	if hasWord(wordNobody, in.Fullname, in.CompanyDomain, in.CompanyName) {
		return "", false
	}
	first, last := splitFullname(in.Fullname)
	return address(first, last, companyDomain(in.CompanyDomain, in.CompanyName)), true
}

// findSingle: enrow.md §2.1 POST /email/find/single.
func (e *Enrow) findSingle(w http.ResponseWriter, r *http.Request, body []byte) {
	var in findInput
	if json.Unmarshal(body, &in) != nil {
		writeJSON(w, http.StatusBadRequest, enrowMsg("Invalid JSON input"))
		return
	}
	if m := in.missing(); m != "" {
		writeJSON(w, http.StatusBadRequest, enrowMsg(m))
		return
	}
	email, found := in.outcome()
	cost := 0.0
	if found {
		cost = 1 // enrow.md §6: 1 credit, only when found
	}
	if !e.spend(1, cost) {
		e.noCredits(w, true)
		return
	}
	first, last := splitFullname(in.Fullname)
	info := map[string]string{"company_domain": companyDomain(in.CompanyDomain, in.CompanyName),
		"fullname": in.Fullname, "firstname": first, "lastname": last}
	if in.Settings.RetrieveGender {
		info["gender"] = "male"
		if strings.HasSuffix(strings.ToLower(first), "a") {
			info["gender"] = "female"
		}
	}
	res := map[string]any{"email": nil, "qualification": "invalid", "info": info}
	if found {
		res["email"], res["qualification"] = email, "valid"
	}
	if len(in.Custom) > 0 {
		res["custom"] = in.Custom
	}
	id := e.addSingle(kindFind, res)
	// enrow.md §2.1: 200 (not 201) with credits_used 1.
	writeJSON(w, http.StatusOK, map[string]any{"message": "Single search operating", "id": id, "credits_used": 1})
}

// verifySingle: enrow.md §2.3 POST /email/verify/single.
func (e *Enrow) verifySingle(w http.ResponseWriter, r *http.Request, body []byte) {
	var in struct {
		Email    string          `json:"email"`
		Custom   json.RawMessage `json:"custom"`
		Settings enrowSettings   `json:"settings"`
	}
	if json.Unmarshal(body, &in) != nil {
		// enrow.md §2.3: lower-case "invalid JSON input" on this endpoint (DOCS-NEW).
		writeJSON(w, http.StatusBadRequest, enrowMsg("invalid JSON input"))
		return
	}
	if !validEmail(strings.TrimSpace(in.Email)) {
		writeJSON(w, http.StatusBadRequest, enrowMsg("invalid email format"))
		return
	}
	if !e.spend(0.25, 0.25) { // enrow.md §6: 0.25 on every check
		e.noCredits(w, true)
		return
	}
	res := map[string]any{"email": in.Email, "qualification": verifyQualification(in.Email)}
	if len(in.Custom) > 0 {
		res["custom"] = in.Custom
	}
	id := e.addSingle(kindVerify, res)
	writeJSON(w, http.StatusOK, map[string]any{"message": "Single verification operating", "id": id,
		"credits_used": 0.25, "credits": creditsObject(0.25)})
}

// verifyQualification: enrow.md §7, binary valid/invalid.
func verifyQualification(email string) string {
	l := localOf(email)
	if !validEmail(strings.TrimSpace(email)) || strings.HasPrefix(l, "invalid") || strings.HasPrefix(l, "bounce") {
		return "invalid"
	}
	return "valid"
}

// getSingle answers a single-result GET. enrow.md §2.1/§2.3/§2.5: running → 202
// {"qualification":"ongoing"}, finished → 200; §3.3: an unknown id on single GETs is a
// 500 (not 404), a missing id a 400.
func getSingle(kind enrowKind, missingMsg, unknownMsg string) enrowHandler {
	return func(e *Enrow, w http.ResponseWriter, r *http.Request, _ []byte) {
		id := r.URL.Query().Get("id")
		if id == "" {
			writeJSON(w, http.StatusBadRequest, enrowMsg(missingMsg))
			return
		}
		e.mu.Lock()
		s, ok := e.singles[id]
		var st stage
		if ok && s.kind == kind {
			st = s.prog.advance(e.now())
		}
		e.mu.Unlock()
		switch {
		case !ok || s.kind != kind:
			writeJSON(w, http.StatusInternalServerError, enrowMsg(unknownMsg))
		case st != stageDone:
			writeJSON(w, http.StatusAccepted, map[string]string{"qualification": "ongoing"})
		default:
			writeJSON(w, http.StatusOK, s.result)
		}
	}
}

// accountInfo: enrow.md §2.7 GET /account/info; webhooks may be absent, here always [].
func (e *Enrow) accountInfo(w http.ResponseWriter, _ *http.Request, _ []byte) {
	writeJSON(w, http.StatusOK, map[string]any{"credits": e.Credits(), "webhooks": []string{}})
}
