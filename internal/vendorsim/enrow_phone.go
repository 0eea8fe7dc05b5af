package vendorsim

import (
	"encoding/json"
	"net/http"
	"strings"
)

// phoneInput: enrow.md §2.5/§2.6. Names are first_name/last_name (LLMS, SDKs) or
// firstname/lastname (DOCS-NEW bulk page); both spellings are accepted.
type phoneInput struct {
	LinkedinURL   string          `json:"linkedin_url"`
	FirstName     string          `json:"first_name"`
	LastName      string          `json:"last_name"`
	Firstname     string          `json:"firstname"`
	Lastname      string          `json:"lastname"`
	CompanyDomain string          `json:"company_domain"`
	CompanyName   string          `json:"company_name"`
	Custom        json.RawMessage `json:"custom"`
	Settings      enrowSettings   `json:"settings"`
}

// check returns "" when the input is usable, else the 400 message. The message for a
// missing name/company is not documented (UNCONFIRMED); "Invalid linkedin_url" is (§2.5).
func (in phoneInput) check() string {
	if in.LinkedinURL != "" {
		if !strings.Contains(strings.ToLower(in.LinkedinURL), "linkedin.com") {
			return "Invalid linkedin_url"
		}
		return ""
	}
	first, last := in.names()
	if first == "" || last == "" || (in.CompanyDomain == "" && in.CompanyName == "") {
		return "input payload needs a linkedin_url, or first_name, last_name and company_domain or company_name"
	}
	return ""
}

func (in phoneInput) names() (string, string) {
	first, last := in.FirstName, in.LastName
	if first == "" {
		first = in.Firstname
	}
	if last == "" {
		last = in.Lastname
	}
	return first, last
}

// params echoes the input as documented in §2.5 ("params": {"linkedin_url": ...}); the
// linkedin_url wins when both forms are given.
func (in phoneInput) params() map[string]string {
	if in.LinkedinURL != "" {
		return map[string]string{"linkedin_url": in.LinkedinURL}
	}
	p := map[string]string{}
	for k, v := range map[string]string{"first_name": in.FirstName, "last_name": in.LastName,
		"firstname": in.Firstname, "lastname": in.Lastname,
		"company_domain": in.CompanyDomain, "company_name": in.CompanyName} {
		if v != "" {
			p[k] = v
		}
	}
	return p
}

func (in phoneInput) found() bool {
	first, last := in.names()
	if in.LinkedinURL != "" {
		return !hasWord(wordNobody, in.LinkedinURL)
	}
	return !hasWord(wordNobody, first, last, in.CompanyDomain, in.CompanyName)
}

// simPhone is the number every found phone search returns (enrow.md §2.5 example).
const simPhone = "+15705551234"

// phoneSingle: enrow.md §2.5 POST /phone/single.
func (e *Enrow) phoneSingle(w http.ResponseWriter, r *http.Request, body []byte) {
	var in phoneInput
	if json.Unmarshal(body, &in) != nil {
		writeJSON(w, http.StatusBadRequest, enrowMsg("Invalid JSON input"))
		return
	}
	if m := in.check(); m != "" {
		writeJSON(w, http.StatusBadRequest, enrowMsg(m))
		return
	}
	found := in.found()
	cost := 0.0
	if found {
		cost = 50 // enrow.md §6: 50 (LLMS; 40 per DOCS-NEW), only when found
	}
	if !e.spend(50, cost) {
		e.noCredits(w, true)
		return
	}
	res := map[string]any{"params": in.params(), "qualification": "not_found"}
	if found {
		res["number"], res["country"], res["qualification"] = simPhone, "US", "found"
	}
	if len(in.Custom) > 0 {
		res["custom"] = in.Custom
	}
	id := e.addSingle(kindPhone, res)
	// enrow.md §2.5: 201, unlike the other single POSTs.
	writeJSON(w, http.StatusCreated, map[string]any{"credits_used": 50, "id": id,
		"message": "Single search operating", "credits": creditsObject(50)})
}
