// Command upstream is the benchmark's vendor stand-in: it answers Enrow's single-result
// poll, GET /email/find/single?id=…, with one fixed finished-result body (331 bytes,
// benchsrv.EnrowResult), at once or after -delay. It does no work per request beyond
// counting, so that what a benchmark measures is the proxy in front of it.
//
//	upstream -listen 127.0.0.1:0 -addr-file /tmp/x/upstream.addr [-delay 2s] [-tls-cert-file F]
//
// With -tls-cert-file it serves HTTPS (and so HTTP/2 to clients that offer it) with a
// self-signed certificate for 127.0.0.1 made at start, written to F in PEM for the
// clients to trust (SSL_CERT_FILE=F): what a real vendor's API looks like to a proxy.
//
// GET /account/info answers {"credits": …} (enrichproxy reads it at start-up).
// GET /_stats answers {"requests": n, "inflight": n, "max_inflight": n}: the number of
// result polls served, and the most held at once (for the slow-vendor memory test);
// POST /_stats/reset restarts max_inflight.
package main

import (
	"crypto/tls"
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/enrichproxy/enrichproxy/bench/internal/benchsrv"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen address (loopback)")
	addrFile := flag.String("addr-file", "", "write the bound address to this file once listening")
	delay := flag.Duration("delay", 0, "answer each result poll after this long (a slow vendor)")
	certFile := flag.String("tls-cert-file", "", "serve HTTPS; write the self-signed certificate here")
	flag.Parse()
	srv := &http.Server{Handler: &benchsrv.Upstream{Delay: *delay}, ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute}
	if *certFile != "" {
		cert, err := benchsrv.SelfSigned(*certFile)
		if err != nil {
			log.Fatal(err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		// The stand-in holds thousands of requests at once: over HTTP/2 they share few
		// connections, so the per-connection stream limit must not queue them.
		srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 100000}
		log.Fatal(srv.ServeTLS(benchsrv.Listen(*listen, *addrFile), "", ""))
	}
	log.Fatal(srv.Serve(benchsrv.Listen(*listen, *addrFile)))
}
