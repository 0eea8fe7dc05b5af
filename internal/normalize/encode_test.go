package normalize

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"testing"
)

// TestAppendJSON: every field of the envelope, each value kind at its edges, written as
// encoding/json writes it, or left to encoding/json when a string needs escaping or a
// float is not finite. The goldens and the fuzz targets check the same on every envelope
// normalize makes (envelopeProblems).
func TestAppendJSON(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	n := func(v int) *int { return &v }
	full := Envelope{
		Status: StatusOK, Qualification: QualValid, Vendor: "enrow", Operation: OpEmailVerifyBulk, ID: "abc-123",
		Result:            &Result{Email: "a@b.co", Phone: "+33 6 12", Country: "FR"},
		Job:               &Job{State: JobCompleted, Done: n(3), Total: n(0), Counts: map[Qualification]int{QualValid: 2, QualInvalid: 1, QualUnknown: 0}},
		Credits:           &Credits{Used: f(0.25), Remaining: f(1e21), Required: f(-3e-7), Balance: f(0)},
		RetryAfterSeconds: 7,
		Error:             &Error{Code: CodeVendorError, Message: "it broke"},
		Failover:          []FailoverStep{{Vendor: "ecore", Status: StatusUnavailable}, {Vendor: "enrow", Status: StatusTimeout}},
		Upstream:          &Upstream{Status: 200, Attempts: 2, DurationMS: 1234},
		RequestID:         "req-1",
		Data:              []byte(`{"ignored":true}`),
	}
	cases := map[string]Envelope{
		"empty":       {},
		"minimal":     {Status: StatusPending, Vendor: "ecore", Operation: OpEmailFind, RequestID: "x"},
		"full":        full,
		"one result":  {Status: StatusOK, Result: &Result{Country: "US"}},
		"empty parts": {Result: &Result{}, Job: &Job{}, Credits: &Credits{}, Error: &Error{}, Upstream: &Upstream{}},
	}
	for _, v := range []float64{1, -1, 123456789, 1e20, 1e-6, 9.99e-7, 1.5e300, -2.5e-300, 0.1 + 0.2, math.SmallestNonzeroFloat64} {
		cases["float "+strconv.FormatFloat(v, 'g', -1, 64)] = Envelope{Credits: &Credits{Used: f(v)}}
	}
	// Left to encoding/json.
	for name, s := range map[string]string{"quote": `a"b`, "backslash": `a\b`, "html": "<a&b>", "control": "a\nb",
		"utf8": "café", "invalid utf8": "a\xffb", "del": "a\x7fb", "line separator": "a\u2028b"} {
		cases["string "+name] = Envelope{Error: &Error{Code: CodeVendorRejected, Message: s}}
	}
	cases["error fields"] = Envelope{Error: &Error{Code: CodeInvalidInput, Fields: map[string][]string{"email": {"bad"}}}}
	cases["nan"] = Envelope{Credits: &Credits{Used: f(math.NaN())}}
	cases["inf"] = Envelope{Credits: &Credits{Used: f(math.Inf(1))}}

	declined := 0
	for name, env := range cases {
		if p := appendJSONProblem(env); p != "" {
			t.Errorf("%s: %s", name, p)
		}
		if _, ok := env.AppendJSON(nil); !ok {
			declined++
		}
	}
	if want := 11; declined != want {
		t.Errorf("AppendJSON declined %d envelopes, want %d (the strings, error fields, NaN and Inf)", declined, want)
	}
}

// BenchmarkEnvelopeEncode: a found email's envelope (Data excluded, as the writer splices
// it) by AppendJSON and by encoding/json.
func BenchmarkEnvelopeEncode(b *testing.B) {
	used := 1.0
	env := Envelope{Status: StatusOK, Qualification: QualFound, Vendor: Enrow, Operation: OpEmailFind,
		ID: "d714c007-4029-4155-a5cc-f328b33d9db3", Result: &Result{Email: "tim.cook@apple.com"},
		Credits: &Credits{Used: &used}, Upstream: &Upstream{Status: 200, Attempts: 1, DurationMS: 312},
		RequestID: "a684d30c2571e3d9"}
	b.Run("AppendJSON", func(b *testing.B) {
		buf := make([]byte, 0, 512)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = env.AppendJSON(buf[:0])
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			_ = json.NewEncoder(&buf).Encode(env)
		}
	})
}
