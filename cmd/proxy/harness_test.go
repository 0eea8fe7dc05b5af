package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
	"github.com/enrichproxy/enrichproxy/internal/vendorsim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Credentials the simulators accept in these tests. They look nothing like real keys, and
// tests assert they never reach a log line.
const (
	enrowKey   = "test-enrow-key-7f3a"
	ecoreToken = "test-ecore-token-91bc"
)

// harness is the real program, started in process with run(), against simulated vendors.
type harness struct {
	t         *testing.T
	enrow     *vendorsim.Enrow
	ecore     *vendorsim.ECore
	proxyURL  string
	adminURL  string
	client    *http.Client
	logs      *lineBuffer
	stop      context.CancelFunc
	done      chan error
	stopOnce  sync.Once
	logsDone  chan struct{} // closed when every line the program wrote is in logs
	enrowAddr string
}

// lineBuffer collects the program's stdout; safe for concurrent use.
type lineBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *lineBuffer) add(l string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, l)
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// setup configures a harness before the program starts.
type setup struct {
	env       map[string]string
	args      []string
	enrowOpts vendorsim.Options
	ecoreOpts vendorsim.Options
}

// fastPolicy keeps retries and breakers quick so the suite runs in milliseconds.
func fastPolicy() map[string]string {
	env := map[string]string{}
	for _, v := range []string{"ENROW", "ECORE"} {
		env[v+"_BACKOFF_BASE"] = "1ms"
		env[v+"_BACKOFF_CAP"] = "5ms"
		env[v+"_ATTEMPT_TIMEOUT"] = "2s"
	}
	// The credits refresher calls Enrow on its own; tests that want it turn it on.
	env["ENROW_CREDITS_REFRESH"] = "0"
	return env
}

// start runs the program against fresh simulators. Each option edits the setup.
func start(t *testing.T, opts ...func(*setup)) *harness {
	t.Helper()
	s := &setup{env: fastPolicy(),
		enrowOpts: vendorsim.Options{Keys: []string{enrowKey}, NoRateLimit: true},
		ecoreOpts: vendorsim.Options{Keys: []string{ecoreToken}}}
	s.env["ENROW_API_KEY"] = enrowKey
	s.env["ECORE_API_TOKEN"] = ecoreToken
	for _, o := range opts {
		o(s)
	}
	h := &harness{t: t, enrow: vendorsim.NewEnrow(s.enrowOpts), ecore: vendorsim.NewECore(s.ecoreOpts),
		logs: &lineBuffer{}, done: make(chan error, 1)}
	enrowSrv := httptest.NewServer(h.enrow)
	ecoreSrv := httptest.NewServer(h.ecore)
	h.enrowAddr = enrowSrv.URL
	if _, ok := s.env["ENROW_BASE_URL"]; !ok {
		s.env["ENROW_BASE_URL"] = enrowSrv.URL
	}
	if _, ok := s.env["ECORE_BASE_URL"]; !ok {
		s.env["ECORE_BASE_URL"] = ecoreSrv.URL
	}
	getenv := func(k string) string { return s.env[k] }

	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	pr, pw := io.Pipe()
	listening := make(chan map[string]string, 1)
	h.logsDone = make(chan struct{})
	go func() {
		defer close(h.logsDone)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			h.logs.add(line)
			var m map[string]string
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "listening" {
				listening <- m
			}
		}
		_, _ = io.Copy(io.Discard, pr) // never block the program's writes
	}()
	args := append([]string{"-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0"}, s.args...)
	var stderr bytes.Buffer
	go func() {
		h.done <- run(ctx, args, getenv, pw, &stderr)
		pw.Close()
	}()
	select {
	case m := <-listening:
		h.proxyURL, h.adminURL = "http://"+m["proxy"], "http://"+m["admin"]
	case err := <-h.done:
		t.Fatalf("run ended before listening: %v\nstderr: %s", err, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("run did not start listening")
	}
	h.client = &http.Client{Transport: &http.Transport{}}
	t.Cleanup(func() {
		h.shutdown()
		enrowSrv.Close()
		ecoreSrv.Close()
		h.client.CloseIdleConnections()
	})
	return h
}

// shutdown stops the program as SIGTERM would and waits for run to return.
func (h *harness) shutdown() {
	h.t.Helper()
	h.stopOnce.Do(func() {
		h.stop()
		select {
		case err := <-h.done:
			if err != nil {
				h.t.Errorf("run returned %v, want nil after a signal", err)
			}
			<-h.logsDone
		case <-time.After(30 * time.Second):
			h.t.Fatal("run did not return after shutdown")
		}
	})
}

// answer is a decoded proxy answer.
type answer struct {
	code   int
	header http.Header
	raw    []byte
	env    envelope
}

// envelope is the envelope as a client decodes it, data included.
type envelope struct {
	normalize.Envelope
	Data json.RawMessage `json:"data"`
}

// do sends a request to the proxy; headers are name, value pairs.
func (h *harness) do(method, path, body string, headers ...string) answer {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.proxyURL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	a := answer{code: resp.StatusCode, header: resp.Header, raw: raw}
	// Streamed and drop-in answers (X-Enrich-Status) carry the vendor's body, not an envelope.
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && resp.Header.Get("X-Enrich-Status") == "" {
		if err := json.Unmarshal(raw, &a.env); err != nil {
			h.t.Fatalf("%s %s: answer is not an envelope: %v\n%s", method, path, err, raw)
		}
	}
	return a
}

// lastCall is the last call the simulator received.
func lastCall(t *testing.T, calls []vendorsim.Call) vendorsim.Call {
	t.Helper()
	if len(calls) == 0 {
		t.Fatal("the vendor received no call")
	}
	return calls[len(calls)-1]
}

// idOf reads the id of a vendor answer in an envelope.
func idOf(t *testing.T, a answer) string {
	t.Helper()
	if a.env.ID == "" {
		t.Fatalf("answer has no id: %s", a.raw)
	}
	return a.env.ID
}

// jsonKeys returns the top-level keys of a JSON object line.
func jsonKeys(t *testing.T, line string) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("log line is not JSON: %v: %s", err, line)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
