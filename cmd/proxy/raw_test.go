package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
	"github.com/enrichproxy/enrichproxy/internal/vendorsim"
)

// Drop-in mode (SPEC 10, 11): /raw/{vendor}/* answers with the vendor's own status and body,
// byte for byte, plus X-Enrich-* headers, and answers it makes itself in the vendor's own
// error shape, so that an application using a vendor SDK changes one line, its base URL.

// rawStart starts the program for a drop-in test. The Enrow credits refresh is off so that
// the only vendor calls are the test's own (it would otherwise take a scripted answer).
func rawStart(t *testing.T, opts ...func(*setup)) *harness {
	t.Helper()
	return start(t, append([]func(*setup){withEnv("ENROW_CREDITS_REFRESH", "0")}, opts...)...)
}

// ---------------------------------------------------------------------------------------
// sdkClient: a client written the way the vendors' official SDKs call the API
// (vendors/enrow.md §8; EnrowAPI/enrow-go enrow.go): base URL + documented path, the
// credential header, JSON bodies with Content-Type on POST, ?id= polling, no retries of its
// own, and errors typed by status with the text read from the body.

type sdkClient struct {
	t          *testing.T
	http       *http.Client
	baseURL    string
	credHeader string   // x-api-key (Enrow), Authorization (eCore)
	cred       string   // sent as is; "" sends no credential
	extra      []string // more request headers, name/value pairs (Prefer, X-Proxy-Token, ...)
	// pollInterval is the SDK's wait between result GETs (enrow-go: PollOptions.PollInterval).
	pollInterval time.Duration
}

// sdkResponse is what came back, error or not.
type sdkResponse struct {
	code   int
	header http.Header
	body   []byte
}

// sdkError is enrow-go's EnrowError: the status, and the body's "error" and "message"
// (here also "reason", Enrow's 402 on singles, and "detail", eCore's 401/404).
type sdkError struct {
	Status  int
	Err     string
	Message string
}

func (e *sdkError) Error() string {
	return fmt.Sprintf("sdk: %d %s — %s", e.Status, e.Err, e.Message)
}

// text is what an application would show: the message, else the error.
func (e *sdkError) text() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Err
}

type sdkAuthError struct{ sdkError }                // 401
type sdkInsufficientBalanceError struct{ sdkError } // 402 (Python, JS) or 422 (Go, PHP)
type sdkRateLimitError struct {                     // 429
	sdkError
	RetryAfter string // Retry-After, else X-RateLimit-Reset (Python, JS)
}

func newSDK(h *harness, base, credHeader, cred string, extra ...string) *sdkClient {
	return &sdkClient{t: h.t, http: h.client, baseURL: base, credHeader: credHeader, cred: cred,
		extra: extra, pollInterval: 2 * time.Millisecond}
}

// enrowSDK points an Enrow SDK at the proxy's drop-in route: the one line an application
// changes.
func enrowSDK(h *harness, key string, extra ...string) *sdkClient {
	return newSDK(h, h.proxyURL+"/raw/enrow", "x-api-key", key, extra...)
}

// ecoreSDK is a hand-written eCore client (eCore publishes no SDK) pointed at the proxy.
func ecoreSDK(h *harness, token string, extra ...string) *sdkClient {
	return newSDK(h, h.proxyURL+"/raw/ecore", "Authorization", "Token "+token, extra...)
}

// do sends one request. body is nil, a string sent as is, or a value sent as JSON.
func (c *sdkClient) do(method, path string, query url.Values, body any) (sdkResponse, error) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	u := c.baseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.cred != "" {
		req.Header.Set(c.credHeader, c.cred)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(c.extra); i += 2 {
		req.Header.Add(c.extra[i], c.extra[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	r := sdkResponse{code: resp.StatusCode, header: resp.Header, body: data}
	if resp.StatusCode >= 400 {
		return r, sdkParseError(resp.StatusCode, resp.Header, data)
	}
	return r, nil
}

func (c *sdkClient) post(path string, body any) (sdkResponse, error) {
	c.t.Helper()
	return c.do(http.MethodPost, path, nil, body)
}

func (c *sdkClient) get(path, id string) (sdkResponse, error) {
	c.t.Helper()
	var q url.Values
	if id != "" {
		q = url.Values{"id": {id}}
	}
	return c.do(http.MethodGet, path, q, nil)
}

// waitResult polls GET path?id= like the SDKs' wait_for_result: until the answer is a 200
// whose qualification is no longer "ongoing". It returns every answer seen, the last one
// final. (The SDKs give up after 30 s and return the last answer; here that is a failure.)
func (c *sdkClient) waitResult(path, id string) ([]sdkResponse, error) {
	c.t.Helper()
	giveUp := time.Now().Add(10 * time.Second)
	var seen []sdkResponse
	for {
		r, err := c.get(path, id)
		seen = append(seen, r)
		if err != nil {
			return seen, err
		}
		var v struct {
			Qualification string `json:"qualification"`
		}
		_ = json.Unmarshal(r.body, &v)
		if r.code == http.StatusOK && v.Qualification != "ongoing" {
			return seen, nil
		}
		if time.Now().After(giveUp) {
			c.t.Fatalf("GET %s?id=%s: still %d %s after 10 s", path, id, r.code, r.body)
		}
		time.Sleep(c.pollInterval) // the SDK's poll interval, as enrow-go's poll() does
	}
}

// sdkParseError is enrow-go's parseError: the body's "error" and "message" (the raw body
// when it is not JSON), typed by status: 401, 402 or 422 (the SDKs disagree), 429.
func sdkParseError(status int, h http.Header, body []byte) error {
	var b struct {
		Error   string `json:"error"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
		Detail  string `json:"detail"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		b.Message = string(body)
	}
	e := sdkError{Status: status, Err: b.Error, Message: b.Message}
	if e.Message == "" {
		e.Message = b.Reason
	}
	if e.Message == "" {
		e.Message = b.Detail
	}
	switch status {
	case http.StatusUnauthorized:
		return &sdkAuthError{e}
	case http.StatusPaymentRequired, http.StatusUnprocessableEntity:
		return &sdkInsufficientBalanceError{e}
	case http.StatusTooManyRequests:
		ra := h.Get("Retry-After")
		if ra == "" {
			ra = h.Get("X-RateLimit-Reset")
		}
		return &sdkRateLimitError{sdkError: e, RetryAfter: ra}
	}
	return &e
}

// ---------------------------------------------------------------------------------------
// Helpers.

// rawSimCall calls the Enrow simulator directly, bypassing the proxy, to see what it says.
func rawSimCall(t *testing.T, h *harness, method, pathQuery, key string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.enrowAddr+pathQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-api-key", key)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// rawWantEnrich checks the X-Enrich-* headers of a drop-in answer; qual "" means the header
// must be absent.
func rawWantEnrich(t *testing.T, hdr http.Header, vendor string, status normalize.Status, op normalize.Operation, qual normalize.Qualification) {
	t.Helper()
	if got := hdr.Get("X-Enrich-Vendor"); got != vendor {
		t.Errorf("got X-Enrich-Vendor %q, want %q", got, vendor)
	}
	if got := hdr.Get("X-Enrich-Status"); got != string(status) {
		t.Errorf("got X-Enrich-Status %q, want %q", got, status)
	}
	if got := hdr.Get("X-Enrich-Operation"); got != string(op) {
		t.Errorf("got X-Enrich-Operation %q, want %q", got, op)
	}
	got, present := hdr["X-Enrich-Qualification"]
	switch {
	case qual == "" && present:
		t.Errorf("got X-Enrich-Qualification %q, want none", got)
	case qual != "" && hdr.Get("X-Enrich-Qualification") != string(qual):
		t.Errorf("got X-Enrich-Qualification %q, want %q", hdr.Get("X-Enrich-Qualification"), qual)
	}
	if hdr.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
}

// rawOneKeyBody checks that body is a JSON object with exactly one key, key, holding a
// non-empty string, and returns it.
func rawOneKeyBody(t *testing.T, body []byte, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, body)
	}
	s, ok := m[key].(string)
	if len(m) != 1 || !ok || s == "" {
		t.Fatalf("got body %s, want {%q: \"…\"} and nothing else", body, key)
	}
	return s
}

// rawRetryAfter reads a Retry-After in whole seconds; -1 when absent or not a number.
func rawRetryAfter(h http.Header) int {
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil {
		return -1
	}
	return n
}

// rawToMidnightUTC is the wait eCore's daily cap asks for.
func rawToMidnightUTC() int {
	now := time.Now().UTC()
	return int(time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC).Sub(now).Seconds())
}

// rawScrapeMetrics scrapes the request-level series (SPEC 9). The proxy records them before
// its handler returns, and a short answer (well under net/http's 2 KiB response buffer)
// reaches the client only once the handler has returned, so they are in place by the time
// the client has the answer.
func rawScrapeMetrics(t *testing.T, h *harness) []string {
	t.Helper()
	body := h.metricsText(t)
	var out []string
	for line := range strings.SplitSeq(body, "\n") {
		for _, name := range []string{"enrichproxy_requests_total{", "enrichproxy_request_duration_seconds_count{",
			"enrichproxy_upstream_attempts_total{", "enrichproxy_retries_total{"} {
			if strings.HasPrefix(line, name) {
				out = append(out, line)
			}
		}
	}
	slices.Sort(out)
	return out
}

// rawAccessLines stops the program (so that every line it wrote is in) and returns its
// access log lines.
func rawAccessLines(t *testing.T, h *harness) []map[string]any {
	t.Helper()
	h.shutdown()
	var out []map[string]any
	for line := range strings.SplitSeq(h.logs.String(), "\n") {
		if !strings.Contains(line, `"logger":"access"`) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("access line is not JSON: %v: %s", err, line)
		}
		out = append(out, m)
	}
	return out
}

