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
	"flag"
	"log"
	"net/url"

	"github.com/enrichproxy/enrichproxy/bench/internal/benchsrv"
)

func main() {
	upstream := flag.String("upstream", "", "the upstream base URL")
	listen := flag.String("listen", "127.0.0.1:0", "proxy listen address")
	addrFile := flag.String("addr-file", "", "write the bound proxy address here")
	adminListen := flag.String("admin-listen", "127.0.0.1:0", "admin listen address (/memstats)")
	adminAddrFile := flag.String("admin-addr-file", "", "write the bound admin address here")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" {
		log.Fatalf("-upstream: %q is not a URL", *upstream)
	}
	benchsrv.ServeAdmin(benchsrv.Listen(*adminListen, *adminAddrFile))
	log.Fatal(benchsrv.Server(benchsrv.ReverseProxy(target)).Serve(benchsrv.Listen(*listen, *addrFile)))
}
