package normalize

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testNow is the fixed time of every golden case.
var testNow = time.Date(2026, 5, 6, 11, 42, 8, 0, time.UTC)

// replyCase is one testdata/<vendor>/<case>.json file: a vendor answer to normalize.
type replyCase struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Query  string      `json:"query"`
	Status int         `json:"status"`
	Header http.Header `json:"header"`
	// Body is a JSON body, kept as the exact bytes of the file; BodyText a body that is not
	// JSON. At most one is set; neither means an empty body.
	Body     json.RawMessage `json:"body"`
	BodyText *string         `json:"body_text"`
}

// loadCase reads a case file into the Reply it describes.
func loadCase(t testing.TB, file, vendor string) Reply {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var c replyCase
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if c.Body != nil && c.BodyText != nil {
		t.Fatalf("%s: both body and body_text", file)
	}
	if _, err := url.ParseQuery(c.Query); err != nil {
		t.Fatalf("%s: query: %v", file, err)
	}
	h := http.Header{}
	for k, vs := range c.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	r := Reply{Vendor: vendor, Method: c.Method, Path: c.Path, RawQuery: c.Query, StatusCode: c.Status, Header: h, Now: testNow}
	switch {
	case c.Body != nil:
		r.Body = c.Body
	case c.BodyText != nil:
		r.Body = []byte(*c.BodyText)
	}
	return r
}

// render is the golden form of an envelope: its JSON (json.MarshalIndent's layout), then Data verbatim ("nil" when nil,
// which a body that is JSON null cannot be confused with).
func render(t *testing.T, env Envelope) []byte {
	t.Helper()
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // HTML pages in messages stay readable
	if err := enc.Encode(env); err != nil {
		t.Fatal(err)
	}
	data := "nil"
	if env.Data != nil {
		data = string(env.Data)
	}
	out.WriteString("data: " + data + "\n")
	return out.Bytes()
}

func TestGolden(t *testing.T) {
	for _, vendor := range []string{Enrow, ECore} {
		files, err := filepath.Glob(filepath.Join("testdata", vendor, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no cases for %s", vendor)
		}
		for _, file := range files {
			name := vendor + "/" + strings.TrimSuffix(filepath.Base(file), ".json")
			t.Run(name, func(t *testing.T) {
				r := loadCase(t, file, vendor)
				env := Normalize(r)
				checkEnvelope(t, r, env)
				got := render(t, env)
				golden := strings.TrimSuffix(file, ".json") + ".golden"
				if *update {
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("envelope differs from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
				}
			})
		}
	}
}

// checkEnvelope asserts what holds for every envelope, whatever the answer: the invariants
// the fuzz targets check too, and that Data is the very slice that came in.
func checkEnvelope(t testing.TB, r Reply, env Envelope) {
	t.Helper()
	for _, p := range envelopeProblems(r, env) {
		t.Error(p)
	}
	if env.Data != nil && len(r.Body) > 0 && &env.Data[0] != &r.Body[0] {
		t.Error("Data is a copy of the body, want the same slice")
	}
}

// TestNormalizeVendorAndOperation checks the fields Normalize sets for every vendor.
func TestNormalizeVendorAndOperation(t *testing.T) {
	tests := []struct {
		name   string
		reply  Reply
		want   Operation
		status Status
	}{
		{"enrow find", Reply{Vendor: Enrow, Method: "GET", Path: "/email/find/single", StatusCode: 202, Body: []byte(`{"qualification":"ongoing"}`)}, OpEmailFind, StatusPending},
		{"ecore search", Reply{Vendor: ECore, Method: "GET", Path: "/external/search/", StatusCode: 200, Body: []byte(`{"success":true,"count":0,"results":[]}`)}, OpSearch, StatusOK},
		{"unknown vendor ok", Reply{Vendor: "acme", Method: "GET", Path: "/x", StatusCode: 200, Body: []byte(`[1]`)}, OpOther, StatusOK},
		{"unknown vendor 400", Reply{Vendor: "acme", Method: "POST", Path: "/x", StatusCode: 400, Body: []byte(`{"name":["required"]}`)}, OpOther, StatusInvalidRequest},
		{"unknown vendor html 500", Reply{Vendor: "acme", Method: "GET", Path: "/x", StatusCode: 500, Body: []byte(`<html>`)}, OpOther, StatusUpstreamError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := Normalize(tc.reply)
			if env.Vendor != tc.reply.Vendor || env.Operation != tc.want || env.Status != tc.status {
				t.Errorf("got vendor %q operation %q status %q, want %q %q %q",
					env.Vendor, env.Operation, env.Status, tc.reply.Vendor, tc.want, tc.status)
			}
			checkEnvelope(t, tc.reply, env)
		})
	}
}
