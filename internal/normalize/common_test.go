package normalize

import (
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRetryAfter(t *testing.T) {
	now := testNow
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
		wantOK bool
	}{
		{"none", nil, 0, false},
		{"seconds", map[string]string{"Retry-After": "30"}, 30 * time.Second, true},
		{"seconds with spaces", map[string]string{"Retry-After": " 7 "}, 7 * time.Second, true},
		{"fractional seconds", map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond, true},
		{"zero", map[string]string{"Retry-After": "0"}, 0, true},
		{"negative", map[string]string{"Retry-After": "-5"}, 0, true},
		{"http date", map[string]string{"Retry-After": "Wed, 06 May 2026 11:43:08 GMT"}, time.Minute, true},
		{"http date past", map[string]string{"Retry-After": "Wed, 06 May 2026 11:00:00 GMT"}, 0, true},
		{"rfc850 date", map[string]string{"Retry-After": "Wednesday, 06-May-26 11:42:18 GMT"}, 10 * time.Second, true},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0, false},
		{"NaN", map[string]string{"Retry-After": "NaN"}, 0, false},
		{"huge", map[string]string{"Retry-After": "1e300"}, time.Duration(math.MaxInt64), true},
		{"garbage falls back to reset", map[string]string{"Retry-After": "soon", "X-RateLimit-Reset": "12"}, 12 * time.Second, true},
		{"reset epoch", map[string]string{"X-RateLimit-Reset": "1778067748"}, 20 * time.Second, true},
		{"reset epoch past", map[string]string{"X-RateLimit-Reset": "1778067000"}, 0, true},
		{"reset epoch ms", map[string]string{"X-RateLimit-Reset": "1778067733500"}, 5500 * time.Millisecond, true},
		{"reset delta", map[string]string{"X-RateLimit-Reset": "45"}, 45 * time.Second, true},
		{"reset delta negative", map[string]string{"X-RateLimit-Reset": "-3"}, 0, true},
		{"retry-after wins", map[string]string{"Retry-After": "2", "X-RateLimit-Reset": "45"}, 2 * time.Second, true},
		{"reset garbage", map[string]string{"X-RateLimit-Reset": "tomorrow"}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			got, ok := RetryAfter(h, now)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("RetryAfter(%v) = %v, %v; want %v, %v", tc.header, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestUntilMidnightUTC(t *testing.T) {
	paris := time.FixedZone("CEST", 2*3600)
	tests := []struct {
		now  time.Time
		want time.Duration
	}{
		{testNow, 12*time.Hour + 17*time.Minute + 52*time.Second},
		{time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC), 24 * time.Hour},
		{time.Date(2026, 5, 6, 23, 59, 59, 999, time.UTC), time.Second - 999},
		{time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), time.Hour},
		{time.Date(2026, 5, 7, 1, 30, 0, 0, paris), 30 * time.Minute}, // 23:30 UTC on the 6th
	}
	for _, tc := range tests {
		if got := UntilMidnightUTC(tc.now); got != tc.want {
			t.Errorf("UntilMidnightUTC(%v) = %v, want %v", tc.now, got, tc.want)
		}
	}
}

func TestCeilSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{-time.Second, 0},
		{time.Nanosecond, 1},
		{999 * time.Millisecond, 1},
		{time.Second, 1},
		{time.Second + time.Nanosecond, 2},
		{90 * time.Second, 90},
		{time.Duration(math.MaxInt64), int(math.MaxInt64/int64(time.Second)) + 1},
	}
	for _, tc := range tests {
		if got := CeilSeconds(tc.d); got != tc.want {
			t.Errorf("CeilSeconds(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

func TestStreamed(t *testing.T) {
	tests := []struct {
		name        string
		code        int
		contentType string
		disposition string
		want        bool
	}{
		{"csv", 200, "text/csv", "", true},
		{"csv with charset", 200, "text/csv; charset=utf-8", "", true},
		{"csv upper case", 200, "Text/CSV", "", true},
		{"octet-stream", 200, "application/octet-stream", "", true},
		{"xls", 200, "application/vnd.ms-excel", "", true},
		{"xlsx", 200, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "", true},
		{"xlsm", 200, "application/vnd.ms-excel.sheet.macroEnabled.12", "", true},
		{"zip", 200, "application/zip", "", true},
		{"pdf", 200, "application/pdf", "", true},
		{"attachment json", 200, "application/json", `attachment; filename="email_validation_3f1c2b4a.json"`, true},
		{"attachment only", 200, "", "attachment", true},
		{"attachment malformed", 200, "", "attachment; filename=a b.csv;;", true},
		{"inline", 200, "application/json", "inline", false},
		{"json", 200, "application/json", "", false},
		{"html", 200, "text/html; charset=utf-8", "", false},
		{"plain text", 200, "text/plain", "", false},
		{"none", 200, "", "", false},
		{"csv error 400", 400, "text/csv", "", false},
		{"csv 404 attachment", 404, "text/csv", "attachment", false},
		{"csv 206", 206, "text/csv", "", true},
		{"malformed content type", 200, "text/csv;;;", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.contentType != "" {
				h.Set("Content-Type", tc.contentType)
			}
			if tc.disposition != "" {
				h.Set("Content-Disposition", tc.disposition)
			}
			if got := Streamed(tc.code, h); got != tc.want {
				t.Errorf("Streamed(%d, %v) = %v, want %v", tc.code, h, got, tc.want)
			}
		})
	}
}

func TestStatusForCode(t *testing.T) {
	tests := []struct {
		code   int
		status Status
		ecode  string
	}{
		{200, StatusOK, ""}, {201, StatusOK, ""}, {202, StatusOK, ""}, {204, StatusOK, ""},
		{301, StatusUpstreamError, CodeBadVendorReply}, {304, StatusUpstreamError, CodeBadVendorReply},
		{400, StatusInvalidRequest, CodeVendorRejected},
		{401, StatusUnauthorized, CodeVendorAuth}, {403, StatusUnauthorized, CodeVendorAuth},
		{402, StatusInsufficientCredits, CodeInsufficientCredits}, {422, StatusInsufficientCredits, CodeInsufficientCredits},
		{404, StatusNotFound, CodeUnknownID},
		{405, StatusInvalidRequest, CodeVendorRejected}, {409, StatusInvalidRequest, CodeVendorRejected},
		{410, StatusInvalidRequest, CodeVendorRejected}, {415, StatusInvalidRequest, CodeVendorRejected},
		{429, StatusRateLimited, CodeVendorRateLimited},
		{500, StatusUpstreamError, CodeVendorError}, {502, StatusUpstreamError, CodeVendorError},
		{503, StatusUpstreamError, CodeVendorError}, {599, StatusUpstreamError, CodeVendorError},
		{100, StatusUpstreamError, CodeBadVendorReply}, {600, StatusUpstreamError, CodeBadVendorReply},
		{0, StatusUpstreamError, CodeBadVendorReply}, {-1, StatusUpstreamError, CodeBadVendorReply},
	}
	for _, tc := range tests {
		st, code := StatusForCode(tc.code)
		if st != tc.status || code != tc.ecode {
			t.Errorf("StatusForCode(%d) = %q, %q; want %q, %q", tc.code, st, code, tc.status, tc.ecode)
		}
	}
}

func TestFields(t *testing.T) {
	tests := []struct {
		name string
		body string
		want map[string][]string
	}{
		{"drf index map", `{"emails":{"3":["Not a valid email address."]}}`,
			map[string][]string{"emails.3": {"Not a valid email address."}}},
		{"several", `{"first_name":["This field is required."],"last_name":["This field is required.","Too long."]}`,
			map[string][]string{"first_name": {"This field is required."}, "last_name": {"This field is required.", "Too long."}}},
		{"string leaf", `{"list_name":"Too long."}`, map[string][]string{"list_name": {"Too long."}}},
		{"nested", `{"criteria":{"titles":{"0":["Unknown title."]}}}`,
			map[string][]string{"criteria.titles.0": {"Unknown title."}}},
		{"list serializer", `{"records":[{},{"email":["Enter a valid email address."]}]}`,
			map[string][]string{"records.1.email": {"Enter a valid email address."}}},
		{"non field errors", `{"non_field_errors":["Provide exactly one input combination."]}`,
			map[string][]string{"non_field_errors": {"Provide exactly one input combination."}}},
		{"message keys skipped", `{"error":"Invalid status filter.","detail":"x","message":"y","reason":"z"}`, nil},
		{"numbers and bools skipped", `{"status":400,"success":false,"required":5}`, nil},
		{"legacy enrow", `{"error":"ValidationError","message":"invalid email format","status":400}`, nil},
		{"nested message key kept", `{"contact":{"message":["Required."]}}`,
			map[string][]string{"contact.message": {"Required."}}},
		{"empty", `{}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := fields(readBody([]byte(tc.body)).obj)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("fields(%s) = %v, want %v", tc.body, got, tc.want)
			}
		})
	}
	deep := strings.Repeat(`{"a":`, 100) + `["x"]` + strings.Repeat(`}`, 100)
	if got := fields(readBody([]byte(deep)).obj); got != nil {
		t.Errorf("fields of a 100-deep map = %v, want nil (depth is bounded)", got)
	}
}

func TestMessage(t *testing.T) {
	tests := []struct {
		body, want string
	}{
		{`{"message":"Too Many Requests"}`, "Too Many Requests"},
		{`{"reason":"Insufficient credits","success":false}`, "Insufficient credits"},
		{`{"detail":"Invalid token."}`, "Invalid token."},
		{`{"error":"Job is not yet complete."}`, "Job is not yet complete."},
		{`{"error":{"message":"Daily limit reached","daily_limit":100}}`, "Daily limit reached"},
		{`{"error":"ValidationError","message":"invalid email format","status":400}`, "invalid email format"},
		{`{"message":"","reason":"r"}`, "r"},
		{`{"message":42,"detail":"d"}`, "d"},
		{`"plain"`, "plain"},
		{`[1,2]`, ""},
		{`["Job is not yet complete.","Try later."]`, "Job is not yet complete.; Try later."},
		{`{}`, ""},
	}
	for _, tc := range tests {
		if got := message(readBody([]byte(tc.body))); got != tc.want {
			t.Errorf("message(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("a", maxMessageBytes-1) + "é" + "tail"
	got := clip(long)
	if len(got) != maxMessageBytes-1 || !utf8.ValidString(got) {
		t.Errorf("clip cut inside a rune: len %d, valid %v", len(got), utf8.ValidString(got))
	}
	if got := clip("bad \xff byte"); got != "bad \uFFFD byte" {
		t.Errorf("clip kept invalid UTF-8: %q", got)
	}
	if got := clip("short"); got != "short" {
		t.Errorf("clip(short) = %q", got)
	}
}

func TestToken(t *testing.T) {
	tests := map[string]string{
		"maybe":                 `"maybe"`,
		"catch-all":             `"catch-all"`,
		"tim.cook@apple.com":    "(value not shown)",
		"":                      "(value not shown)",
		strings.Repeat("x", 40): "(value not shown)",
	}
	for in, want := range tests {
		if got := token(in); got != want {
			t.Errorf("token(%q) = %s, want %s", in, got, want)
		}
	}
}

// readBody reads a body already known to be valid JSON.
func readBody(raw []byte) body {
	b, _ := parseBody(raw, nil)
	return b
}
