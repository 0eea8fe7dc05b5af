// Package normalize owns the proxy's one answer shape, the Envelope, with its closed
// vocabularies (Status, Qualification, Operation), and the pure mapping of every
// documented Enrow and eCore answer into it.
//
// It does no I/O, no logging and no metrics: given what a vendor said (status, headers,
// body) it says what that means. The vendor's body is kept verbatim in Envelope.Data and is
// never re-encoded.
package normalize

import (
	"encoding/json"
	"net/http"
	"time"
)

// Vendor names, as they appear in routes, envelopes, metrics and logs.
const (
	Enrow = "enrow"
	ECore = "ecore"
)

// Status says whether a call worked. It is a closed set; each value has one HTTP code.
type Status string

// The closed set of statuses (SPEC 3.1).
const (
	StatusOK                  Status = "ok"
	StatusPending             Status = "pending"
	StatusInvalidRequest      Status = "invalid_request"
	StatusUnauthorized        Status = "unauthorized"
	StatusInsufficientCredits Status = "insufficient_credits"
	StatusNotFound            Status = "not_found"
	StatusPayloadTooLarge     Status = "payload_too_large"
	StatusRateLimited         Status = "rate_limited"
	StatusQuotaExceeded       Status = "quota_exceeded"
	StatusUpstreamError       Status = "upstream_error"
	StatusUnavailable         Status = "unavailable"
	StatusTimeout             Status = "timeout"
	StatusInternal            Status = "internal"
)

