package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
	"github.com/enrichproxy/enrichproxy/internal/upstream"
)

// v1Input is the body of the vendor-neutral finder and verifier routes (SPEC 7).
type v1Input struct {
	FullName      string          `json:"full_name"`
	FirstName     string          `json:"first_name"`
	LastName      string          `json:"last_name"`
	CompanyDomain string          `json:"company_domain"`
	CompanyName   string          `json:"company_name"`
	LinkedInURL   string          `json:"linkedin_url"`
	CountryCode   string          `json:"country_code"`
	Email         string          `json:"email"`
	Custom        json.RawMessage `json:"custom"`
}

// names returns the full name and its first/last split: full_name, or first + " " + last;
// first and last from full_name split at its first space when only that is given.
func (in v1Input) names() (full, first, last string) {
	first, last = strings.TrimSpace(in.FirstName), strings.TrimSpace(in.LastName)
	full = strings.TrimSpace(in.FullName)
	if full == "" && first != "" && last != "" {
		full = first + " " + last
	}
	if (first == "" || last == "") && full != "" {
		first, last, _ = strings.Cut(full, " ")
		last = strings.TrimSpace(last)
	}
	return full, first, last
}

// call is one vendor request a /v1 operation translates to.
type call struct {
	path string
	body any
}

// translate builds the vendor request for op, or returns the fields the vendor would miss.
func translate(vendor string, op normalize.Operation, in v1Input) (call, map[string][]string) {
	full, first, last := in.names()
	missing := map[string][]string{}
	need := func(field, why string) { missing[field] = append(missing[field], why) }
	custom := in.Custom
	if len(custom) == 0 || string(custom) == "null" {
		custom = nil
	}
	switch op {
	case normalize.OpEmailFind, normalize.OpPhoneFind:
		hasCompany := in.CompanyDomain != "" || in.CompanyName != ""
		if vendor == normalize.Enrow {
			if op == normalize.OpPhoneFind && in.LinkedInURL != "" {
				// vendors/enrow.md §2.5: linkedin_url alone is enough and wins.
				return call{"/phone/single", compact(map[string]any{"linkedin_url": in.LinkedInURL, "custom": custom})}, nil
			}
			if full == "" {
				need("full_name", "required (or first_name and last_name) by enrow")
			}
			if !hasCompany {
				need("company_domain", "company_domain or company_name required by enrow")
			}
			if len(missing) > 0 {
				return call{}, missing
			}
			if op == normalize.OpPhoneFind {
				// vendors/enrow.md §2.5: the SDKs send first_name/last_name, the newest docs
				// spell them firstname/lastname (UNCONFIRMED): both are sent.
				return call{"/phone/single", compact(map[string]any{"first_name": first, "last_name": last,
					"firstname": first, "lastname": last, "company_domain": in.CompanyDomain,
					"company_name": in.CompanyName, "custom": custom})}, nil
			}
			body := compact(map[string]any{"fullname": full, "company_domain": in.CompanyDomain,
				"company_name": in.CompanyName, "custom": custom})
			if in.CountryCode != "" {
				body["settings"] = map[string]any{"country_code": in.CountryCode}
			}
			return call{"/email/find/single", body}, nil
		}
		path := "/external/email/enrichment/"
		if op == normalize.OpPhoneFind {
			path = "/external/phone/enrichment/"
		}
		// vendors/ecore.md §5.1: exactly one of four input combinations; SPEC 11 fixes the
		// order: linkedin_url; names + company_website; names + company_name.
		switch {
		case in.LinkedInURL != "":
			return call{path, map[string]any{"linkedin_url": in.LinkedInURL}}, nil
		case first != "" && last != "" && in.CompanyDomain != "":
			return call{path, map[string]any{"first_name": first, "last_name": last, "company_website": in.CompanyDomain}}, nil
		case first != "" && last != "" && in.CompanyName != "":
			return call{path, map[string]any{"first_name": first, "last_name": last, "company_name": in.CompanyName}}, nil
		}
		if in.LinkedInURL == "" {
			need("linkedin_url", "linkedin_url, or a first and last name with a company, required by ecore")
		}
		if first == "" || last == "" {
			need("full_name", "a first and last name required by ecore without linkedin_url")
		}
		if !hasCompany {
			need("company_domain", "company_domain or company_name required by ecore without linkedin_url")
		}
		return call{}, missing
	case normalize.OpEmailVerify:
		if strings.TrimSpace(in.Email) == "" {
			need("email", "required")
			return call{}, missing
		}
		if vendor == normalize.Enrow {
			return call{"/email/verify/single", compact(map[string]any{"email": in.Email, "custom": custom})}, nil
		}
		// vendors/ecore.md §6: no single-email endpoint; a one-email validation job.
		return call{"/email-validation/jobs/upload/", map[string]any{"emails": []string{in.Email}, "list_name": "enrichproxy"}}, nil
	}
	need("operation", "unknown")
	return call{}, missing
}