const rawClientKey = "client-own-enrow-key-42"

// ---------------------------------------------------------------------------------------
// Tests.

// TestRawSDKFlow: an SDK pointed at /raw/enrow runs find → poll → result for each single
// operation and gets the simulator's own statuses and bodies; with no key configured its
// own key reaches the vendor, with one configured the proxy's replaces whatever it holds.
func TestRawSDKFlow(t *testing.T) {
	flows := []struct {
		path       string
		body       map[string]any
		startCode  int
		op         normalize.Operation
		qual       normalize.Qualification
		wantResult string // a field of the final body
	}{
		{"/email/find/single", map[string]any{"fullname": "Tim Cook", "company_domain": "apple.com"}, 200,
			normalize.OpEmailFind, normalize.QualFound, `"email":"tim.cook@apple.com"`},
		{"/email/verify/single", map[string]any{"email": "bounce@apple.com"}, 200,
			normalize.OpEmailVerify, normalize.QualInvalid, `"qualification":"invalid"`},
		{"/phone/single", map[string]any{"linkedin_url": "https://www.linkedin.com/in/timcook"}, 201,
			normalize.OpPhoneFind, normalize.QualFound, `"qualification":"found"`},
	}
	for _, tc := range []struct {
		name      string
		opts      []func(*setup)
		sdkKey    string
		vendorKey string
	}{
		{name: "the client's own key passes through",
			opts:   []func(*setup){withEnv("ENROW_API_KEY", ""), withEnrow(func(o *vendorsim.Options) { o.Keys = []string{rawClientKey} })},
			sdkKey: rawClientKey, vendorKey: rawClientKey},
		{name: "the proxy's key replaces the SDK's, whatever it is",
			sdkKey: "anything-at-all", vendorKey: enrowKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := rawStart(t, append(tc.opts, withEnrow(func(o *vendorsim.Options) { o.PendingPolls = 2 }))...)
			sdk := enrowSDK(h, tc.sdkKey)
			for _, f := range flows {
				start, err := sdk.post(f.path, f.body)
				if err != nil {
					t.Fatalf("POST %s: %v", f.path, err)
				}
				if start.code != f.startCode {
					t.Errorf("POST %s: got %d, want the vendor's %d", f.path, start.code, f.startCode)
				}
				var started struct {
					ID      string `json:"id"`
					Message string `json:"message"`
				}
				if err := json.Unmarshal(start.body, &started); err != nil || started.ID == "" || !strings.HasSuffix(started.Message, "operating") {
					t.Fatalf("POST %s: got %s, want the vendor's {message, id, credits_used}", f.path, start.body)
				}
				if bytes.Contains(start.body, []byte(`"status"`)) || bytes.Contains(start.body, []byte(`request_id`)) {
					t.Errorf("POST %s: got %s, want the vendor's body, not an envelope", f.path, start.body)
				}
				rawWantEnrich(t, start.header, "enrow", normalize.StatusPending, f.op, normalize.QualPending)
				if got := start.header.Get("X-Upstream-Status"); got != strconv.Itoa(f.startCode) {
					t.Errorf("POST %s: got X-Upstream-Status %q, want %d", f.path, got, f.startCode)
				}

				seen, err := sdk.waitResult(f.path, started.ID)
				if err != nil {
					t.Fatalf("GET %s: %v", f.path, err)
				}
				if len(seen) != 3 {
					t.Errorf("GET %s: got %d polls, want 3 (two ongoing, then the result)", f.path, len(seen))
				}
				for _, r := range seen[:len(seen)-1] {
					if r.code != 202 || string(r.body) != `{"qualification":"ongoing"}`+"\n" {
						t.Errorf("GET %s while ongoing: got %d %q, want the vendor's 202 body", f.path, r.code, r.body)
					}
					rawWantEnrich(t, r.header, "enrow", normalize.StatusPending, f.op, normalize.QualPending)
				}
				final := seen[len(seen)-1]
				rawWantEnrich(t, final.header, "enrow", normalize.StatusOK, f.op, f.qual)
				// The simulator says the same, byte for byte, when asked directly.
				code, direct := rawSimCall(t, h, "GET", f.path+"?id="+url.QueryEscape(started.ID), tc.vendorKey)
				if final.code != code || !bytes.Equal(final.body, direct) {
					t.Errorf("GET %s: got %d %q through the proxy, the vendor says %d %q", f.path, final.code, final.body, code, direct)
				}
				if !bytes.Contains(final.body, []byte(f.wantResult)) {
					t.Errorf("GET %s: got %s, want %s in it", f.path, final.body, f.wantResult)
				}
				if ct := final.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("GET %s: got Content-Type %q, want the vendor's application/json", f.path, ct)
				}
			}
			for _, c := range h.enrow.Calls() {
				if got := c.Header.Get("X-Api-Key"); got != tc.vendorKey {
					t.Errorf("%s %s reached the vendor with x-api-key %q, want %q", c.Method, c.Path, got, tc.vendorKey)
				}
			}
		})
	}
	t.Run("a wrong own key gets the vendor's 401 as the SDK's AuthenticationError", func(t *testing.T) {
		h := rawStart(t, withEnv("ENROW_API_KEY", ""), withEnrow(func(o *vendorsim.Options) { o.Keys = []string{rawClientKey} }))
		for key, want := range map[string]string{"not-this-one": "This apikey is not valid", "": "No apikey found in the x-api-key headers"} {
			r, err := enrowSDK(h, key).post("/email/find/single", map[string]any{"fullname": "Tim Cook", "company_domain": "apple.com"})
			var auth *sdkAuthError
			if !errors.As(err, &auth) || auth.Status != 401 || auth.Message != want {
				t.Errorf("key %q: got %v, want an AuthenticationError %q", key, err, want)
			}
			if wantBody := `{"message":"` + want + `"}` + "\n"; string(r.body) != wantBody {
				t.Errorf("key %q: got body %q, want the vendor's %q", key, r.body, wantBody)
			}
			rawWantEnrich(t, r.header, "enrow", normalize.StatusUnauthorized, normalize.OpEmailFind, "")
		}
	})
}

