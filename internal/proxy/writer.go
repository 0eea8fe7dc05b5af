package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"go.uber.org/zap"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
	"github.com/enrichproxy/enrichproxy/internal/upstream"
)

// respond answers a forwarded request from what upstream made of it: an answer the proxy
// makes itself (err), a streamed body, or the normalized vendor answer.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, vendor string, op normalize.Operation, out *upstream.Outcome, err error) {
	var calls *normalize.Upstream
	if out.Attempts > 0 {
		calls = &normalize.Upstream{Status: out.StatusCode, Attempts: out.Attempts, DurationMS: out.Duration.Milliseconds()}
	}
	if err != nil {
		env := envelopeForError(vendor, op, err)
		env.Upstream = calls
		s.writeError(w, r, env)
		return
	}
	if out.Stream != nil {
		s.writeStream(w, r, vendor, op, out)
		return
	}
	env := out.Envelope
	env.Upstream = calls
	if recordOf(r).raw {
		s.writeRaw(w, r, env, out)
		return
	}
	s.writeEnvelope(w, r, env)
}

// envelopeForError is the one place that turns an error from upstream into an envelope.
func envelopeForError(vendor string, op normalize.Operation, err error) normalize.Envelope {
	if e, ok := errors.AsType[*upstream.Error](err); ok {
		env := normalize.ErrorEnvelope(vendor, op, e.Status, e.Code, errorMessage(e))
		env.RetryAfterSeconds = normalize.CeilSeconds(e.RetryAfter)
		return env
	}
	if errors.Is(err, context.Canceled) {
		// The client went away; nobody reads this answer, but it is logged and counted.
		return normalize.ErrorEnvelope(vendor, op, normalize.StatusTimeout, normalize.CodeDeadlineExceeded,
			"the client closed the request")
	}
	return normalize.ErrorEnvelope(vendor, op, normalize.StatusInternal, normalize.CodeInternal, "internal error")
}

// errorMessage is the proxy's own message for an upstream error; it never carries the
// transport's text, which can hold addresses or URLs with query values.
func errorMessage(e *upstream.Error) string {
	switch e.Code {
	case normalize.CodeCircuitOpen:
		return "the vendor's circuit breaker is open; the vendor was not called"
	case normalize.CodeLocalRateLimited:
		return "rate limited by the proxy: " + e.Err.Error()
	case normalize.CodeDailyQuota:
		return "the vendor's daily quota is used up until midnight UTC"
	case normalize.CodeDeadlineExceeded:
		return "the vendor did not answer within the deadline"
	case normalize.CodeTransport:
		return "could not reach the vendor"
	}
	return e.Code
}

// bufs recycles the buffers envelopes are encoded into.
var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeEnvelope writes env as the answer, with Data spliced in verbatim as the last field.
func (s *Server) writeEnvelope(w http.ResponseWriter, r *http.Request, env normalize.Envelope) {
	rec := s.note(r, &env)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	setCommonHeaders(h, env)
	buf := bufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 { // keep no huge bulk answer's buffer around
			buf.Reset()
			bufs.Put(buf)
		}
	}()
	buf.Grow(512 + len(env.Data))
	if b, ok := env.AppendJSON(buf.AvailableBuffer()); ok {
		buf.Write(b) // in place: b is buf's own free space
	} else if err := json.NewEncoder(buf).Encode(env); err == nil {
		buf.Truncate(buf.Len() - 1) // Encode's newline
	} else { // cannot happen with these types
		s.log.Error("encode envelope", zap.String("request_id", rec.id), zap.Error(err))
		buf.Reset()
		buf.WriteString(`{"status":"internal","vendor":"","operation":"other","request_id":"","error":{"code":"internal"}}`)
		env.Data = nil
	}
	if env.Data != nil {
		buf.Truncate(buf.Len() - 1) // the closing brace, reopened for data
		buf.WriteString(`,"data":`)
		buf.Write(env.Data)
		buf.WriteByte('}')
	}
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	writeHeader(w, r, env.Status.HTTPCode())
	_, _ = w.Write(buf.Bytes())
}

// writeHeader starts the answer, and records that it has begun: after that, a panic can
// only cut it (ServeHTTP's end).
func writeHeader(w http.ResponseWriter, r *http.Request, code int) {
	recordOf(r).wrote = true
	w.WriteHeader(code)
}

// writeError writes an answer the proxy makes itself: an envelope, or in drop-in mode the
// vendor's own error shape.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, env normalize.Envelope) {
	if recordOf(r).raw {
		s.writeRawError(w, r, env)
		return
	}
	s.writeEnvelope(w, r, env)
}

// note completes env with the request id and records it for the access log and metrics.
func (s *Server) note(r *http.Request, env *normalize.Envelope) *record {
	rec := recordOf(r)
	env.RequestID = rec.id
	if (env.Status == normalize.StatusRateLimited || env.Status == normalize.StatusQuotaExceeded ||
		env.Status == normalize.StatusUnavailable) && env.RetryAfterSeconds <= 0 {
		env.RetryAfterSeconds = 1
	}
	rec.status, rec.qual = env.Status, env.Qualification
	if env.Vendor != "" {
		rec.vendor = env.Vendor
	}
	if env.Operation != "" {
		rec.op = env.Operation
	}
	if env.Upstream != nil {
		rec.upstreamStatus, rec.attempts = env.Upstream.Status, env.Upstream.Attempts
	}
	return rec
}

// setCommonHeaders sets Retry-After and X-Upstream-Status (SPEC 3.1).
func setCommonHeaders(h http.Header, env normalize.Envelope) {
	if env.RetryAfterSeconds > 0 {
		h.Set("Retry-After", strconv.Itoa(env.RetryAfterSeconds))
	}
	if env.Upstream != nil && env.Upstream.Status != 0 {
		h.Set("X-Upstream-Status", strconv.Itoa(env.Upstream.Status))
	}
}

// setEnrichHeaders sets the X-Enrich-* headers of streamed and drop-in answers.
func setEnrichHeaders(h http.Header, env normalize.Envelope) {
	h.Set("X-Enrich-Status", string(env.Status))
	h.Set("X-Enrich-Vendor", env.Vendor)
	h.Set("X-Enrich-Operation", string(env.Operation))
	if env.Qualification != "" {
		h.Set("X-Enrich-Qualification", string(env.Qualification))
	}
}

// writeStream passes a file or an oversized body through unchanged, with the vendor's
// status and content type and the X-Enrich-* headers (SPEC 3.5).
func (s *Server) writeStream(w http.ResponseWriter, r *http.Request, vendor string, op normalize.Operation, out *upstream.Outcome) {
	defer out.Stream.Close()
	st, _ := normalize.StatusForCode(out.StatusCode)
	env := normalize.Envelope{Status: st, Vendor: vendor, Operation: op,
		Upstream: &normalize.Upstream{Status: out.StatusCode, Attempts: out.Attempts, DurationMS: out.Duration.Milliseconds()}}
	s.note(r, &env)
	h := w.Header()
	for _, k := range []string{"Content-Type", "Content-Disposition", "Content-Length", "Last-Modified", "Retry-After"} {
		if v := out.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	setEnrichHeaders(h, env)
	h.Set("X-Upstream-Status", strconv.Itoa(out.StatusCode))
	writeHeader(w, r, out.StatusCode)
	if _, err := io.Copy(w, out.Stream); err != nil {
		s.log.Debug("stream interrupted", zap.String("request_id", recordOf(r).id), zap.Error(err))
	}
}