// compact drops empty strings and nil values, so that absent inputs are not sent.
func compact(m map[string]any) map[string]any {
	for k, v := range m {
		switch x := v.(type) {
		case string:
			if x == "" {
				delete(m, k)
			}
		case json.RawMessage:
			if x == nil {
				delete(m, k)
			}
		case nil:
			delete(m, k)
		}
	}
	return m
}

// failoverStatuses are the answers after which /v1 tries the next vendor: none of them
// means the vendor accepted (and may bill) the work (SPEC 7).
var failoverStatuses = []normalize.Status{normalize.StatusUnavailable, normalize.StatusInsufficientCredits,
	normalize.StatusQuotaExceeded, normalize.StatusUnauthorized}

// handleV1 serves POST /v1/email/find, /v1/email/verify and /v1/phone/find.
func (s *Server) handleV1(op normalize.Operation) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := recordOf(r)
		rec.op = op
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		var in v1Input
		if err := json.Unmarshal(body, &in); err != nil {
			s.writeError(w, r, normalize.ErrorEnvelope("", op, normalize.StatusInvalidRequest, normalize.CodeInvalidInput,
				"the body is not a JSON object of the documented fields"))
			return
		}
		vendors, env, ok := s.v1Vendors(r)
		if !ok {
			s.writeError(w, r, env)
			return
		}
		// Only vendors that can take the input are tried; input none can take is rejected
		// before any vendor call.
		calls := map[string]call{}
		var candidates []string
		fields := map[string][]string{}
		for _, v := range vendors {
			c, missing := translate(v, op, in)
			if len(missing) > 0 {
				for k, why := range missing {
					fields[k] = append(fields[k], why...)
				}
				continue
			}
			calls[v] = c
			candidates = append(candidates, v)
		}
		if len(candidates) == 0 {
			env := normalize.ErrorEnvelope("", op, normalize.StatusInvalidRequest, normalize.CodeInvalidInput,
				"no vendor can take this input")
			env.Error.Fields = fields
			s.writeError(w, r, env)
			return
		}

		ctx, cancel := s.deadline(r)
		defer cancel()
		plan := planWait(ctx, r)
		var failover []normalize.FailoverStep
		for i, v := range candidates {
			client := s.cfg.Vendors[v]
			raw, _ := json.Marshal(calls[v].body)
			req := &upstream.Request{Method: http.MethodPost, Path: calls[v].path, Body: raw, RequestID: rec.id,
				Header: http.Header{"Content-Type": {"application/json"}}}
			out, applied, err := s.forward(ctx, r, client, req, plan)
			env := v1Envelope(v, op, out, err)
			if i < len(candidates)-1 && slices.Contains(failoverStatuses, env.Status) {
				failover = append(failover, normalize.FailoverStep{Vendor: v, Status: env.Status})
				continue
			}
			if applied != "" {
				// Honoured: the vendor answered, and a pending answer was waited for
				// (SPEC 11: also when it was final at once). Not when the proxy answered
				// for the vendor (breaker open, deadline…), as on the vendor routes.
				w.Header().Set("Preference-Applied", applied)
			}
			env.Failover = failover
			s.writeEnvelope(w, r, env)
			return
		}
	}
}