// TestRawScriptedBodiesPassUnchanged: whatever bytes the vendor sends — odd spacing,
// escapes, HTML-sensitive characters, its own content type — reach the SDK unchanged.
func TestRawScriptedBodiesPassUnchanged(t *testing.T) {
	h := rawStart(t)
	answers := []vendorsim.Answer{
		{Status: 200, Body: "{ \"message\" : \"Single search operating\",\n  \"id\":\"s-1\", \"credits_used\": 1.0 }"},
		{Status: 202, Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, Body: `{"qualification":"ongoing"}`},
		{Status: 200, Body: `{"email":"tim.cook@apple.com","qualification":"valid","custom":{"note":"\u00e9 <&> é"},"info":{"fullname":"Tim Cook"}}`},
	}
	h.enrow.Script(answers...)
	sdk := enrowSDK(h, "ignored")
	start, err := sdk.post("/email/find/single", map[string]any{"fullname": "Tim Cook", "company_domain": "apple.com"})
	if err != nil {
		t.Fatal(err)
	}
	seen, err := sdk.waitResult("/email/find/single", "s-1")
	if err != nil {
		t.Fatal(err)
	}
	got := append([]sdkResponse{start}, seen...)
	if len(got) != len(answers) {
		t.Fatalf("got %d answers, want %d", len(got), len(answers))
	}
	wantCT := []string{"application/json", "application/json; charset=utf-8", "application/json"}
	wantStatus := []normalize.Status{normalize.StatusPending, normalize.StatusPending, normalize.StatusOK}
	wantQual := []normalize.Qualification{normalize.QualPending, normalize.QualPending, normalize.QualFound}
	for i, a := range answers {
		if got[i].code != a.Status || string(got[i].body) != a.Body {
			t.Errorf("answer %d: got %d %q, want the vendor's %d %q", i, got[i].code, got[i].body, a.Status, a.Body)
		}
		if ct := got[i].header.Get("Content-Type"); ct != wantCT[i] {
			t.Errorf("answer %d: got Content-Type %q, want %q", i, ct, wantCT[i])
		}
		if cl := got[i].header.Get("Content-Length"); cl != strconv.Itoa(len(a.Body)) {
			t.Errorf("answer %d: got Content-Length %q, want %d", i, cl, len(a.Body))
		}
		rawWantEnrich(t, got[i].header, "enrow", wantStatus[i], normalize.OpEmailFind, wantQual[i])
	}
}

// TestRawRetriesAreInvisible: a 503, 503, 200 from the vendor reaches the SDK as one 200,
// the vendor's 200 body.
func TestRawRetriesAreInvisible(t *testing.T) {
	h := rawStart(t)
	final := `{"email":"tim.cook@apple.com","qualification":"valid","info":{"fullname":"Tim Cook"}}`
	h.enrow.Script(vendorsim.Answer{Status: 503, Body: `{"message":"Service Unavailable"}`},
		vendorsim.Answer{Status: 503, Body: `{"message":"Service Unavailable"}`},
		vendorsim.Answer{Status: 200, Body: final})
	seen, err := enrowSDK(h, "ignored").waitResult("/email/find/single", "r-1")
	if err != nil {
		t.Fatalf("got %v, want no error: the proxy retries the 503s", err)
	}
	if len(seen) != 1 || seen[0].code != 200 || string(seen[0].body) != final {
		t.Fatalf("got %d answers, last %d %q; want one 200 %q", len(seen), seen[0].code, seen[0].body, final)
	}
	if got := seen[0].header.Get("X-Upstream-Status"); got != "200" {
		t.Errorf("got X-Upstream-Status %q, want 200", got)
	}
	rawWantEnrich(t, seen[0].header, "enrow", normalize.StatusOK, normalize.OpEmailFind, normalize.QualFound)
	if n := h.enrow.CallCount(); n != 3 {
		t.Errorf("got %d vendor calls, want 3", n)
	}
}

