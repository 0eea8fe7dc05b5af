package vendorsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sim is what both simulators offer.
type sim interface {
	http.Handler
	Calls() []Call
	CallCount() int
	Reset()
	Script(...Answer)
	SetFaults(Faults)
	SetCredits(float64)
	Credits() float64
	OnRequest(func(Call))
	WaitCalls(context.Context, int) error
}

var (
	_ sim = (*Enrow)(nil)
	_ sim = (*ECore)(nil)
)

// fakeClock is a settable Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 5, 6, 11, 42, 8, 913e6, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// req is one request to a test server.
type req struct {
	method, path string
	header       map[string]string
	body         string
	ctx          context.Context
}

func send(t *testing.T, srv *httptest.Server, r req) (reply, error) {
	t.Helper()
	ctx := r.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	method := r.method
	if method == "" {
		method = http.MethodGet
	}
	hr, err := http.NewRequestWithContext(ctx, method, srv.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.body != "" && hr.Header.Get("Content-Type") == "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(hr)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func do(t *testing.T, srv *httptest.Server, r req) reply {
	t.Helper()
	got, err := send(t, srv, r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	return got
}

// obj decodes a JSON object answer.
func (r reply) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// expect checks the status and that the body matches want (see matchJSON).
func expect(t *testing.T, got reply, status int, want string) {
	t.Helper()
	if got.status != status {
		t.Fatalf("status: got %d, want %d (body %s)", got.status, status, got.body)
	}
	if want == "" {
		return
	}
	if ct := got.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var g, w any
	if err := json.Unmarshal(got.body, &g); err != nil {
		t.Fatalf("body %q is not JSON: %v", got.body, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	if diffs := matchJSON("$", g, w); len(diffs) > 0 {
		t.Errorf("body %s\n%s", got.body, strings.Join(diffs, "\n"))
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// matchJSON compares decoded JSON; in want, "<any>" accepts any value (the key must be
// present), "<uuid>" a UUID string, "<time>" an ISO-8601 UTC string.
func matchJSON(path string, got, want any) []string {
	switch w := want.(type) {
	case string:
		switch w {
		case "<any>":
			return nil
		case "<uuid>":
			if s, ok := got.(string); ok && uuidRE.MatchString(s) {
				return nil
			}
		case "<time>":
			if s, ok := got.(string); ok && regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$`).MatchString(s) {
				return nil
			}
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			break
		}
		var diffs []string
		var keys []string
		for k := range w {
			keys = append(keys, k)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: unexpected key (value %v)", path, k, g[k]))
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			diffs = append(diffs, matchJSON(path+"."+k, gv, w[k])...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			break
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, matchJSON(fmt.Sprintf("%s[%d]", path, i), g[i], w[i])...)
		}
		return diffs
	}
	if reflect.DeepEqual(got, want) {
		return nil
	}
	return []string{fmt.Sprintf("%s: got %#v, want %#v", path, got, want)}
}

// arrivals returns a channel that receives every call reaching s.
func arrivals(s sim) <-chan Call {
	ch := make(chan Call, 16)
	s.OnRequest(func(c Call) { ch <- c })
	return ch
}

func TestScript(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    sim
		path string
	}{
		{"enrow", NewEnrow(Options{}), "/account/info"},
		{"ecore", NewECore(Options{}), "/external/search/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, tc.s)
			tc.s.Script(
				Answer{Status: 503, Body: "upstream down", Header: http.Header{"Content-Type": {"text/plain"}}},
				Answer{Status: 429, Body: `{"message":"Too Many Requests"}`, Header: http.Header{"Retry-After": {"2"}}},
				Answer{Body: `{"ok":true}`, Delay: time.Millisecond},
			)
			got := do(t, srv, req{path: tc.path})
			if got.status != 503 || string(got.body) != "upstream down" || got.header.Get("Content-Type") != "text/plain" {
				t.Errorf("1st: got %d %q %q, want 503 %q text/plain", got.status, got.body, got.header.Get("Content-Type"), "upstream down")
			}
			got = do(t, srv, req{path: tc.path})
			expect(t, got, 429, `{"message":"Too Many Requests"}`)
			if ra := got.header.Get("Retry-After"); ra != "2" {
				t.Errorf("Retry-After: got %q, want 2", ra)
			}
			expect(t, do(t, srv, req{path: tc.path}), 200, `{"ok":true}`)
			// The script is used up: normal behaviour (no credential → 401).
			if got := do(t, srv, req{path: tc.path}); got.status != 401 {
				t.Errorf("after the script: got %d, want 401", got.status)
			}
			if n := tc.s.CallCount(); n != 4 {
				t.Errorf("CallCount: got %d, want 4", n)
			}
		})
	}
}

// hangs checks that a request is answered only when the client goes away, synchronising
// on its arrival rather than sleeping.
func hangs(t *testing.T, s sim, srv *httptest.Server, path string) {
	t.Helper()
	arrived := arrivals(s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := send(t, srv, req{path: path, ctx: ctx})
		done <- err
	}()
	<-arrived
	select {
	case err := <-done:
		t.Fatalf("answered before the client went away (err %v)", err)
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	s.OnRequest(nil)
}

func TestHangs(t *testing.T) {
	t.Run("scripted", func(t *testing.T) {
		s := NewEnrow(Options{})
		s.Script(Answer{Hang: true})
		hangs(t, s, serve(t, s), "/account/info")
	})
	t.Run("scripted delay", func(t *testing.T) {
		s := NewECore(Options{})
		s.Script(Answer{Delay: time.Hour, Status: 200})
		hangs(t, s, serve(t, s), "/external/search/")
	})
	t.Run("fault hang", func(t *testing.T) {
		s := NewECore(Options{Faults: Faults{Hang: true}})
		hangs(t, s, serve(t, s), "/external/search/")
	})
	t.Run("fault latency", func(t *testing.T) {
		s := NewEnrow(Options{})
		s.SetFaults(Faults{Latency: time.Hour})
		hangs(t, s, serve(t, s), "/account/info")
	})
	t.Run("short latency answers", func(t *testing.T) {
		s := NewEnrow(Options{Faults: Faults{Latency: time.Millisecond}})
		got := do(t, serve(t, s), req{path: "/account/info", header: map[string]string{"x-api-key": "k"}})
		expect(t, got, 200, `{"credits":1000000,"webhooks":[]}`)
	})
}

func TestFaults(t *testing.T) {
	const nginx503 = "<html>\r\n<head><title>503 Service Unavailable</title></head>"
	for _, tc := range []struct {
		name       string
		s          sim
		path       string
		faults     Faults
		status     int
		body       string // JSON, or an HTML prefix when html
		html       bool
		retryAfter string
	}{
		{"enrow 503", NewEnrow(Options{}), "/email/find/single", Faults{ErrorRate: 1}, 503, `{"message":"Service Unavailable"}`, false, ""},
		{"ecore 503", NewECore(Options{}), "/external/search/", Faults{ErrorRate: 1}, 503, `{"detail":"Service temporarily unavailable, try again later."}`, false, ""},
		{"enrow 502", NewEnrow(Options{}), "/account/info", Faults{ErrorRate: 1, ErrorStatus: 502}, 502, `{"message":"Bad Gateway"}`, false, ""},
		{"ecore 500", NewECore(Options{}), "/external/search/", Faults{ErrorRate: 1, ErrorStatus: 500}, 500, `{"detail":"A server error occurred."}`, false, ""},
		{"enrow html", NewEnrow(Options{}), "/account/info", Faults{ErrorRate: 1, HTMLErrors: true}, 503, nginx503, true, ""},
		{"ecore html", NewECore(Options{}), "/external/search/", Faults{ErrorRate: 1, HTMLErrors: true}, 503, nginx503, true, ""},
		{"enrow 429", NewEnrow(Options{}), "/email/find/single", Faults{RateLimitRate: 1}, 429, `{"message":"Too Many Requests"}`, false, ""},
		{"enrow 429 retry-after", NewEnrow(Options{}), "/email/find/single", Faults{RateLimitRate: 1, RetryAfter: 1500 * time.Millisecond}, 429, `{"message":"Too Many Requests"}`, false, "2"},
		{"ecore 429", NewECore(Options{}), "/external/search/", Faults{RateLimitRate: 1, RetryAfter: time.Second}, 429, `{"detail":"Request was throttled."}`, false, "1"},
		{"zero rates", NewEnrow(Options{}), "/account/info", Faults{}, 401, `{"message":"No apikey found in the x-api-key headers"}`, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.SetFaults(tc.faults)
			got := do(t, serve(t, tc.s), req{method: "GET", path: tc.path})
			if tc.html {
				if got.status != tc.status || got.header.Get("Content-Type") != "text/html" || !bytes.HasPrefix(got.body, []byte(tc.body)) {
					t.Errorf("got %d %q %q, want %d text/html %q…", got.status, got.header.Get("Content-Type"), got.body, tc.status, tc.body)
				}
			} else {
				expect(t, got, tc.status, tc.body)
			}
			if ra := got.header.Get("Retry-After"); ra != tc.retryAfter {
				t.Errorf("Retry-After: got %q, want %q", ra, tc.retryAfter)
			}
		})
	}
}

func TestFaultRatesAreFractions(t *testing.T) {
	s := NewEnrow(Options{Seed: 42, Faults: Faults{ErrorRate: 0.5}})
	srv := serve(t, s)
	n503 := 0
	for range 200 {
		if do(t, srv, req{path: "/account/info", header: map[string]string{"x-api-key": "k"}}).status == 503 {
			n503++
		}
	}
	if n503 < 60 || n503 > 140 {
		t.Errorf("503s: got %d of 200, want about 100", n503)
	}
}

func TestCallsAndReset(t *testing.T) {
	s := NewEnrow(Options{})
	srv := serve(t, s)
	do(t, srv, req{method: "POST", path: "/email/find/single?x=1", header: map[string]string{"x-api-key": "k"},
		body: `{"fullname":"Tim Cook","company_domain":"apple.com"}`})
	do(t, srv, req{path: "/_sim/faults"}) // control paths are not recorded
	calls := s.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls: got %d, want 1", len(calls))
	}
	c := calls[0]
	if c.Method != "POST" || c.Path != "/email/find/single" || c.RawQuery != "x=1" ||
		c.Header.Get("x-api-key") != "k" || !bytes.Contains(c.Body, []byte("Tim Cook")) || c.Time.IsZero() {
		t.Errorf("call: got %+v", c)
	}
	calls[0].Body[0] = 'X' // a copy
	if s.Calls()[0].Body[0] == 'X' {
		t.Error("Calls() shares its bodies")
	}
	s.Script(Answer{Status: 500})
	s.Reset()
	if n := s.CallCount(); n != 0 {
		t.Errorf("after Reset: CallCount %d, want 0", n)
	}
	if got := do(t, srv, req{path: "/account/info", header: map[string]string{"x-api-key": "k"}}); got.status != 200 {
		t.Errorf("after Reset the script should be empty: got %d", got.status)
	}
	if s.Credits() != 1_000_000-1 {
		t.Errorf("Reset must keep credits: got %v", s.Credits())
	}
}

func TestWaitCalls(t *testing.T) {
	s := NewECore(Options{Faults: Faults{Hang: true}})
	srv := serve(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = send(t, srv, req{path: "/external/search/", ctx: ctx})
	}()
	if err := s.WaitCalls(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	short, stop := context.WithCancel(context.Background())
	stop()
	if err := s.WaitCalls(short, 5); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitCalls on a done context: got %v, want context.Canceled", err)
	}
}
