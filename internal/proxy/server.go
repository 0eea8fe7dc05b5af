package proxy

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/enrichproxy/enrichproxy/internal/metrics"
	"github.com/enrichproxy/enrichproxy/internal/upstream"
)

// Config holds what the proxy listener needs.
type Config struct {
	// Vendors maps a vendor name ("enrow", "ecore") to its client.
	Vendors map[string]*upstream.Client
	Log     *zap.Logger
	Metrics *metrics.Metrics
	// MaxBodyBytes is the largest client body accepted (SPEC 5).
	MaxBodyBytes int64
	// RequestTimeout is the total deadline when the client sends no X-Request-Timeout.
	RequestTimeout time.Duration
	// AuthTokens, when not empty, are the accepted X-Proxy-Token values.
	AuthTokens []string
	// Draining, when set, turns new requests away with 503 draining.
	Draining *atomic.Bool
	// VendorOrder is the /v1 selection and failover order.
	VendorOrder []string
}

// Server is the proxy listener's handler.
type Server struct {
	cfg     Config
	log     *zap.Logger
	access  *zap.Logger
	m       *metrics.Metrics
	mux     *chi.Mux
	handler http.Handler // mux, or a stand-in in tests
}

// New builds the proxy listener's handler.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Draining == nil {
		cfg.Draining = new(atomic.Bool)
	}
	s := &Server{cfg: cfg, log: cfg.Log.Named("proxy"), access: cfg.Log.Named("access"), m: cfg.Metrics}
	s.mux = s.routes()
	s.handler = s.mux
	return s
}

// vendorNames are the configured vendors, in a stable order.
func (s *Server) vendorNames() []string {
	names := make([]string, 0, len(s.cfg.Vendors))
	for n := range s.cfg.Vendors {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// tokenOK compares a presented proxy token with every configured one in constant time.
func (s *Server) tokenOK(presented string) bool {
	ok := 0
	for _, t := range s.cfg.AuthTokens {
		ok |= subtle.ConstantTimeCompare([]byte(presented), []byte(t))
	}
	return ok == 1
}
