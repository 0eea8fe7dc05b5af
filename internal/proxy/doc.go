// Package proxy owns the proxy's HTTP surface: the chi routes (all in routes.go), the
// middleware in its written order, the vendor handlers, and the one writer of envelopes
// and of the errors the proxy answers itself.
//
// It talks to vendors only through package upstream.
package proxy
