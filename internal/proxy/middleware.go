package proxy

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

// record is what the access log and the request metrics say of one request. The access log
// middleware makes it; the handler and the writer fill it in.
type record struct {
	id             string
	raw            bool // drop-in mode: answers in the vendor's dialect
	vendor         string
	op             normalize.Operation
	status         normalize.Status
	qual           normalize.Qualification
	upstreamStatus int
	attempts       int
	breaker        string
	wrote          bool // the answer's status line is written (writeHeader)

	// For the access line only.
	method, route string
	duration      time.Duration
}

// MarshalLogObject writes the access line's fields (SPEC 9), and nothing else: one
// inline zap field rather than ten keeps the line from allocating them on every request.
func (rec *record) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("request_id", rec.id)
	enc.AddString("method", rec.method)
	enc.AddString("vendor", rec.vendor)
	enc.AddString("operation", string(rec.op))
	enc.AddString("route", rec.route)
	enc.AddString("status", string(rec.status))
	enc.AddInt64("upstream_status", int64(rec.upstreamStatus))
	enc.AddInt64("attempts", int64(rec.attempts))
	enc.AddInt64("duration_ms", rec.duration.Milliseconds())
	enc.AddString("breaker", rec.breaker)
	return nil
}

type recordKey struct{}

// requestContext is a request's context as the proxy sees it: the record and chi's route
// context, found by their keys (chi uses a route context it finds in the request's
// context instead of making its own). The route context comes from a pool, as chi's own
// do, and goes back once the request is answered: its slices keep their room from one
// request to the next.
type requestContext struct {
	context.Context
	rec   record
	route *chi.Context
}

var routeContexts = sync.Pool{New: func() any { return chi.NewRouteContext() }}

func (c *requestContext) Value(key any) any {
	switch key {
	case recordKey{}:
		return &c.rec
	case chi.RouteCtxKey:
		return c.route
	}
	return c.Context.Value(key)
}

// recordOf returns the request's record; a blank one outside ServeHTTP (tests).
func recordOf(r *http.Request) *record {
	if rec, ok := r.Context().Value(recordKey{}).(*record); ok {
		return rec
	}
	return &record{}
}

// ServeHTTP is what every request to the proxy listener goes through before its route
// (SPEC 1, 5, 9): the request id, the record the access log and the metrics are made of,
// the panic recovery, and the gates; then the router. One function rather than a chain
// of middleware keeps the stack of a request held by a slow vendor within the serving
// goroutine's first 8 KiB (docs/benchmarks.md): the work done before and after the route
// is in functions that are not on the stack while the vendor is waited for.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := s.begin(w, r)
	r = r.WithContext(rc)
	defer s.end(w, r, rc, time.Now())
	if s.refused(w, r) {
		return
	}
	s.handler.ServeHTTP(w, r)
}

// begin makes the request's context: the client's X-Request-Id when it is a sane token,
// else a new one, echoed on the answer (SPEC 9); the vendor the route is for.
//
//go:noinline
func (s *Server) begin(w http.ResponseWriter, r *http.Request) *requestContext {
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		var b [8]byte
		for i := range b {
			b[i] = byte(rand.Uint32())
		}
		id = hex.EncodeToString(b[:])
	}
	w.Header()["X-Request-Id"] = []string{id}
	rc := &requestContext{Context: r.Context(), rec: record{id: id, op: normalize.OpOther}}
	rc.rec.raw, rc.rec.vendor = s.routeVendor(r.URL.Path)
	rc.route = routeContexts.Get().(*chi.Context)
	rc.route.Reset()
	rc.route.Routes = s.mux
	return rc
}

// end turns a panic into a 500 internal envelope and a log line with the stack, never a
// dropped connection (SPEC 5), then writes the access log line and records the request
// metrics. A panic once the answer has begun can no longer be said in it: the answer is
// cut (http.ErrAbortHandler) so that the client sees it incomplete rather than a clean
// end. It must be deferred by ServeHTTP itself (recover works only there).
func (s *Server) end(w http.ResponseWriter, r *http.Request, rc *requestContext, start time.Time) {
	rec := &rc.rec
	if p := recover(); p != nil {
		if p == http.ErrAbortHandler {
			panic(p)
		}
		s.log.Error("panic", zap.String("request_id", rec.id), zap.String("panic", fmt.Sprint(p)), zap.Stack("stack"))
		if rec.wrote {
			rec.status = normalize.StatusInternal
			s.logAccess(r, rec, time.Since(start))
			panic(http.ErrAbortHandler)
		}
		s.writeError(w, r, normalize.ErrorEnvelope(rec.vendor, rec.op, normalize.StatusInternal,
			normalize.CodeInternal, "internal error"))
	}
	s.logAccess(r, rec, time.Since(start))
	routeContexts.Put(rc.route) // nothing reads it once the request is answered
}

