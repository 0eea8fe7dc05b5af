package normalize

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// This file holds the vendor-neutral reading that both vendors start and end with.

// generic maps an answer from a vendor this package does not know: its status comes from
// the HTTP code alone (SPEC 3.3: unknown operations are still proxied), with the message,
// fields and wait any vendor body may carry.
func generic(r Reply, op Operation) Envelope {
	env, b, done := begin(r, nil)
	if done {
		return env
	}
	return fromCode(r, b, env, "")
}

// begin does what both vendors share before reading a body: it keeps a JSON body as Data,
// and decides redirects, empty 204s and bodies that are not JSON (done is true then). p,
// when not nil, says what to pick from a top-level array while the body is read.
func begin(r Reply, p *pick) (env Envelope, b body, done bool) {
	if parsed, ok := parseBody(r.Body, p); ok {
		env.Data = r.Body
		b = parsed
	}
	switch {
	case r.StatusCode >= 300 && r.StatusCode < 400:
		// The proxy does not follow redirects (SPEC 1): whatever the body, this is not the
		// vendor's documented answer.
		return failed(env, StatusUpstreamError, CodeBadVendorReply,
			fmt.Sprintf("vendor answered with a redirect (HTTP %d), which the proxy does not follow", r.StatusCode)), b, true
	case r.StatusCode == http.StatusNoContent && len(bytes.TrimSpace(r.Body)) == 0:
		env.Status = StatusOK
		return env, b, true
	case env.Data == nil:
		return notJSON(r), b, true
	}
	return env, b, false
}

// notJSON maps an answer whose body does not parse (SPEC 3.5): the statuses that mean the
// same whatever the body keep their meaning, any other one is bad_vendor_reply. The raw
// text, truncated, is the message.
func notJSON(r Reply) Envelope {
	msg := clip(strings.TrimSpace(string(r.Body[:min(len(r.Body), maxMessageBytes+utf8.UTFMax)])))
	if msg == "" {
		msg = fmt.Sprintf("vendor answered HTTP %d with an empty body", r.StatusCode)
	}
	c := r.StatusCode
	if c == http.StatusUnauthorized || c == http.StatusPaymentRequired || c == http.StatusUnprocessableEntity ||
		c == http.StatusTooManyRequests || c >= 500 && c < 600 {
		return fromCode(r, body{}, Envelope{}, msg)
	}
	return failed(Envelope{}, StatusUpstreamError, CodeBadVendorReply, msg)
}

// fromCode maps a JSON answer by its HTTP code alone (StatusForCode), with what each
// status brings: fields on a rejection, required/balance on insufficient credits, the wait
// on a 429. msg, when empty, is taken from the body.
func fromCode(r Reply, b body, env Envelope, msg string) Envelope {
	st, code := StatusForCode(r.StatusCode)
	env.Status = st
	if st == StatusOK {
		return env
	}
	if msg == "" {
		msg = message(b)
	}
	e := &Error{Code: code, Message: msg}
	switch st {
	case StatusInvalidRequest:
		e.Fields = fields(b.obj)
		if e.Message == "" {
			e.Message = "validation failed"
		}
	case StatusInsufficientCredits:
		env.Credits = credits(Credits{Required: ptr(b.obj.num("required")), Balance: ptr(b.obj.num("balance"))})
	case StatusRateLimited:
		env.RetryAfterSeconds = retryAfterSeconds(r, b)
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("vendor answered HTTP %d %s", r.StatusCode, http.StatusText(r.StatusCode))
	}
	env.Error = e
	return env
}

// badReply is a 2xx JSON answer that is not what the vendor documents for the operation:
// nothing in it is trusted but its id.
func badReply(env Envelope, format string, args ...any) Envelope {
	env.Credits = nil
	return failed(env, StatusUpstreamError, CodeBadVendorReply, "unexpected vendor reply: "+fmt.Sprintf(format, args...))
}

// failed sets a status that carries an error.
func failed(env Envelope, st Status, code, msg string) Envelope {
	env.Status = st
	env.Error = &Error{Code: code, Message: msg}
	return env
}