// TestRawBreakerOpen: with the breaker open the SDK gets 503 {"message": …} with
// Retry-After, and the vendor is not called.
func TestRawBreakerOpen(t *testing.T) {
	h := rawStart(t, withEnv("ENROW_BREAKER_CONSECUTIVE_FAILURES", "1", "ENROW_MAX_ATTEMPTS", "1"))
	h.enrow.Script(vendorsim.Answer{Status: 503, Body: `{"message":"down"}`})
	sdk := enrowSDK(h, "ignored")
	r, err := sdk.do("GET", "/account/info", nil, nil)
	if err == nil || r.code != 503 || string(r.body) != `{"message":"down"}` {
		t.Fatalf("tripping call: got %d %q, want the vendor's own 503", r.code, r.body)
	}
	rawWantEnrich(t, r.header, "enrow", normalize.StatusUpstreamError, normalize.OpAccount, "")

	r, err = sdk.do("GET", "/account/info", nil, nil)
	var apiErr *sdkError
	if !errors.As(err, &apiErr) || apiErr.Status != 503 || !strings.Contains(apiErr.Message, "circuit breaker") {
		t.Fatalf("got %v, want an EnrowError 503 whose message names the breaker", err)
	}
	rawOneKeyBody(t, r.body, "message")
	if ra := rawRetryAfter(r.header); ra < 25 || ra > 30 {
		t.Errorf("got Retry-After %q, want about 30 (the breaker's open time)", r.header.Get("Retry-After"))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("got Content-Type %q, want application/json", ct)
	}
	if got := r.header.Get("X-Upstream-Status"); got != "" {
		t.Errorf("got X-Upstream-Status %q, want none: the vendor was not called", got)
	}
	rawWantEnrich(t, r.header, "enrow", normalize.StatusUnavailable, normalize.OpAccount, "")
	if n := h.enrow.CallCount(); n != 1 {
		t.Errorf("got %d vendor calls, want 1 (the tripping call only)", n)
	}
}

// TestRawRateLimits: the proxy's own limiter, and the cool-down after a vendor 429, answer
// with Enrow's own 429 body and a Retry-After, which the SDK reads as a RateLimitError;
// a vendor's own Retry-After passes through unchanged.
func TestRawRateLimits(t *testing.T) {
	body := map[string]any{"fullname": "Tim Cook", "company_domain": "apple.com"}
	t.Run("the local limiter", func(t *testing.T) {
		h := rawStart(t, withEnv("ENROW_RATE_LIMIT_PER_SECOND", "1", "ENROW_MAX_QUEUE_WAIT", "1ms"))
		sdk := enrowSDK(h, "ignored")
		if _, err := sdk.post("/email/find/single", body); err != nil {
			t.Fatalf("first POST: %v", err)
		}
		r, err := sdk.post("/email/find/single", body)
		var rl *sdkRateLimitError
		if !errors.As(err, &rl) || rl.Message != "Too Many Requests" || rl.RetryAfter == "" {
			t.Fatalf("second POST: got %v, want a RateLimitError \"Too Many Requests\" with a retry-after", err)
		}
		if string(r.body) != `{"message":"Too Many Requests"}` {
			t.Errorf("got body %q, want Enrow's own 429 body", r.body)
		}
		if ra := rawRetryAfter(r.header); ra < 1 || ra > 2 {
			t.Errorf("got Retry-After %q, want 1 (the next token)", r.header.Get("Retry-After"))
		}
		rawWantEnrich(t, r.header, "enrow", normalize.StatusRateLimited, normalize.OpEmailFind, "")
		if n := h.enrow.CallCount(); n != 1 {
			t.Errorf("got %d vendor calls, want 1", n)
		}
	})
	t.Run("a vendor 429 passes with its own Retry-After, then the cool-down answers", func(t *testing.T) {
		for _, ra := range []string{"120", "Fri, 31 Dec 2099 23:59:59 GMT"} {
			h := rawStart(t)
			vendorBody := `{"message": "Too Many Requests"}`
			h.enrow.Script(vendorsim.Answer{Status: 429, Header: http.Header{"Retry-After": {ra}}, Body: vendorBody})
			sdk := enrowSDK(h, "ignored")
			r, err := sdk.post("/email/find/single", body)
			var rl *sdkRateLimitError
			if !errors.As(err, &rl) || rl.RetryAfter != ra {
				t.Errorf("Retry-After %q: got %v, want a RateLimitError with the vendor's Retry-After", ra, err)
			}
			if string(r.body) != vendorBody || r.header.Get("X-Upstream-Status") != "429" {
				t.Errorf("Retry-After %q: got %q (X-Upstream-Status %q), want the vendor's own 429", ra, r.body, r.header.Get("X-Upstream-Status"))
			}
			rawWantEnrich(t, r.header, "enrow", normalize.StatusRateLimited, normalize.OpEmailFind, "")

			// The next POST waits out the cool-down or, as here, is told to at once.
			r, err = sdk.post("/email/find/single", body)
			if !errors.As(err, &rl) || string(r.body) != `{"message":"Too Many Requests"}` || rawRetryAfter(r.header) < 100 {
				t.Errorf("Retry-After %q, during the cool-down: got %v %q Retry-After %q, want Enrow's 429 with the rest of the cool-down",
					ra, err, r.body, r.header.Get("Retry-After"))
			}
			if n := h.enrow.CallCount(); n != 1 {
				t.Errorf("Retry-After %q: got %d vendor calls, want 1", ra, n)
			}
		}
	})
	t.Run("a vendor 429 without Retry-After gets the proxy's", func(t *testing.T) {
		h := rawStart(t, withEnv("ENROW_MAX_RETRY_WAIT", "1ms"))
		h.enrow.Script(vendorsim.Answer{Status: 429, Body: `{"message":"Too Many Requests"}`})
		r, err := enrowSDK(h, "ignored").post("/email/find/single", body)
		var rl *sdkRateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter != "1" {
			t.Errorf("got %v (Retry-After %q), want a RateLimitError with Retry-After 1", err, r.header.Get("Retry-After"))
		}
	})
}

