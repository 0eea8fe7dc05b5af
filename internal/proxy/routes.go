package proxy

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

// routes lists every route of the proxy listener (SPEC 1). The admin listener's routes
// are in admin.go.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	// Order matters: the request id first so that everything after can name the request;
	// the access log next, so that every answer below it — a recovered panic's 500, a
	// refused token, a drain — is logged and counted; recovery inside it so that its 500
	// envelope goes through the same writer; the gates (drain, proxy token, path escape,
	// deadline header) last.
	r.Use(s.requestID, s.accessLog, s.recoverPanic, s.gates)

	for _, v := range s.vendorNames() {
		r.Handle("/"+v, s.handleVendor(v, false))
		r.Handle("/"+v+"/*", s.handleVendor(v, false))
		// Drop-in mode (SPEC 10): the same pipeline, answered in the vendor's own dialect.
		r.Handle("/raw/"+v, s.handleVendor(v, true))
		r.Handle("/raw/"+v+"/*", s.handleVendor(v, true))
	}
	// The vendor-neutral API (SPEC 7).
	r.Post("/v1/email/find", s.handleV1(normalize.OpEmailFind))
	r.Post("/v1/email/verify", s.handleV1(normalize.OpEmailVerify))
	r.Post("/v1/phone/find", s.handleV1(normalize.OpPhoneFind))
	r.Get("/v1/results/{ref}", s.handleV1Result)

	r.NotFound(s.handleUnknownRoute)
	r.MethodNotAllowed(s.handleUnknownRoute)
	return r
}
