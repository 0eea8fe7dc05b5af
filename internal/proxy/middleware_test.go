package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

// TestPanicBecomesAnEnvelope: a handler's panic is a 500 internal envelope and a log line
// with the stack, never a dropped connection (SPEC 5).
func TestPanicBecomesAnEnvelope(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	s := New(Config{Log: zap.New(core)})
	s.handler = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/enrow/account/info", nil))

	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("got %d, want 500", rec.Code)
	}
	var env normalize.Envelope
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
		t.Fatalf("answer is not an envelope: %v: %s", err, rec.Body)
	}
	if env.Status != normalize.StatusInternal || env.Error == nil || env.Error.Code != normalize.CodeInternal || env.RequestID == "" {
		t.Errorf("got %+v, want internal/internal with a request id", env)
	}
	panics := logs.FilterMessage("panic").All()
	if len(panics) != 1 || !strings.Contains(panics[0].ContextMap()["stack"].(string), "TestPanicBecomesAnEnvelope") {
		t.Errorf("got %d panic log lines, want one with the stack", len(panics))
	}
	access := logs.FilterMessage("request").All()
	if len(access) != 1 || access[0].ContextMap()["status"] != "internal" {
		t.Errorf("got access lines %v, want one with status internal", access)
	}
}

func TestParseRequestTimeout(t *testing.T) {
	for v, want := range map[string]time.Duration{"2": 2 * time.Second, "0.25": 250 * time.Millisecond,
		" 3 ": 3 * time.Second, "1500ms": 1500 * time.Millisecond, "0": 0, "-1": 0, "soon": 0, "1e9": 0, "NaN": 0} {
		got, ok := parseRequestTimeout(v)
		if (want == 0) == ok || (ok && got != want) {
			t.Errorf("parseRequestTimeout(%q) = %v, %v; want %v", v, got, ok, want)
		}
	}
}

func TestEscapes(t *testing.T) {
	for p, want := range map[string]bool{
		"/enrow/email/find/single": false, "/enrow/../admin": true, "/enrow/%2e%2E/x": true,
		"/enrow/a%2Fb": true, "/enrow/a%5cb": true, `/enrow/a\b`: true, "/enrow/.": true,
		"/enrow/a..b": false, "/ecore/email-validation/jobs/42/": false,
	} {
		if got := escapes(p); got != want {
			t.Errorf("escapes(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestPanicAfterTheAnswerBegan: a panic once the status line is written cuts the answer
// (http.ErrAbortHandler, which net/http turns into a closed connection) instead of ending
// it cleanly, and the access line says internal; a panic before, even once the envelope
// is decided (note), is still the 500 envelope.
func TestPanicAfterTheAnswerBegan(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	s := New(Config{Log: zap.New(core)})
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeHeader(w, r, http.StatusOK)
		_, _ = w.Write([]byte("a,b\n"))
		panic("boom")
	})
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("got panic %v, want http.ErrAbortHandler", p)
			}
		}()
		s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/ecore/validation/jobs/1/download/", nil))
	}()
	access := logs.FilterMessage("request").All()
	if len(access) != 1 || access[0].ContextMap()["status"] != "internal" {
		t.Errorf("got access lines %v, want one with status internal", access)
	}

	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env := normalize.Envelope{Status: normalize.StatusOK}
		s.note(r, &env)
		panic("boom")
	})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/enrow/account/info", nil))
	var env normalize.Envelope
	if err := json.Unmarshal(rec.Body.Bytes(), &env); rec.Code != http.StatusInternalServerError || err != nil || env.Status != normalize.StatusInternal {
		t.Errorf("got %d %s, want the 500 internal envelope", rec.Code, rec.Body)
	}
}