// TestRawProxyMadeErrors: answers the proxy makes itself use the vendor's error shape and
// status — Enrow {"message"}; eCore {"detail"} on 401/404, {"error"} otherwise — so the
// SDK's error handling keeps working.
func TestRawProxyMadeErrors(t *testing.T) {
	hang := func(vendor string) func(*testing.T, *harness) {
		return func(_ *testing.T, h *harness) {
			if vendor == "ecore" {
				h.ecore.Script(vendorsim.Answer{Hang: true})
			} else {
				h.enrow.Script(vendorsim.Answer{Hang: true})
			}
		}
	}
	long := `{"fullname":"` + strings.Repeat("x", 100) + `","company_domain":"apple.com"}`
	cases := []struct {
		name       string
		vendor     string
		opts       []func(*setup)
		prepare    func(*testing.T, *harness)
		method     string
		path       string // below /raw/{vendor}
		body       string
		headers    []string
		wantCode   int
		wantKey    string
		wantStatus normalize.Status
		wantCalls  int
		wantRetry  int // minimum Retry-After; 0: not checked
	}{
		{name: "enrow proxy token missing", vendor: "enrow", opts: []func(*setup){withEnv("PROXY_AUTH_TOKENS", "pt-1")},
			method: "GET", path: "/account/info", wantCode: 401, wantKey: "message", wantStatus: "unauthorized"},
		{name: "ecore proxy token missing", vendor: "ecore", opts: []func(*setup){withEnv("PROXY_AUTH_TOKENS", "pt-1")},
			method: "GET", path: "/external/search/", wantCode: 401, wantKey: "detail", wantStatus: "unauthorized"},
		{name: "enrow body too large", vendor: "enrow", opts: []func(*setup){withEnv("PROXY_MAX_BODY_BYTES", "64")},
			method: "POST", path: "/email/find/single", body: long, wantCode: 413, wantKey: "message", wantStatus: "payload_too_large"},
		{name: "ecore body too large", vendor: "ecore", opts: []func(*setup){withEnv("PROXY_MAX_BODY_BYTES", "64")},
			method: "POST", path: "/external/email/enrichment/", body: long, wantCode: 413, wantKey: "error", wantStatus: "payload_too_large"},
		{name: "enrow dot-dot path", vendor: "enrow", method: "GET", path: "/email/../../admin",
			wantCode: 400, wantKey: "message", wantStatus: "invalid_request"},
		{name: "enrow encoded slash", vendor: "enrow", method: "GET", path: "/email%2F..%2Fadmin",
			wantCode: 400, wantKey: "message", wantStatus: "invalid_request"},
		{name: "ecore dot-dot path", vendor: "ecore", method: "GET", path: "/external/../../admin/",
			wantCode: 400, wantKey: "error", wantStatus: "invalid_request"},
		{name: "enrow deadline", vendor: "enrow", prepare: hang("enrow"), method: "GET", path: "/account/info",
			headers: []string{"X-Request-Timeout", "0.2"}, wantCode: 504, wantKey: "message", wantStatus: "timeout", wantCalls: 1},
		{name: "ecore deadline", vendor: "ecore", prepare: hang("ecore"), method: "GET", path: "/external/search/",
			headers: []string{"X-Request-Timeout", "0.2"}, wantCode: 504, wantKey: "error", wantStatus: "timeout", wantCalls: 1},
		{name: "ecore breaker open", vendor: "ecore",
			opts: []func(*setup){withEnv("ECORE_BREAKER_CONSECUTIVE_FAILURES", "1", "ECORE_MAX_ATTEMPTS", "1")},
			prepare: func(t *testing.T, h *harness) {
				h.ecore.Script(vendorsim.Answer{Status: 503, Body: `{"error":"down"}`})
				if a := h.do("GET", "/raw/ecore/external/search/", ""); a.code != 503 || string(a.raw) != `{"error":"down"}` {
					t.Fatalf("tripping call: got %d %q, want the vendor's 503", a.code, a.raw)
				}
			},
			method: "GET", path: "/external/search/", wantCode: 503, wantKey: "error", wantStatus: "unavailable", wantRetry: 25},
		{name: "ecore daily quota remembered", vendor: "ecore", opts: []func(*setup){withECore(func(o *vendorsim.Options) { o.DailyQuota = 1 })},
			prepare: func(t *testing.T, h *harness) {
				if a := h.do("GET", "/raw/ecore/external/search/", ""); a.code != 200 {
					t.Fatalf("first call: got %d %s", a.code, a.raw)
				}
				// The vendor's own daily-cap 429 passes unchanged, with the wait to midnight.
				a := h.do("GET", "/raw/ecore/external/search/", "")
				var daily struct {
					Error struct {
						Message string `json:"message"`
					} `json:"error"`
				}
				if a.code != 429 || json.Unmarshal(a.raw, &daily) != nil || daily.Error.Message == "" {
					t.Fatalf("capped call: got %d %s, want the vendor's daily-cap 429", a.code, a.raw)
				}
				if d := rawRetryAfter(a.header) - rawToMidnightUTC(); d < -5 || d > 5 {
					t.Errorf("capped call: got Retry-After %q, want about %d (to midnight UTC)", a.header.Get("Retry-After"), rawToMidnightUTC())
				}
				rawWantEnrich(t, a.header, "ecore", normalize.StatusQuotaExceeded, normalize.OpSearch, "")
			},
			method: "GET", path: "/external/search/", wantCode: 429, wantKey: "error", wantStatus: "quota_exceeded",
			wantRetry: rawToMidnightUTC() - 5},
		{name: "enrow vendor unreachable", vendor: "enrow",
			opts:   []func(*setup){withEnv("ENROW_BASE_URL", "http://127.0.0.1:1", "ENROW_MAX_ATTEMPTS", "1")},
			method: "GET", path: "/account/info", wantCode: 502, wantKey: "message", wantStatus: "upstream_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := rawStart(t, tc.opts...)
			if tc.prepare != nil {
				tc.prepare(t, h)
			}
			sdk := enrowSDK(h, "ignored", tc.headers...)
			if tc.vendor == "ecore" {
				sdk = ecoreSDK(h, "ignored", tc.headers...)
			}
			before := h.enrow.CallCount() + h.ecore.CallCount()
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r, err := sdk.do(tc.method, tc.path, nil, body)
			if r.code != tc.wantCode {
				t.Fatalf("got %d %s, want %d", r.code, r.body, tc.wantCode)
			}
			text := rawOneKeyBody(t, r.body, tc.wantKey)
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("got Content-Type %q, want application/json", ct)
			}
			if got := r.header.Get("X-Enrich-Status"); got != string(tc.wantStatus) {
				t.Errorf("got X-Enrich-Status %q, want %q", got, tc.wantStatus)
			}
			if got := r.header.Get("X-Enrich-Vendor"); got != tc.vendor {
				t.Errorf("got X-Enrich-Vendor %q, want %q", got, tc.vendor)
			}
			if _, ok := r.header["X-Enrich-Qualification"]; ok {
				t.Errorf("got X-Enrich-Qualification %q on an error, want none", r.header.Get("X-Enrich-Qualification"))
			}
			if ra := rawRetryAfter(r.header); tc.wantRetry > 0 && ra < tc.wantRetry {
				t.Errorf("got Retry-After %q, want at least %d", r.header.Get("Retry-After"), tc.wantRetry)
			}
			if got := h.enrow.CallCount() + h.ecore.CallCount() - before; got != tc.wantCalls {
				t.Errorf("got %d vendor calls, want %d", got, tc.wantCalls)
			}
			// The SDK's own error handling: typed by status, with the proxy's text.
			var se *sdkError
			switch {
			case !errors.As(err, &se) && tc.wantCode != 401 && tc.wantCode != 429:
				t.Errorf("got %T %v, want an EnrowError", err, err)
			case tc.wantCode == 401 && !errors.As(err, new(*sdkAuthError)):
				t.Errorf("got %T %v, want an AuthenticationError", err, err)
			case tc.wantCode == 429 && !errors.As(err, new(*sdkRateLimitError)):
				t.Errorf("got %T %v, want a RateLimitError", err, err)
			}
			var read interface{ text() string }
			if !errors.As(err, &read) || read.text() != text {
				t.Errorf("the SDK read %v, want %q", err, text)
			}
		})
	}
}

