package normalize

import (
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// StatusForCode is the status and error code an answer gets from its HTTP code alone: for
// a streamed answer (SPEC 3.5), and as the base that the vendor readings refine.
// 2xx is ok with no code; 401/403 unauthorized; 402/422 insufficient_credits; 404
// not_found; 429 rate_limited; 5xx upstream_error/vendor_error; 3xx (a redirect the proxy
// does not follow) upstream_error/bad_vendor_reply; any other 4xx invalid_request/
// vendor_rejected; anything else upstream_error/bad_vendor_reply.
func StatusForCode(code int) (Status, string) {
	switch {
	case is2xx(code):
		return StatusOK, ""
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return StatusUnauthorized, CodeVendorAuth
	case code == http.StatusPaymentRequired, code == http.StatusUnprocessableEntity:
		// vendors/enrow.md §3.2: 422 is insufficient balance in the older Enrow docs.
		return StatusInsufficientCredits, CodeInsufficientCredits
	case code == http.StatusNotFound:
		return StatusNotFound, CodeUnknownID
	case code == http.StatusTooManyRequests:
		return StatusRateLimited, CodeVendorRateLimited
	case code >= 500 && code < 600:
		return StatusUpstreamError, CodeVendorError
	case code >= 400 && code < 500:
		return StatusInvalidRequest, CodeVendorRejected
	}
	return StatusUpstreamError, CodeBadVendorReply
}

// RetryAfter reads how long a vendor asks to wait: Retry-After as delta seconds or an HTTP
// date, else X-RateLimit-Reset as a Unix timestamp when above 1e9 (in milliseconds when
// above 1e12), else as delta seconds. A time in the past is a wait of 0. It reports false
// when no header parses.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if f, ok := finite(v); ok {
			return seconds(f), true
		}
		if t, err := http.ParseTime(v); err == nil {
			return seconds(sinceEpoch(t) - sinceEpoch(now)), true
		}
	}
	// vendors/enrow.md §4: older Enrow pages name X-RateLimit-Reset (a Unix timestamp);
	// the Python and JS SDKs read it on a 429.
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if f, ok := finite(v); ok {
			switch {
			case f > 1e12:
				return seconds(f/1000 - sinceEpoch(now)), true
			case f > 1e9:
				return seconds(f - sinceEpoch(now)), true
			}
			return seconds(f), true
		}
	}
	return 0, false
}

// UntilMidnightUTC is the time from now to the next 00:00 UTC, when eCore's daily test-token
// quota resets (vendors/ecore.md §2). It is never 0: at midnight exactly it is 24h.
func UntilMidnightUTC(now time.Time) time.Duration {
	t := now.UTC()
	next := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
	return next.Sub(t)
}

// CeilSeconds is d in whole seconds rounded up (SPEC 3.1: Retry-After is whole seconds):
// at least 1 when d > 0, and 0 when d <= 0.
func CeilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	s := d / time.Second
	if d%time.Second != 0 {
		s++
	}
	return int(s)
}

// fileTypes are the media types of answers that are files, not envelopes (SPEC 3.5).
var fileTypes = map[string]bool{
	"text/csv":                     true,
	"application/csv":              true,
	"text/tab-separated-values":    true,
	"application/octet-stream":     true,
	"application/zip":              true,
	"application/x-zip-compressed": true,
	"application/gzip":             true,
	"application/pdf":              true,
	"application/vnd.ms-excel":     true,
}

// Streamed reports whether a vendor answer is a file to stream through unchanged rather
// than normalize (SPEC 3.5): a 2xx whose Content-Type names a file format (CSV, a
// spreadsheet, zip, PDF, octet-stream) or that carries Content-Disposition: attachment,
// like eCore's CSV download (vendors/ecore.md §6.5). HTML and plain text are not files.
// Bodies too large to normalize are the caller's decision.
func Streamed(statusCode int, h http.Header) bool {
	if !is2xx(statusCode) {
		return false
	}
	cd := h.Get("Content-Disposition")
	if ct := h.Get("Content-Type"); cd == "" && len(ct) >= 16 && strings.EqualFold(ct[:16], "application/json") {
		return false // the answer of almost every call, without parsing it
	}
	if mediaType(cd) == "attachment" {
		return true
	}
	mt := mediaType(h.Get("Content-Type"))
	return fileTypes[mt] ||
		strings.HasPrefix(mt, "application/vnd.ms-excel.") ||
		strings.HasPrefix(mt, "application/vnd.openxmlformats-officedocument.spreadsheetml.") ||
		strings.HasPrefix(mt, "application/vnd.oasis.opendocument.spreadsheet")
}

// mediaType is the lower-case value before any parameters, also for malformed headers.
func mediaType(v string) string {
	if mt, _, err := mime.ParseMediaType(v); err == nil {
		return mt
	}
	v, _, _ = strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(v))
}

// retryAfterSeconds is the wait a vendor 429 gets: from the headers, else from a legacy
// body field, else 1 second (SPEC 3.1: rate_limited always carries a wait).
func retryAfterSeconds(r Reply, b body) int {
	if d, ok := RetryAfter(r.Header, r.Now); ok {
		return max(CeilSeconds(d), 1)
	}
	// vendors/enrow.md §3.1: old Enrow 429 bodies carried "retry_after": 300 (seconds).
	if f, ok := b.obj.num("retry_after"); ok && f > 0 {
		return max(CeilSeconds(seconds(f)), 1)
	}
	return 1
}

// finite parses a decimal number that is neither NaN nor infinite.
func finite(v string) (float64, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// seconds converts f seconds to a duration: negative is 0, too large is the largest.
func seconds(f float64) time.Duration {
	switch {
	case !(f > 0):
		return 0
	case f >= float64(math.MaxInt64)/float64(time.Second):
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(f * float64(time.Second))
}

// sinceEpoch is t as Unix seconds with a fraction, defined for any year.
func sinceEpoch(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}
