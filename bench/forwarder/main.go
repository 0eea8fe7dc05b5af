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
	"flag"
	"log"

	"github.com/enrichproxy/enrichproxy/bench/internal/benchsrv"
)

func main() {
	upstream := flag.String("upstream", "", "the upstream base URL")
	listen := flag.String("listen", "127.0.0.1:0", "proxy listen address")
	addrFile := flag.String("addr-file", "", "write the bound proxy address here")
	adminListen := flag.String("admin-listen", "127.0.0.1:0", "admin listen address (/memstats)")
	adminAddrFile := flag.String("admin-addr-file", "", "write the bound admin address here")
	flag.Parse()
	benchsrv.ServeAdmin(benchsrv.Listen(*adminListen, *adminAddrFile))
	log.Fatal(benchsrv.Server(benchsrv.Forwarder(*upstream)).Serve(benchsrv.Listen(*listen, *addrFile)))
}
