// Package benchsrv holds what the benchmark's baseline proxies share: listening on a
// loopback address (reporting the bound one), the upstream transport they use, and a
// tiny admin endpoint with the Go runtime's memory figures, the counterpart of
// enrichproxy's go_memstats_* metrics.
package benchsrv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"time"
)

// Transport is http.DefaultTransport's clone with the idle pool raised as enrichproxy's is
// (internal/upstream newTransport: 512 idle, 256 per host), so that every Go proxy in the
// comparison keeps its upstream connections alive the same way.
func Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// Listen listens on addr and writes the bound address to addrFile when it is not empty.
func Listen(addr, addrFile string) net.Listener {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	if addrFile != "" {
		if err := os.WriteFile(addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	return ln
}

// MemStats is what GET /memstats answers, in bytes.
type MemStats struct {
	HeapInuse  uint64 `json:"heap_inuse_bytes"`
	HeapAlloc  uint64 `json:"heap_alloc_bytes"`
	StackInuse uint64 `json:"stack_inuse_bytes"`
	Sys        uint64 `json:"sys_bytes"`
	Goroutines int    `json:"goroutines"`
}

// ServeAdmin serves GET /memstats on ln (runtime.ReadMemStats: a short stop of the
// world, fine at a few scrapes a second).
func ServeAdmin(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /memstats", func(w http.ResponseWriter, _ *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(MemStats{HeapInuse: m.HeapInuse, HeapAlloc: m.HeapAlloc,
			StackInuse: m.StackInuse, Sys: m.Sys, Goroutines: runtime.NumGoroutine()})
	})
	go func() { log.Fatal((&http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}).Serve(ln)) }()
}

// Server is the proxy listener's server, with enrichproxy's timeouts (cmd/proxy run.go).
func Server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute,
		IdleTimeout: 2 * time.Minute}
}

// SelfSigned makes a self-signed certificate for 127.0.0.1, valid for a day, and writes
// it to certFile in PEM, for clients to trust through SSL_CERT_FILE.
func SelfSigned(certFile string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "enrichproxy bench stand-in"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Main is a Go baseline's main: it reads -upstream, -listen, -addr-file, -admin-listen
// and -admin-addr-file, serves /memstats on the admin listener and handler(upstream) on
// the other, and exits if either fails.
func Main(handler func(upstream *url.URL) http.Handler) {
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
	ServeAdmin(Listen(*adminListen, *adminAddrFile))
	log.Fatal(Server(handler(target)).Serve(Listen(*listen, *addrFile)))
}
