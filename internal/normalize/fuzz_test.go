package normalize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"
)

// FuzzEnrow checks that no Enrow answer breaks an envelope invariant.
func FuzzEnrow(f *testing.F) { fuzzVendor(f, Enrow) }

// FuzzECore checks that no eCore answer breaks an envelope invariant.
func FuzzECore(f *testing.F) { fuzzVendor(f, ECore) }

// fuzzVendor seeds from testdata/<vendor>/*.json and checks the envelope invariants on
// whatever method, path, query, status, wait header and body the fuzzer makes.
func fuzzVendor(f *testing.F, vendor string) {
	files, err := filepath.Glob(filepath.Join("testdata", vendor, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", vendor, err)
	}
	for _, file := range files {
		r := loadCase(f, file, vendor)
		wait := r.Header.Get("Retry-After")
		if wait == "" {
			wait = r.Header.Get("X-RateLimit-Reset")
		}
		f.Add(r.Method, r.Path, r.RawQuery, r.StatusCode, wait, r.Body)
	}
	f.Fuzz(func(t *testing.T, method, path, query string, status int, wait string, body []byte) {
		h := http.Header{}
		if wait != "" {
			h.Set("Retry-After", wait)
			h.Set("X-RateLimit-Reset", wait)
		}
		r := Reply{Vendor: vendor, Method: method, Path: path, RawQuery: query, StatusCode: status, Header: h, Body: body, Now: testNow}
		env := Normalize(r)
		for _, p := range envelopeProblems(r, env) {
			t.Error(p)
		}
		if _, err := json.Marshal(env); err != nil {
			t.Errorf("envelope does not marshal: %v", err)
		}
	})
}

// codesFor lists the error codes a vendor answer may give for each status (SPEC 3.4);
// statuses the proxy makes itself (payload_too_large, unavailable, timeout, internal)
// never come from a vendor answer.
var codesFor = map[Status][]string{
	StatusOK:                  nil,
	StatusPending:             nil,
	StatusInvalidRequest:      {CodeVendorRejected},
	StatusUnauthorized:        {CodeVendorAuth},
	StatusInsufficientCredits: {CodeInsufficientCredits},
	StatusNotFound:            {CodeUnknownID},
	StatusRateLimited:         {CodeVendorRateLimited},
	StatusQuotaExceeded:       {CodeDailyQuota},
	StatusUpstreamError:       {CodeVendorError, CodeBadVendorReply, CodeJobFailed},
}

var qualifications = []Qualification{"", QualFound, QualNotFound, QualValid, QualInvalid, QualUnknown, QualPending}

var jobStates = []string{JobPending, JobRunning, JobCompleted, JobFailed, JobPaused}

// envelopeProblems lists every way env breaks the envelope's invariants for r.
func envelopeProblems(r Reply, env Envelope) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	codes, known := codesFor[env.Status]
	switch {
	case !known:
		bad("status %q cannot come from a vendor answer", env.Status)
	case (env.Error == nil) != (env.Status == StatusOK || env.Status == StatusPending):
		bad("status %q with error %+v", env.Status, env.Error)
	case env.Error != nil && !slices.Contains(codes, env.Error.Code):
		bad("status %q with error code %q", env.Status, env.Error.Code)
	}
	if env.Error != nil {
		if env.Error.Message == "" || !utf8.ValidString(env.Error.Message) || len(env.Error.Message) > maxMessageBytes+100 {
			bad("error message empty, not UTF-8 or too long (%d bytes)", len(env.Error.Message))
		}
		if env.Error.Fields != nil && len(env.Error.Fields) == 0 {
			bad("empty fields map")
		}
	}
	if !slices.Contains(qualifications, env.Qualification) {
		bad("qualification %q not in the closed set", env.Qualification)
	}
	if env.Qualification != "" && env.Status != StatusOK && env.Status != StatusPending {
		bad("qualification %q on status %q", env.Qualification, env.Status)
	}
	limited := env.Status == StatusRateLimited || env.Status == StatusQuotaExceeded
	if limited != (env.RetryAfterSeconds > 0) || env.RetryAfterSeconds < 0 {
		bad("retry_after_seconds %d on status %q", env.RetryAfterSeconds, env.Status)
	}
	if env.Data != nil && !bytes.Equal(env.Data, r.Body) {
		bad("data is not the body")
	}
	if (env.Data != nil) != json.Valid(r.Body) {
		bad("data set %v for a body whose JSON validity is %v", env.Data != nil, json.Valid(r.Body))
	}
	if !utf8.ValidString(env.ID) {
		bad("id %q is not valid UTF-8", env.ID)
	}
	if env.Vendor != r.Vendor || !slices.Contains(Operations, env.Operation) {
		bad("vendor %q operation %q", env.Vendor, env.Operation)
	}
	if env.Result != nil && *env.Result == (Result{}) {
		bad("empty result")
	}
	if env.Credits != nil && *env.Credits == (Credits{}) {
		bad("empty credits")
	}
	if env.Job != nil {
		if !slices.Contains(jobStates, env.Job.State) {
			bad("job state %q", env.Job.State)
		}
		if env.Job.Counts != nil && len(env.Job.Counts) == 0 {
			bad("empty counts map")
		}
		for q := range env.Job.Counts {
			if q == "" || !slices.Contains(qualifications, q) {
				bad("count for qualification %q", q)
			}
		}
	}
	if p := appendJSONProblem(env); p != "" {
		bad("%s", p)
	}
	return out
}

// appendJSONProblem says how AppendJSON differs from encoding/json on env, if it does.
func appendJSONProblem(env Envelope) string {
	want, err := json.Marshal(env)
	got, ok := env.AppendJSON([]byte("prefix"))
	switch {
	case !ok && string(got) != "prefix":
		return fmt.Sprintf("AppendJSON declined but appended %q", got)
	case !ok:
		return ""
	case err != nil:
		return fmt.Sprintf("AppendJSON wrote %q where encoding/json fails: %v", got, err)
	case string(got) != "prefix"+string(want):
		return fmt.Sprintf("AppendJSON wrote %s, encoding/json %s", got[len("prefix"):], want)
	}
	return ""
}