// validRequestID accepts 1 to 128 visible ASCII characters.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '!' || id[i] > '~' {
			return false
		}
	}
	return true
}

// logAccess writes one line per request with only the allowed fields (SPEC 9) and
// records the request metrics. Nothing from the body, the query or the headers is logged.
func (s *Server) logAccess(r *http.Request, rec *record, d time.Duration) {
	if rec.status == "" {
		rec.status = normalize.StatusInternal
	}
	if s.m != nil {
		s.m.Request(rec.vendor, string(rec.op), string(rec.status), string(rec.qual), d)
	}
	if ce := s.access.Check(zap.InfoLevel, "request"); ce != nil {
		rec.method, rec.duration = r.Method, d
		if rc := chi.RouteContext(r.Context()); rc != nil {
			rec.route = rc.RoutePattern()
		}
		ce.Write(zap.Inline(rec))
	}
}

// routeVendor reads the vendor a path is for, and whether it is a drop-in route; the
// vendor is "" unless it is a configured one, so the value stays bounded.
func (s *Server) routeVendor(path string) (raw bool, vendor string) {
	path = strings.TrimPrefix(path, "/")
	if rest, ok := strings.CutPrefix(path, "raw/"); ok {
		raw, path = true, rest
	}
	first, _, _ := strings.Cut(path, "/")
	if _, ok := s.cfg.Vendors[first]; ok {
		return raw, first
	}
	return false, ""
}

// refused turns a request away before routing, in this order: the proxy is draining
// (503 draining); a proxy token is required and missing (401 proxy_auth, SPEC 2); the
// path could leave its vendor prefix (400 path_escape, SPEC 1); X-Request-Timeout is not
// a positive number of seconds (400 invalid_input, rather than silently using the
// default). It reports whether it answered.
//
//go:noinline
func (s *Server) refused(w http.ResponseWriter, r *http.Request) bool {
	env, refused := s.refuse(r)
	if refused {
		s.writeError(w, r, env)
	}
	return refused
}

// refuse is the gates' decision for r.
func (s *Server) refuse(r *http.Request) (normalize.Envelope, bool) {
	vendor := recordOf(r).vendor
	refused := func(st normalize.Status, code, msg string) (normalize.Envelope, bool) {
		return normalize.ErrorEnvelope(vendor, normalize.OpOther, st, code, msg), true
	}
	switch {
	case s.cfg.Draining.Load():
		env, _ := refused(normalize.StatusUnavailable, normalize.CodeDraining, "the proxy is shutting down")
		env.RetryAfterSeconds = 1
		return env, true
	case len(s.cfg.AuthTokens) > 0 && !s.tokenOK(r.Header.Get("X-Proxy-Token")):
		return refused(normalize.StatusUnauthorized, normalize.CodeProxyAuth, "missing or invalid X-Proxy-Token")
	case escapes(r.URL.EscapedPath()):
		return refused(normalize.StatusInvalidRequest, normalize.CodePathEscape, "path escapes its vendor prefix")
	}
	if v := r.Header.Get("X-Request-Timeout"); v != "" {
		if _, ok := parseRequestTimeout(v); !ok {
			return refused(normalize.StatusInvalidRequest, normalize.CodeInvalidInput,
				"X-Request-Timeout must be a positive number of seconds")
		}
	}
	return normalize.Envelope{}, false
}

// escapes reports whether an escaped path holds a dot segment (plain or percent-encoded)
// or an encoded slash or backslash.
func escapes(escaped string) bool {
	if strings.Contains(escaped, `\`) {
		return true
	}
	lower := strings.ToLower(escaped)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return true
	}
	for seg := range strings.SplitSeq(escaped, "/") {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return true
		}
		if dec == "." || dec == ".." {
			return true
		}
	}
	return false
}