// HTTPCode is the HTTP status the proxy answers with for s.
func (s Status) HTTPCode() int {
	switch s {
	case StatusOK:
		return http.StatusOK
	case StatusPending:
		return http.StatusAccepted
	case StatusInvalidRequest:
		return http.StatusBadRequest
	case StatusUnauthorized:
		return http.StatusUnauthorized
	case StatusInsufficientCredits:
		return http.StatusPaymentRequired
	case StatusNotFound:
		return http.StatusNotFound
	case StatusPayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case StatusRateLimited, StatusQuotaExceeded:
		return http.StatusTooManyRequests
	case StatusUpstreamError:
		return http.StatusBadGateway
	case StatusUnavailable:
		return http.StatusServiceUnavailable
	case StatusTimeout:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// Final reports whether an answer with this status will not change by polling.
func (s Status) Final() bool { return s != StatusPending }

// Qualification says what the vendor found (SPEC 3.2). Empty when it does not apply.
type Qualification string

// The closed set of qualifications.
const (
	QualFound    Qualification = "found"
	QualNotFound Qualification = "not_found"
	QualValid    Qualification = "valid"
	QualInvalid  Qualification = "invalid"
	QualUnknown  Qualification = "unknown"
	QualPending  Qualification = "pending"
)

// Operation is what the call does, classified from vendor, method and path (SPEC 3.3).
type Operation string

// The operations the proxy knows; anything else is OpOther.
const (
	OpEmailFind       Operation = "email.find"
	OpEmailFindBulk   Operation = "email.find.bulk"
	OpEmailVerify     Operation = "email.verify"
	OpEmailVerifyBulk Operation = "email.verify.bulk"
	OpPhoneFind       Operation = "phone.find"
	OpPhoneFindBulk   Operation = "phone.find.bulk"
	OpAccount         Operation = "account"
	OpSearch          Operation = "search"
	OpUnlock          Operation = "unlock"
	OpEnrichment      Operation = "enrichment"
	OpOther           Operation = "other"
)

// Operations lists every Operation, for bounded metric labels and tests.
var Operations = []Operation{OpEmailFind, OpEmailFindBulk, OpEmailVerify, OpEmailVerifyBulk,
	OpPhoneFind, OpPhoneFindBulk, OpAccount, OpSearch, OpUnlock, OpEnrichment, OpOther}

// Job states (SPEC 3.3), vendor-neutral.
const (
	JobPending   = "pending"
	JobRunning   = "running"
	JobCompleted = "completed"
	JobFailed    = "failed"
	JobPaused    = "paused"
)

// Error codes (SPEC 3.4): machine-readable and stable.
const (
	CodeVendorRejected      = "vendor_rejected"
	CodeInvalidInput        = "invalid_input"
	CodePathEscape          = "path_escape"
	CodeVendorAuth          = "vendor_auth"
	CodeProxyAuth           = "proxy_auth"
	CodeInsufficientCredits = "insufficient_credits"
	CodeUnknownID           = "unknown_id"
	CodeUnknownRoute        = "unknown_route"
	CodeBodyTooLarge        = "body_too_large"
	CodeVendorRateLimited   = "vendor_rate_limited"
	CodeLocalRateLimited    = "local_rate_limited"
	CodeDailyQuota          = "daily_quota"
	CodeVendorError         = "vendor_error"
	CodeBadVendorReply      = "bad_vendor_reply"
	CodeJobFailed           = "job_failed"
	CodeTransport           = "transport"
	CodeCircuitOpen         = "circuit_open"
	CodeDraining            = "draining"
	CodeDeadlineExceeded    = "deadline_exceeded"
	CodeInternal            = "internal"
)

// Envelope is the one answer shape of the proxy (SPEC 3). Fields with no value are omitted
// from JSON except Status, Vendor, Operation and RequestID. Data is written by the proxy
// after the other fields, verbatim; it is not part of the struct's JSON encoding.
type Envelope struct {
	Status            Status         `json:"status"`
	Qualification     Qualification  `json:"qualification,omitempty"`
	Vendor            string         `json:"vendor"`
	Operation         Operation      `json:"operation"`
	ID                string         `json:"id,omitempty"`
	Result            *Result        `json:"result,omitempty"`
	Job               *Job           `json:"job,omitempty"`
	Credits           *Credits       `json:"credits,omitempty"`
	RetryAfterSeconds int            `json:"retry_after_seconds,omitempty"`
	Error             *Error         `json:"error,omitempty"`
	Failover          []FailoverStep `json:"failover,omitempty"`
	Upstream          *Upstream      `json:"upstream,omitempty"`
	RequestID         string         `json:"request_id"`
	// Data is the vendor's JSON body exactly as received; nil when the body was not JSON.
	Data json.RawMessage `json:"-"`
}

// Result holds the few vendor-neutral fields every finder user wants.
type Result struct {
	Email   string `json:"email,omitempty"`
	Phone   string `json:"phone,omitempty"`
	Country string `json:"country,omitempty"`
}

// Job describes a bulk or asynchronous job.
type Job struct {
	State  string                `json:"state"`
	Done   *int                  `json:"done,omitempty"`
	Total  *int                  `json:"total,omitempty"`
	Counts map[Qualification]int `json:"counts,omitempty"`
}

// Credits holds what the vendor said about credits; nil fields were not said.
type Credits struct {
	Used      *float64 `json:"used,omitempty"`
	Remaining *float64 `json:"remaining,omitempty"`
	Required  *float64 `json:"required,omitempty"`
	Balance   *float64 `json:"balance,omitempty"`
}

// Error explains every status other than ok and pending.
type Error struct {
	Code    string              `json:"code"`
	Message string              `json:"message,omitempty"`
	Fields  map[string][]string `json:"fields,omitempty"`
}

// FailoverStep records a vendor that was tried by /v1 before the one that answered.
type FailoverStep struct {
	Vendor string `json:"vendor"`
	Status Status `json:"status"`
}

// Upstream describes the vendor calls behind an answer; nil when the vendor was not called.
type Upstream struct {
	Status     int   `json:"status"`
	Attempts   int   `json:"attempts"`
	DurationMS int64 `json:"duration_ms"`
}

// Reply is what a vendor answered to one call, with what is needed to read it.
type Reply struct {
	Vendor string
	Method string
	// Path is the vendor-relative path, e.g. "/email/find/single".
	Path string
	// RawQuery is the query string as sent, without the '?'.
	RawQuery string
	// StatusCode, Header and Body are the vendor's answer. Body is the whole body.
	StatusCode int
	Header     http.Header
	Body       []byte
	// Now is the time of the answer, for waits computed from it (daily quota, HTTP dates).
	Now time.Time
}

// Normalize maps one vendor answer to an envelope. RequestID and Upstream are left for
// the caller. It never fails: an answer it cannot read is upstream_error/bad_vendor_reply.
func Normalize(r Reply) Envelope {
	op := Classify(r.Vendor, r.Method, r.Path)
	var env Envelope
	switch r.Vendor {
	case Enrow:
		env = enrow(r, op)
	case ECore:
		env = eCore(r, op)
	default:
		env = generic(r, op)
	}
	env.Vendor = r.Vendor
	env.Operation = op
	return env
}

// ErrorEnvelope builds an envelope for an answer the proxy makes itself.
func ErrorEnvelope(vendor string, op Operation, status Status, code, message string) Envelope {
	if op == "" {
		op = OpOther
	}
	return Envelope{
		Status:    status,
		Vendor:    vendor,
		Operation: op,
		Error:     &Error{Code: code, Message: message},
	}
}