// TestRawVendorErrorsKeepTheirBodies: eCore's 404 and 401 and Enrow's unknown-id 500 are the
// vendor's own answers, passed unchanged.
func TestRawVendorErrorsKeepTheirBodies(t *testing.T) {
	t.Run("ecore 404", func(t *testing.T) {
		h := rawStart(t)
		r, err := ecoreSDK(h, "ignored").do("GET", "/email-validation/jobs/999/", nil, nil)
		if r.code != 404 || string(r.body) != `{"detail":"Not found."}`+"\n" {
			t.Errorf("got %d %q, want the vendor's 404", r.code, r.body)
		}
		var se *sdkError
		if !errors.As(err, &se) || se.text() != "Not found." {
			t.Errorf("got %v, want the vendor's detail", err)
		}
		rawWantEnrich(t, r.header, "ecore", normalize.StatusNotFound, normalize.OpEmailVerifyBulk, "")
	})
	t.Run("ecore 401", func(t *testing.T) {
		h := rawStart(t, withEnv("ECORE_API_TOKEN", ""))
		r, err := ecoreSDK(h, "wrong-token").do("GET", "/external/search/", nil, nil)
		if r.code != 401 || string(r.body) != `{"detail":"Invalid token."}`+"\n" || r.header.Get("WWW-Authenticate") != "Token" {
			t.Errorf("got %d %q (WWW-Authenticate %q), want the vendor's 401", r.code, r.body, r.header.Get("WWW-Authenticate"))
		}
		if !errors.As(err, new(*sdkAuthError)) {
			t.Errorf("got %T, want an AuthenticationError", err)
		}
		rawWantEnrich(t, r.header, "ecore", normalize.StatusUnauthorized, normalize.OpSearch, "")
		if got := lastCall(t, h.ecore.Calls()).Header.Get("Authorization"); got != "Token wrong-token" {
			t.Errorf("the vendor got Authorization %q, want the client's own", got)
		}
	})
	t.Run("enrow unknown id 500", func(t *testing.T) {
		h := rawStart(t)
		r, err := enrowSDK(h, "ignored").get("/email/verify/single", "00000000-0000-0000-0000-000000000000")
		if r.code != 500 || string(r.body) != `{"message":"Could not retrieve single verification results"}`+"\n" {
			t.Errorf("got %d %q, want the vendor's 500", r.code, r.body)
		}
		if err == nil {
			t.Error("got no error, want the SDK's EnrowError")
		}
		rawWantEnrich(t, r.header, "enrow", normalize.StatusNotFound, normalize.OpEmailVerify, "")
		if n := h.enrow.CallCount(); n != 1 {
			t.Errorf("got %d vendor calls, want 1: not-found is not retried", n)
		}
	})
}

// TestRawPreferWait: Prefer: wait works in drop-in mode; the answer is the vendor's final
// result body.
func TestRawPreferWait(t *testing.T) {
	t.Run("enrow", func(t *testing.T) {
		h := rawStart(t, withEnv("ENROW_POLL_INTERVAL", "1ms"), withEnrow(func(o *vendorsim.Options) { o.PendingPolls = 2 }))
		r, err := enrowSDK(h, "ignored", "Prefer", "wait=5").post("/email/find/single",
			map[string]any{"fullname": "Tim Cook", "company_domain": "apple.com"})
		if err != nil || r.code != 200 {
			t.Fatalf("got %d %s (%v), want 200", r.code, r.body, err)
		}
		if got := r.header.Get("Preference-Applied"); got != "wait=5" {
			t.Errorf("got Preference-Applied %q, want wait=5", got)
		}
		rawWantEnrich(t, r.header, "enrow", normalize.StatusOK, normalize.OpEmailFind, normalize.QualFound)
		call := lastCall(t, h.enrow.Calls())
		if call.Method != "GET" || h.enrow.CallCount() != 4 {
			t.Fatalf("got %d calls ending with %s, want POST then three GETs", h.enrow.CallCount(), call.Method)
		}
		code, direct := rawSimCall(t, h, "GET", call.Path+"?"+call.RawQuery, enrowKey)
		if code != 200 || !bytes.Equal(r.body, direct) {
			t.Errorf("got %q, the vendor's final result is %q", r.body, direct)
		}
	})
	t.Run("ecore", func(t *testing.T) {
		h := rawStart(t, withEnv("ECORE_POLL_INTERVAL", "1ms"), withECore(func(o *vendorsim.Options) { o.PendingPolls = 2 }))
		r, err := ecoreSDK(h, "ignored", "Prefer", "wait=5").post("/email-validation/jobs/upload/",
			map[string]any{"emails": []string{"a@apple.com", "invalid@apple.com"}})
		if err != nil || r.code != 200 {
			t.Fatalf("got %d %s (%v), want 200", r.code, r.body, err)
		}
		var job struct {
			Status     string `json:"status"`
			ValidCount int    `json:"valid_count"`
		}
		if json.Unmarshal(r.body, &job) != nil || job.Status != "Processed" || job.ValidCount != 1 {
			t.Errorf("got %s, want the vendor's processed job", r.body)
		}
		rawWantEnrich(t, r.header, "ecore", normalize.StatusOK, normalize.OpEmailVerifyBulk, "")
	})
}

// TestRawHeaders: X-Enrich-Vendor is always sent, X-Enrich-Qualification only when there is
// one, and the request id is echoed and sent on.
func TestRawHeaders(t *testing.T) {
	h := rawStart(t)
	a := h.do("GET", "/raw/enrow/account/info", "", "X-Request-Id", "raw-req-7")
	if a.code != 200 || a.header.Get("X-Upstream-Status") != "200" {
		t.Fatalf("got %d (X-Upstream-Status %q), want 200", a.code, a.header.Get("X-Upstream-Status"))
	}
	rawWantEnrich(t, a.header, "enrow", normalize.StatusOK, normalize.OpAccount, "")
	if a.header.Get("X-Request-Id") != "raw-req-7" || lastCall(t, h.enrow.Calls()).Header.Get("X-Request-Id") != "raw-req-7" {
		t.Errorf("got X-Request-Id %q, want the client's echoed and sent to the vendor", a.header.Get("X-Request-Id"))
	}
	b := h.do("GET", "/raw/ecore/external/search/", "")
	rawWantEnrich(t, b.header, "ecore", normalize.StatusOK, normalize.OpSearch, "")
	c := h.do("POST", "/raw/ecore/external/phone/enrichment/", `{"linkedin_url":"https://www.linkedin.com/in/nobody"}`)
	rawWantEnrich(t, c.header, "ecore", normalize.StatusOK, normalize.OpPhoneFind, normalize.QualNotFound)
	// /raw/enrow itself is the base URL, as /enrow is (SPEC 11).
	d := h.do("GET", "/raw/enrow", "")
	if got := lastCall(t, h.enrow.Calls()).Path; got != "/" && got != "" {
		t.Errorf("/raw/enrow reached the vendor as %q, want its base URL", got)
	}
	if d.header.Get("X-Enrich-Vendor") != "enrow" {
		t.Errorf("got X-Enrich-Vendor %q on /raw/enrow, want enrow", d.header.Get("X-Enrich-Vendor"))
	}
}