// v1Vendors are the vendors a /v1 request may use, in order: the one named by ?vendor= or
// X-Vendor (no failover), else PROXY_VENDOR_ORDER. Only vendors with a configured
// credential are ever chosen (SPEC 11).
func (s *Server) v1Vendors(r *http.Request) ([]string, normalize.Envelope, bool) {
	named := r.URL.Query().Get("vendor")
	if named == "" {
		named = r.Header.Get("X-Vendor")
	}
	if named != "" {
		if _, ok := s.cfg.Vendors[named]; !ok || !s.cfg.Vendors[named].HasSecret() {
			return nil, normalize.ErrorEnvelope("", recordOf(r).op, normalize.StatusInvalidRequest, normalize.CodeInvalidInput,
				"vendor "+strconv.Quote(named)+" is not a configured vendor with a credential"), false
		}
		return []string{named}, normalize.Envelope{}, true
	}
	var out []string
	for _, v := range s.cfg.VendorOrder {
		if c, ok := s.cfg.Vendors[v]; ok && c.HasSecret() {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, normalize.ErrorEnvelope("", recordOf(r).op, normalize.StatusUnauthorized, normalize.CodeVendorAuth,
			"no vendor has a configured credential"), false
	}
	return out, normalize.Envelope{}, true
}

// v1Envelope is the envelope of a /v1 answer: the /v1 operation, and the composite id
// {vendor}:{operation}:{id} that the result route reads without state.
func v1Envelope(vendor string, op normalize.Operation, out *upstream.Outcome, err error) normalize.Envelope {
	var env normalize.Envelope
	if err != nil {
		env = envelopeForError(vendor, op, err)
	} else {
		env = out.Envelope
	}
	if out.Attempts > 0 {
		env.Upstream = &normalize.Upstream{Status: out.StatusCode, Attempts: out.Attempts, DurationMS: out.Duration.Milliseconds()}
	}
	env.Vendor, env.Operation = vendor, op
	if op == normalize.OpEmailVerify && vendor == normalize.ECore {
		// A one-email validation job answers as the single verification it stands for.
		env.Job = nil
		if env.Status == normalize.StatusPending {
			env.Qualification = normalize.QualPending
		}
	}
	if env.ID != "" {
		env.ID = vendor + ":" + string(op) + ":" + env.ID
	}
	return env
}

// resultPaths are the vendor GETs behind GET /v1/results/{vendor}:{operation}:{id}.
var resultPaths = map[string]map[normalize.Operation]func(id string) (string, string){
	normalize.Enrow: {
		normalize.OpEmailFind:   func(id string) (string, string) { return "/email/find/single", "id=" + url.QueryEscape(id) },
		normalize.OpEmailVerify: func(id string) (string, string) { return "/email/verify/single", "id=" + url.QueryEscape(id) },
		normalize.OpPhoneFind:   func(id string) (string, string) { return "/phone/single", "id=" + url.QueryEscape(id) },
	},
	normalize.ECore: {
		normalize.OpEmailVerify: func(id string) (string, string) { return "/email-validation/jobs/" + url.PathEscape(id) + "/", "" },
	},
}

// handleV1Result serves GET /v1/results/{vendor}:{operation}:{id}.
func (s *Server) handleV1Result(w http.ResponseWriter, r *http.Request) {
	rec := recordOf(r)
	ref := chi.URLParam(r, "ref")
	if u, err := url.PathUnescape(ref); err == nil {
		ref = u
	}
	vendor, rest, _ := strings.Cut(ref, ":")
	opName, id, _ := strings.Cut(rest, ":")
	op := normalize.Operation(opName)
	rec.op = normalize.OpOther
	if slices.Contains(normalize.Operations, op) {
		rec.op = op
	}
	paths, okVendor := resultPaths[vendor]
	target, okOp := paths[op]
	client, configured := s.cfg.Vendors[vendor]
	if !okVendor || !okOp || !validResultID(vendor, id) || !configured || !client.HasSecret() {
		if !configured {
			vendor = "" // the client's word: not for the envelope, nor for a metric label
		}
		s.writeError(w, r, normalize.ErrorEnvelope(vendor, rec.op, normalize.StatusInvalidRequest, normalize.CodeInvalidInput,
			"want an id of the form {vendor}:{operation}:{id} from a /v1 answer with a result to fetch"))
		return
	}
	ctx, cancel := s.deadline(r)
	defer cancel()
	path, query := target(id)
	header := http.Header{}
	if v := r.Header.Get("Cache-Control"); v != "" {
		header.Set("Cache-Control", v) // no-cache skips the cache of final results (SPEC 4)
	}
	req := &upstream.Request{Method: http.MethodGet, Path: path, RawQuery: query, RequestID: rec.id, Header: header}
	out, applied, err := s.forward(ctx, r, client, req, planWait(ctx, r))
	if applied != "" {
		w.Header().Set("Preference-Applied", applied)
	}
	env := v1Envelope(vendor, op, out, err)
	if env.ID == "" {
		env.ID = vendor + ":" + string(op) + ":" + id
	}
	s.writeEnvelope(w, r, env)
}

// validResultID checks the id part of a result reference: eCore job ids are integers
// (vendors/ecore.md §6.1), and one that is not must never become a path segment ("..");
// Enrow ids travel in the query, escaped, and only need to be present and printable.
func validResultID(vendor, id string) bool {
	if id == "" || len(id) > 256 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if vendor == normalize.ECore && (c < '0' || c > '9') {
			return false
		}
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}
