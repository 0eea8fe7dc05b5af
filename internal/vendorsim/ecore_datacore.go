package vendorsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// dcRecord is one fixed DataCore record (ecore.md §4.1). Country, employees and revenue
// are only filters; the docs list no such response fields.
type dcRecord struct {
	uuid, first, last, company, title, level, industry, linkedin string
	country, employees, revenue                                  string
	email, direct, mobile                                        string // hidden until unlocked
}

// datacore is the simulated database, newest first. The last record has no phone data,
// so a phone unlock of it costs 1 instead of 5 (§4.2).
var datacore = []dcRecord{
	{"0b6f7c1e-2a4d-4e8b-9c61-5d2f8a9e0c11", "Tim", "Cook", "Apple", "Chief Executive Officer", "C Level",
		"Consumer Electronics", "https://www.linkedin.com/in/tim-cook", "United States", "10001+", "$1B+",
		"tim.cook@apple.com", "+14089961010", "+14085550101"},
	{"1c7a8d2f-3b5e-4f9c-8d72-6e3a9b0f1d22", "Michael", "Scott", "Dunder Mifflin", "Regional Manager", "Director Level",
		"Paper", "https://www.linkedin.com/in/michael-scott", "United States", "1001-5000", "$100M-$500M",
		"michael.scott@dundermifflin.com", "+15705550100", "+15705551234"},
	{"2d8b9e3a-4c6f-4a0d-9e83-7f4b0c1a2e33", "Ada", "Lovelace", "Analytical Engines", "Vice President of Engineering",
		"Vice President Level", "Software", "https://www.linkedin.com/in/ada-lovelace", "United Kingdom", "51-200",
		"$10M-$50M", "ada.lovelace@analyticalengines.com", "+442075550100", "+447700900123"},
	{"3e9c0f4b-5d7a-4b1e-8f94-8a5c1d2b3f44", "Grace", "Hopper", "Cobol Systems", "Chief Technology Officer", "C Level",
		"Software", "https://www.linkedin.com/in/grace-hopper", "United States", "201-500", "$50M-$100M",
		"grace.hopper@cobolsystems.com", "+12025550142", "+12025550143"},
	{"4f0d1a5c-6e8b-4c2f-9a05-9b6d2e3c4a55", "Alan", "Turing", "Bletchley Labs", "Director of Research", "Director Level",
		"Research", "https://www.linkedin.com/in/alan-turing", "United Kingdom", "11-50", "$1M-$10M",
		"alan.turing@bletchleylabs.com", "", ""},
}

type unlockState struct{ email, phone bool }

// search: ecore.md §4.1 GET /external/search/, free; contact fields null until unlocked.
func (s *ECore) search(w http.ResponseWriter, r *http.Request, _ []byte, tok, _ string) {
	q := r.URL.Query()
	filters := map[string]func(dcRecord) string{
		"industry": func(d dcRecord) string { return d.industry }, "job_title": func(d dcRecord) string { return d.title },
		"job_level": func(d dcRecord) string { return d.level }, "company_name": func(d dcRecord) string { return d.company },
		"contact_office_country": func(d dcRecord) string { return d.country },
		"employee_range":         func(d dcRecord) string { return d.employees },
		"revenue_range":          func(d dcRecord) string { return d.revenue },
	}
	var matches []dcRecord
	for _, d := range datacore {
		ok := true
		for k, get := range filters {
			if v := q.Get(k); v != "" && !strings.Contains(strings.ToLower(get(d)), strings.ToLower(v)) {
				ok = false
			}
		}
		if ok {
			matches = append(matches, d)
		}
	}
	limit, offset := queryInt(q.Get("limit"), 10), queryInt(q.Get("offset"), 0)
	lo := min(max(offset, 0), len(matches))
	hi := min(lo+max(limit, 0), len(matches))
	s.mu.Lock()
	own := s.unlocked[tok]
	results := make([]map[string]any, 0, hi-lo)
	for _, d := range matches[lo:hi] {
		st := unlockState{}
		if own != nil && own[d.uuid] != nil {
			st = *own[d.uuid]
		}
		results = append(results, d.view(st))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "count": len(matches), "results": results})
}

func (d dcRecord) view(st unlockState) map[string]any {
	v := map[string]any{"uuid": d.uuid, "first_name": d.first, "last_name": d.last, "company_name": d.company,
		"job_title": d.title, "job_level": d.level, "industry": d.industry, "contact_linkedin_url": d.linkedin,
		"contact_email": nil, "contact_direct_phone": nil, "contact_mobile_phone": nil,
		"is_email_unlocked": st.email, "is_phone_unlocked": st.phone}
	if st.email {
		v["contact_email"] = d.email
	}
	if st.phone && d.direct != "" {
		v["contact_direct_phone"], v["contact_mobile_phone"] = d.direct, d.mobile
	}
	return v
}

func queryInt(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

// unlock: ecore.md §4.2 POST /external/unlock/. Email 1 credit per record; phone 5 per
// record with phone data, 1 without; already-owned records cost 0 and are skipped
// silently. Unknown uuids are skipped too (the error table is UNCONFIRMED).
func (s *ECore) unlock(w http.ResponseWriter, _ *http.Request, body []byte, tok, _ string) {
	var in struct {
		UUIDs      []string `json:"uuids"`
		UnlockType *string  `json:"unlock_type"`
	}
	if json.Unmarshal(body, &in) != nil {
		parseError(w)
		return
	}
	fields := map[string][]string{}
	if len(in.UUIDs) == 0 {
		fields["uuids"] = []string{"This field is required."}
	}
	switch {
	case in.UnlockType == nil:
		fields["unlock_type"] = []string{"This field is required."}
	case *in.UnlockType != "email" && *in.UnlockType != "phone":
		fields["unlock_type"] = []string{fmt.Sprintf("%q is not a valid choice.", *in.UnlockType)}
	}
	if len(fields) > 0 {
		writeJSON(w, http.StatusBadRequest, fields) // ecore.md §3: a DRF field map
		return
	}
	phone := *in.UnlockType == "phone"
	s.mu.Lock()
	own := s.unlocked[tok]
	if own == nil {
		own = map[string]*unlockState{}
		s.unlocked[tok] = own
	}
	var todo []dcRecord
	cost := 0.0
	for _, d := range datacore {
		if !slices.Contains(in.UUIDs, d.uuid) {
			continue
		}
		st := own[d.uuid]
		if st != nil && ((phone && st.phone) || (!phone && st.email)) {
			continue
		}
		todo = append(todo, d)
		switch {
		case !phone:
			cost++
		case d.direct != "":
			cost += 5
		default:
			cost++
		}
	}
	bal := s.credits
	if bal >= cost {
		s.credits -= cost
		for _, d := range todo {
			if own[d.uuid] == nil {
				own[d.uuid] = &unlockState{}
			}
			if phone {
				own[d.uuid].phone = true
			} else {
				own[d.uuid].email = true
			}
		}
	}
	after := s.credits
	s.mu.Unlock()
	if bal < cost {
		writeJSON(w, http.StatusPaymentRequired, map[string]any{"error": "Insufficient wallet balance.",
			"required": cost, "balance": bal})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true,
		"message": fmt.Sprintf("Unlocked %d record(s).", len(todo)), "unlocked": len(todo),
		"credits_charged": cost, "wallet_balance": after})
}