// TestRawModesAgree: one table of vendor answers, requested once through /{vendor}/ and once
// through /raw/{vendor}/. The drop-in headers say what the envelope says; the drop-in answer
// is the vendor's own; metrics and access logs are the same in both modes.
func TestRawModesAgree(t *testing.T) {
	html := http.Header{"Content-Type": {"text/html"}}
	bad502 := vendorsim.Answer{Status: 502, Header: html, Body: "<html><body><h1>502 Bad Gateway</h1></body></html>"}
	cases := []struct {
		name     string
		vendor   string
		method   string
		path     string
		body     string
		script   []vendorsim.Answer
		wantSt   normalize.Status
		wantQual normalize.Qualification
	}{
		{"enrow find started", "enrow", "POST", "/email/find/single", timCook,
			[]vendorsim.Answer{{Status: 200, Body: `{"message":"Single search operating","id":"f-1","credits_used":1}`}}, "pending", "pending"},
		{"enrow single ongoing 202", "enrow", "GET", "/email/find/single?id=f-1", "",
			[]vendorsim.Answer{{Status: 202, Body: `{"qualification":"ongoing"}`}}, "pending", "pending"},
		{"enrow finder valid", "enrow", "GET", "/email/find/single?id=f-1", "",
			[]vendorsim.Answer{{Status: 200, Body: `{"email":"tim.cook@apple.com","qualification":"valid","info":{"fullname":"Tim Cook"}}`}}, "ok", "found"},
		{"enrow finder invalid", "enrow", "GET", "/email/find/single?id=f-1", "",
			[]vendorsim.Answer{{Status: 200, Body: `{"email":null,"qualification":"invalid"}`}}, "ok", "not_found"},
		{"enrow verifier invalid", "enrow", "GET", "/email/verify/single?id=v-1", "",
			[]vendorsim.Answer{{Status: 200, Body: `{"email":"bounce@apple.com","qualification":"invalid"}`}}, "ok", "invalid"},
		{"enrow phone found", "enrow", "GET", "/phone/single?id=p-1", "",
			[]vendorsim.Answer{{Status: 200, Body: `{"params":{"linkedin_url":"https://www.linkedin.com/in/timcook"},"number":"+15705551234","country":"US","qualification":"found"}`}}, "ok", "found"},
		{"enrow not-found 500", "enrow", "GET", "/email/find/single?id=gone", "",
			[]vendorsim.Answer{{Status: 500, Body: `{"message":"Could not retrieve single search results"}`}}, "not_found", ""},
		{"enrow bulk unknown id 400", "enrow", "GET", "/email/verify/bulk?id=gone", "",
			[]vendorsim.Answer{{Status: 400, Body: `{"message":"Could not retrieve bulk verification results"}`}}, "not_found", ""},
		{"enrow bulk ongoing", "enrow", "GET", "/email/find/bulk?id=b-1", "",
			[]vendorsim.Answer{{Status: 200, Body: `{"general":{"id":"b-1","status":"ongoing"},"stats":{"finished":1,"requested":2}}`}}, "pending", ""},
		{"enrow bulk failed", "enrow", "GET", "/email/find/bulk?id=b-1", "",
			[]vendorsim.Answer{{Status: 200, Body: `{"general":{"id":"b-1","status":"failed"},"stats":{"finished":0,"requested":2}}`}}, "upstream_error", ""},
		{"enrow 400 rejected", "enrow", "POST", "/email/find/single", `{"company_domain":"apple.com"}`,
			[]vendorsim.Answer{{Status: 400, Body: `{"message":"input payload is missing fullname"}`}}, "invalid_request", ""},
		{"enrow 401", "enrow", "GET", "/account/info", "",
			[]vendorsim.Answer{{Status: 401, Body: `{"message":"This apikey is not valid"}`}}, "unauthorized", ""},
		{"enrow 402 reason shape", "enrow", "POST", "/email/find/single", timCook,
			[]vendorsim.Answer{{Status: 402, Body: `{"reason":"Insufficient credits","success":false}`}}, "insufficient_credits", ""},
		{"enrow 402 message shape", "enrow", "POST", "/email/find/bulk", `{"searches":[` + timCook + `]}`,
			[]vendorsim.Answer{{Status: 402, Body: `{"message":"Insufficient credits"}`}}, "insufficient_credits", ""},
		{"enrow legacy 422", "enrow", "POST", "/email/verify/single", `{"email":"tim@apple.com"}`,
			[]vendorsim.Answer{{Status: 422, Body: `{"message":"Insufficient balance"}`}}, "insufficient_credits", ""},
		{"enrow 429", "enrow", "POST", "/email/find/single", timCook,
			[]vendorsim.Answer{{Status: 429, Header: http.Header{"Retry-After": {"120"}}, Body: `{"message":"Too Many Requests"}`}}, "rate_limited", ""},
		{"enrow HTML 502 after retries", "enrow", "GET", "/account/info", "",
			[]vendorsim.Answer{bad502, bad502, bad502}, "upstream_error", ""},
		{"enrow 503 503 200", "enrow", "GET", "/account/info", "",
			[]vendorsim.Answer{{Status: 503, Body: `{"message":"Service Unavailable"}`}, {Status: 503, Body: `{"message":"Service Unavailable"}`},
				{Status: 200, Body: `{"credits":12.5,"webhooks":[]}`}}, "ok", ""},
		{"ecore enrichment found", "ecore", "POST", "/external/email/enrichment/", `{"first_name":"Tim","last_name":"Cook","company_website":"apple.com"}`,
			[]vendorsim.Answer{{Status: 200, Body: `{"success":true,"status":"success","results":{"email":"tim.cook@apple.com"},"remaining_credits":9}`}}, "ok", "found"},
		{"ecore 200 not_found", "ecore", "POST", "/external/phone/enrichment/", `{"linkedin_url":"https://www.linkedin.com/in/nobody"}`,
			[]vendorsim.Answer{{Status: 200, Body: `{"success":true,"status":"not_found","message":"Phone not found","remaining_credits":10}`}}, "ok", "not_found"},
		{"ecore job processing", "ecore", "GET", "/email-validation/jobs/7/", "",
			[]vendorsim.Answer{{Status: 200, Body: `{"id":7,"list_name":"x","status":"Processing","total_records":2,"valid_count":0,"invalid_count":0,"unknown_count":0,"results_summary":"1/2","records":[]}`}}, "pending", ""},
		{"ecore 404", "ecore", "GET", "/email-validation/jobs/999/", "",
			[]vendorsim.Answer{{Status: 404, Body: `{"detail":"Not found."}`}}, "not_found", ""},
		{"ecore 401", "ecore", "GET", "/external/search/", "",
			[]vendorsim.Answer{{Status: 401, Header: http.Header{"Www-Authenticate": {"Token"}}, Body: `{"detail":"Invalid token."}`}}, "unauthorized", ""},
		{"ecore 402", "ecore", "POST", "/email-validation/jobs/upload/", `{"emails":["a@apple.com","b@apple.com"]}`,
			[]vendorsim.Answer{{Status: 402, Body: `{"error":"Insufficient wallet balance.","required":2,"balance":0.5}`}}, "insufficient_credits", ""},
		{"ecore daily cap 429", "ecore", "GET", "/external/search/", "",
			[]vendorsim.Answer{{Status: 429, Body: `{"error":{"message":"Daily usage limit exceeded","current_usage":100,"daily_limit":100,"resets_at":"midnight UTC"}}`}}, "quota_exceeded", ""},
		{"ecore throttled 429", "ecore", "GET", "/external/search/", "",
			[]vendorsim.Answer{{Status: 429, Header: http.Header{"Retry-After": {"60"}}, Body: `{"detail":"Request was throttled."}`}}, "rate_limited", ""},
	}

	// seen is what one mode showed of the request.
	type seen struct {
		code            int
		header          http.Header
		body            []byte
		status          string
		qual            string
		op              string
		upstream        string
		calls           int
		metrics         []string
		access          map[string]any
		retryAfterShown int
	}
	run := func(t *testing.T, vendor, method, path, body string, script []vendorsim.Answer, raw bool) seen {
		t.Helper()
		h := rawStart(t)
		sim := map[string]interface{ Script(...vendorsim.Answer) }{"enrow": h.enrow, "ecore": h.ecore}[vendor]
		sim.Script(script...)
		prefix := "/" + vendor
		if raw {
			prefix = "/raw/" + vendor
		}
		a := h.do(method, prefix+path, body)
		s := seen{code: a.code, header: a.header, body: a.raw, upstream: a.header.Get("X-Upstream-Status"),
			calls: h.enrow.CallCount() + h.ecore.CallCount(), retryAfterShown: rawRetryAfter(a.header)}
		if raw {
			if _, ok := a.header["X-Enrich-Qualification"]; ok && a.header.Get("X-Enrich-Qualification") == "" {
				t.Error("raw: X-Enrich-Qualification is present but empty, want it left out")
			}
			s.status, s.qual, s.op = a.header.Get("X-Enrich-Status"), a.header.Get("X-Enrich-Qualification"), a.header.Get("X-Enrich-Operation")
		} else {
			s.status, s.qual, s.op = string(a.env.Status), string(a.env.Qualification), string(a.env.Operation)
		}
		s.metrics = rawScrapeMetrics(t, h)
		lines := rawAccessLines(t, h)
		if len(lines) != 1 {
			t.Fatalf("got %d access lines, want 1", len(lines))
		}
		s.access = lines[0]
		return s
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := run(t, tc.vendor, tc.method, tc.path, tc.body, tc.script, false)
			raw := run(t, tc.vendor, tc.method, tc.path, tc.body, tc.script, true)
			last := tc.script[len(tc.script)-1]

			if env.status != string(tc.wantSt) || env.qual != string(tc.wantQual) {
				t.Errorf("envelope: got %s/%s, want %s/%s", env.status, env.qual, tc.wantSt, tc.wantQual)
			}
			if raw.status != env.status || raw.qual != env.qual || raw.op != env.op {
				t.Errorf("got X-Enrich-Status/Qualification/Operation %q/%q/%q, envelope says %q/%q/%q",
					raw.status, raw.qual, raw.op, env.status, env.qual, env.op)
			}
			if raw.upstream != env.upstream || raw.upstream != strconv.Itoa(last.Status) {
				t.Errorf("got X-Upstream-Status %q (raw) and %q (envelope), want %d in both", raw.upstream, env.upstream, last.Status)
			}
			if env.code != normalize.Status(env.status).HTTPCode() {
				t.Errorf("envelope: got HTTP %d for status %s", env.code, env.status)
			}
			if raw.code != last.Status || string(raw.body) != last.Body {
				t.Errorf("raw: got %d %q, want the vendor's last answer %d %q", raw.code, raw.body, last.Status, last.Body)
			}
			wantCT := last.Header.Get("Content-Type")
			if wantCT == "" {
				wantCT = "application/json"
			}
			if ct := raw.header.Get("Content-Type"); ct != wantCT {
				t.Errorf("raw: got Content-Type %q, want the vendor's %q", ct, wantCT)
			}
			if raw.calls != len(tc.script) || env.calls != len(tc.script) {
				t.Errorf("got %d (raw) and %d (envelope) vendor calls, want %d", raw.calls, env.calls, len(tc.script))
			}
			// Retry-After: the vendor's own in drop-in mode; otherwise (or in envelope mode)
			// the proxy's retry_after_seconds, the same in both modes.
			if ra := last.Header.Get("Retry-After"); ra != "" {
				if raw.header.Get("Retry-After") != ra || env.header.Get("Retry-After") != ra {
					t.Errorf("got Retry-After %q (raw) and %q (envelope), want the vendor's %q",
						raw.header.Get("Retry-After"), env.header.Get("Retry-After"), ra)
				}
			} else if d := raw.retryAfterShown - env.retryAfterShown; d < -2 || d > 2 {
				t.Errorf("got Retry-After %q (raw) and %q (envelope), want the same", raw.header.Get("Retry-After"), env.header.Get("Retry-After"))
			}

			if len(env.metrics) == 0 || !slices.Equal(raw.metrics, env.metrics) {
				t.Errorf("metrics differ:\nraw:      %s\nenvelope: %s", strings.Join(raw.metrics, "\n          "), strings.Join(env.metrics, "\n          "))
			}
			wantLine := fmt.Sprintf(`enrichproxy_requests_total{operation=%q,qualification=%q,status=%q,vendor=%q} 1`, env.op, env.qual, env.status, tc.vendor)
			if !slices.Contains(env.metrics, wantLine) {
				t.Errorf("metrics lack %s:\n%s", wantLine, strings.Join(env.metrics, "\n"))
			}
			if raw.access["route"] != "/raw/"+tc.vendor+"/*" || env.access["route"] != "/"+tc.vendor+"/*" {
				t.Errorf("got routes %v (raw) and %v (envelope)", raw.access["route"], env.access["route"])
			}
			if raw.access["status"] != env.status {
				t.Errorf("raw access line: got status %v, want the normalized %q", raw.access["status"], env.status)
			}
			strip := func(m map[string]any) map[string]any {
				m = maps.Clone(m)
				for _, k := range []string{"ts", "request_id", "duration_ms", "route"} {
					delete(m, k)
				}
				return m
			}
			if a, b := strip(raw.access), strip(env.access); !maps.Equal(a, b) {
				t.Errorf("access lines differ:\nraw:      %v\nenvelope: %v", a, b)
			}
		})
	}
}
