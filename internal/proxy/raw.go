package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
	"github.com/enrichproxy/enrichproxy/internal/upstream"
)

// rawPassHeaders are the vendor's response headers an SDK may read, passed through
// unchanged in drop-in mode (also all that a cached answer keeps).
var rawPassHeaders = upstream.PassHeaders

// writeRaw answers in drop-in mode (SPEC 10): the vendor's own status and body, byte for
// byte, with its content type and Retry-After, plus the X-Enrich-* headers saying what
// the envelope would have said.
func (s *Server) writeRaw(w http.ResponseWriter, r *http.Request, env normalize.Envelope, out *upstream.Outcome) {
	s.note(r, &env)
	h := w.Header()
	for _, k := range rawPassHeaders {
		if v := out.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	if h.Get("Content-Type") == "" {
		// The vendor named no type: say none either, rather than let net/http sniff one.
		h["Content-Type"] = nil
	}
	if h.Get("Retry-After") == "" && env.RetryAfterSeconds > 0 {
		// SPEC 3.1: a 429 (a vendor 429 without its own Retry-After, or eCore's daily cap)
		// carries the wait the proxy worked out, as the envelope would. A vendor's own
		// Retry-After is never replaced (SPEC 11).
		h.Set("Retry-After", strconv.Itoa(env.RetryAfterSeconds))
	}
	setEnrichHeaders(h, env)
	h.Set("X-Upstream-Status", strconv.Itoa(out.StatusCode))
	h.Set("Content-Length", strconv.Itoa(len(out.Body)))
	writeHeader(w, r, out.StatusCode)
	_, _ = w.Write(out.Body)
}

// writeRawError answers, in drop-in mode, what the proxy says itself in the vendor's own
// error shape, so that an SDK's error handling keeps working: Enrow {"message": …};
// eCore {"detail": …} on 401 and 404, {"error": …} otherwise.
func (s *Server) writeRawError(w http.ResponseWriter, r *http.Request, env normalize.Envelope) {
	s.note(r, &env)
	msg := string(env.Status)
	if env.Error != nil && env.Error.Message != "" {
		msg = env.Error.Message
	}
	code := env.Status.HTTPCode()
	var body []byte
	switch {
	case env.Vendor == normalize.ECore && (code == http.StatusUnauthorized || code == http.StatusNotFound):
		body, _ = json.Marshal(map[string]string{"detail": msg})
	case env.Vendor == normalize.ECore:
		body, _ = json.Marshal(map[string]string{"error": msg})
	case env.Status == normalize.StatusRateLimited:
		// vendors/enrow.md §4: Enrow's own 429 body.
		body = []byte(`{"message":"Too Many Requests"}`)
	default:
		body, _ = json.Marshal(map[string]string{"message": msg})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	setCommonHeaders(h, env)
	setEnrichHeaders(h, env)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	writeHeader(w, r, code)
	_, _ = w.Write(body)
}
