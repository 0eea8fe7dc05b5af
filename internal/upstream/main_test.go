package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/enrichproxy/enrichproxy/internal/metrics"
	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// answer is one scripted vendor reply.
type answer struct {
	status int
	header map[string]string
	body   string
	// hang never answers: the handler waits for the client to give up.
	hang bool
	// reset reads the request, then resets the connection without answering.
	reset bool
}

// call is one request the fake vendor received.
type call struct {
	at     time.Time
	method string
	uri    string // path and query as received
	header http.Header
	body   []byte
}

// fakeVendor is a loopback vendor. Each call is recorded, announced on arrived, and answered
// by next.
type fakeVendor struct {
	srv *httptest.Server
	// arrived receives every call as it arrives (it is buffered; calls past its capacity are
	// recorded but not announced).
	arrived chan call
	next    func(c call, n int) answer // n counts calls from 1

	mu    sync.Mutex
	calls []call
}

// newVendor starts a vendor that answers from script, one answer per call, repeating the
// last one when the script runs out.
func newVendor(t *testing.T, script ...answer) *fakeVendor {
	t.Helper()
	return newVendorFunc(t, func(_ call, n int) answer {
		return script[min(n, len(script))-1]
	})
}

// newVendorFunc starts a vendor whose answer to each call is next's.
func newVendorFunc(t *testing.T, next func(c call, n int) answer) *fakeVendor {
	t.Helper()
	v := &fakeVendor{arrived: make(chan call, 1024), next: next}
	release := make(chan struct{})
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body whole also lets the server notice a client that goes away, which
		// cancels r.Context() for hanging answers.
		body, _ := io.ReadAll(r.Body)
		c := call{at: time.Now(), method: r.Method, uri: r.URL.RequestURI(), header: r.Header.Clone(), body: body}
		v.mu.Lock()
		v.calls = append(v.calls, c)
		n := len(v.calls)
		v.mu.Unlock()
		select {
		case v.arrived <- c:
		default:
		}
		a := v.next(c, n)
		switch {
		case a.hang:
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		case a.reset:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // close with RST, not FIN
			}
			conn.Close()
			return
		}
		for k, val := range a.header {
			w.Header().Set(k, val)
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	// Cleanups run last-in first-out: hanging handlers are released before Close waits
	// for them.
	t.Cleanup(v.srv.Close)
	t.Cleanup(func() { close(release) })
	return v
}

// URL is the vendor's base URL.
func (v *fakeVendor) URL() string { return v.srv.URL }

// count is the number of calls received so far.
func (v *fakeVendor) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.calls)
}

// received is a copy of the calls received so far.
func (v *fakeVendor) received() []call {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]call(nil), v.calls...)
}

// waitArrival returns the next call announced by the vendor, failing the test after a
// generous limit.
func (v *fakeVendor) waitArrival(t *testing.T) call {
	t.Helper()
	select {
	case c := <-v.arrived:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no call reached the vendor within 5s")
		return call{}
	}
}

// testPolicy is a policy in milliseconds, so that the suite runs fast. Tests change what
// they exercise.
func testPolicy(base string) Policy {
	return Policy{
		BaseURL:        base,
		AttemptTimeout: time.Second,
		MaxAttempts:    3,
		BackoffBase:    time.Millisecond,
		BackoffCap:     5 * time.Millisecond,
		MaxRetryWait:   2 * time.Second,
		RetryBudget:    BudgetPolicy{Ratio: 1, MinPerSecond: 1000, Window: 10 * time.Second},
		Breaker: BreakerPolicy{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20,
			Interval: 10 * time.Second, OpenTimeout: 50 * time.Millisecond, HalfOpenRequests: 2},
		MaxQueueWait: time.Second,
	}
}

// enrowPolicy is testPolicy with Enrow's rate-limited operations: POSTs, at perSecond.
func enrowPolicy(base string, perSecond float64) Policy {
	p := testPolicy(base)
	p.RateLimit = &RateLimitPolicy{PerSecond: perSecond, Methods: []string{http.MethodPost}}
	return p
}

// newClient builds a Client from cfg with a fresh registry and its own transport, closed
// when the test ends. cfg.Name defaults to "enrow".
func newClient(t *testing.T, cfg Config) (*Client, *prometheus.Registry) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = normalize.Enrow
	}
	reg := prometheus.NewRegistry()
	cfg.Metrics = metrics.New(reg, "test")
	if cfg.Transport == nil {
		tr := newH1Transport() // what a plain-HTTP vendor gets (h1.go)
		t.Cleanup(tr.CloseIdleConnections)
		cfg.Transport = tr
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, reg
}

// closedURL is a base URL where nothing listens: every dial is refused.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// wantError fails the test unless err is an *Error with status and code.
func wantError(t *testing.T, err error, status normalize.Status, code string) *Error {
	t.Helper()
	e, ok := errors.AsType[*Error](err)
	if !ok {
		t.Fatalf("got error %v, want *Error %s/%s", err, status, code)
	}
	if e.Status != status || e.Code != code {
		t.Fatalf("got error %s/%s (%v), want %s/%s", e.Status, e.Code, e, status, code)
	}
	return e
}

// wantEnvelope fails the test unless err is nil and the vendor answer normalized to status
// with error code (none when code is "").
func wantEnvelope(t *testing.T, out *Outcome, err error, status normalize.Status, code string) {
	t.Helper()
	if err != nil {
		t.Fatalf("got error %v, want the vendor's answer (%s)", err, status)
	}
	env := out.Envelope
	var gotCode string
	if env.Error != nil {
		gotCode = env.Error.Code
	}
	if env.Status != status || gotCode != code {
		t.Fatalf("got envelope %s/%q, want %s/%q", env.Status, gotCode, status, code)
	}
}

// metricValue is the value of the enrichproxy_<name> series whose labels include
// labelPairs (name, value, name, value…), summed over the series that match; 0 when none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labelPairs ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != "enrichproxy_"+name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labelPairs); i += 2 {
				if labels[labelPairs[i]] != labelPairs[i+1] {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

// waitState polls the breaker's state until it reads want, failing the test after limit.
// The breaker moves from open to half-open on its own clock; reading the state is the event.
func waitState(t *testing.T, c *Client, want float64, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for c.CircuitState() != want {
		if time.Now().After(deadline) {
			t.Fatalf("got circuit state %v after %v, want %v", c.CircuitState(), limit, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// get and post build requests; get's path may carry a query.
func get(path string) *Request {
	p, q, _ := strings.Cut(path, "?")
	return &Request{Method: http.MethodGet, Path: p, RawQuery: q}
}

func post(path, body string) *Request {
	return &Request{Method: http.MethodPost, Path: path, Body: []byte(body),
		Header: http.Header{"Content-Type": {"application/json"}}}
}

// withKey returns req with a client credential header.
func withKey(req *Request, name, value string) *Request {
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set(name, value)
	return req
}

// timeoutCtx is t.Context() with a timeout, cancelled when the test ends.
func timeoutCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
