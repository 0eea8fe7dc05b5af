// Command reverseproxy is the benchmark's baseline (c): a plain httputil.ReverseProxy to
// -upstream, with Rewrite/SetURL and the idle pool raised as enrichproxy's is
// (benchsrv.ReverseProxy). It does nothing else: no logging, no metrics, no retries.
//
//	reverseproxy -upstream http://127.0.0.1:PORT -listen 127.0.0.1:0 -addr-file F \
//	             -admin-listen 127.0.0.1:0 -admin-addr-file G
//
// GET /memstats on the admin listener answers the Go runtime's memory figures.
package main

import (
	"net/http"
	"net/url"

	"github.com/enrichproxy/enrichproxy/bench/internal/benchsrv"
)

func main() {
	benchsrv.Main(func(upstream *url.URL) http.Handler { return benchsrv.ReverseProxy(upstream) })
}
