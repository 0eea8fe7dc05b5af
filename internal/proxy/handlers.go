package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
	"github.com/enrichproxy/enrichproxy/internal/upstream"
)

// handleVendor forwards /{vendor}/* (or /raw/{vendor}/* when raw) to the vendor and
// answers with the envelope (or the vendor's own answer in drop-in mode).
func (s *Server) handleVendor(vendor string, raw bool) http.Handler {
	client := s.cfg.Vendors[vendor]
	prefix := "/" + vendor
	if raw {
		prefix = "/raw/" + vendor
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recordOf(r)
		path := strings.TrimPrefix(r.URL.EscapedPath(), prefix)
		rec.vendor, rec.raw = vendor, raw
		rec.op = normalize.Classify(vendor, r.Method, strings.TrimPrefix(r.URL.Path, prefix))

		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		ctx, cancel := s.deadline(r)
		defer cancel()
		req := &upstream.Request{
			Method: r.Method, Path: path, RawQuery: r.URL.RawQuery,
			Header: r.Header, Body: body, RequestID: rec.id,
		}
		out, applied, err := s.forward(ctx, r, client, req, planWait(ctx, r))
		if applied != "" {
			w.Header().Set("Preference-Applied", applied)
		}
		s.respond(w, r, vendor, rec.op, out, err)
	})
}

// readBody reads the client's body up to the limit; over it the answer is 413 and nothing
// is forwarded (SPEC 5).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	tooLarge := func() ([]byte, bool) {
		rec := recordOf(r)
		s.writeError(w, r, normalize.ErrorEnvelope(rec.vendor, rec.op, normalize.StatusPayloadTooLarge,
			normalize.CodeBodyTooLarge, "request body exceeds "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes"))
		return nil, false
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return tooLarge()
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge()
		}
		rec := recordOf(r)
		s.writeError(w, r, normalize.ErrorEnvelope(rec.vendor, rec.op, normalize.StatusInvalidRequest,
			normalize.CodeInvalidInput, "could not read the request body"))
		return nil, false
	}
	return body, true
}

// deadline is the request's total deadline: X-Request-Timeout seconds when the client
// sends a positive number, else the configured default; never beyond the client's
// disconnect, since it derives from the request's context (SPEC 4).
func (s *Server) deadline(r *http.Request) (context.Context, context.CancelFunc) {
	d := s.cfg.RequestTimeout
	if v := r.Header.Get("X-Request-Timeout"); v != "" {
		if t, ok := parseRequestTimeout(v); ok {
			d = t
		}
	}
	return context.WithTimeout(r.Context(), d)
}

// parseRequestTimeout reads X-Request-Timeout: seconds ("2.5"), or a Go duration ("2500ms")
// for clients that send one; positive and below a day.
func parseRequestTimeout(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	d, err := time.ParseDuration(v)
	if secs, ferr := strconv.ParseFloat(v, 64); ferr == nil {
		d, err = time.Duration(secs*float64(time.Second)), nil
	}
	return d, err == nil && d > 0 && d < 24*time.Hour
}

// handleUnknownRoute answers every other path with 404 unknown_route.
func (s *Server) handleUnknownRoute(w http.ResponseWriter, r *http.Request) {
	rec := recordOf(r)
	s.writeError(w, r, normalize.ErrorEnvelope(rec.vendor, normalize.OpOther, normalize.StatusNotFound,
		normalize.CodeUnknownRoute, "no route for "+r.Method+" "+routeHint(r.URL)))
}

// routeHint names the first path segment only: a full path may carry ids.
func routeHint(u *url.URL) string {
	p := strings.TrimPrefix(u.Path, "/")
	first, _, _ := strings.Cut(p, "/")
	if len(first) > 32 {
		first = first[:32]
	}
	return "/" + first
}
