package proxy

import (
	"github.com/go-chi/chi/v5"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

// routes lists every route of the proxy listener (SPEC 1). The admin listener's routes
// are in admin.go.
// What every request goes through before its route (request id, access log, panic
// recovery, gates) is in ServeHTTP (middleware.go).
func (s *Server) routes() *chi.Mux {
	r := chi.NewRouter()

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
