// Command forwarder is the benchmark's baseline (d): the least a proxy built on net/http
// can do (benchsrv.Forwarder). One pooled client call per request, the answer read whole
// and written back with its status and content type: the ceiling for enrichproxy, which
// must also read the answer whole to normalize it.
//
//	forwarder -upstream http://127.0.0.1:PORT -listen 127.0.0.1:0 -addr-file F \
//	          -admin-listen 127.0.0.1:0 -admin-addr-file G
//
// GET /memstats on the admin listener answers the Go runtime's memory figures.
package main

import (
	"net/http"
	"net/url"

	"github.com/enrichproxy/enrichproxy/bench/internal/benchsrv"
)

func main() {
	benchsrv.Main(func(upstream *url.URL) http.Handler { return benchsrv.Forwarder(upstream.String()) })
}
