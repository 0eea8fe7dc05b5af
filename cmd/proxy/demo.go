package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/vendorsim"
)

// Credentials of the simulated vendors in demo mode. They are not secrets: the
// simulators accept nothing else.
const (
	demoEnrowKey   = "demo-enrow-key"
	demoECoreToken = "demo-ecore-token"
)

// startDemo starts simulated Enrow and eCore servers on loopback and points the
// configuration at them, with their demo credentials injected by the proxy (unless the
// environment names others). Searches stay `ongoing` for two seconds, so Prefer: wait
// has something to do. It returns a function that stops the simulators.
func startDemo(cfg *config, getenv func(string) string) (func(), error) {
	opts := vendorsim.Options{PendingFor: 2 * time.Second}
	enrow := vendorsim.NewEnrow(vendorsim.Options{Keys: []string{demoEnrowKey}, PendingFor: opts.PendingFor})
	ecore := vendorsim.NewECore(vendorsim.Options{Keys: []string{demoECoreToken}, PendingFor: opts.PendingFor})
	var servers []*http.Server
	stop := func() {
		for _, s := range servers {
			_ = s.Close()
		}
	}
	for name, h := range map[string]http.Handler{"enrow": enrow, "ecore": ecore} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			stop()
			return nil, fmt.Errorf("demo %s simulator: %w", name, err)
		}
		s := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, s)
		go func() { _ = s.Serve(ln) }()
		p := cfg.Policies[name]
		p.BaseURL = "http://" + ln.Addr().String()
		cfg.Policies[name] = p
	}
	if cfg.Secrets["enrow"] == "" && getenv("ENROW_API_KEY") == "" {
		cfg.Secrets["enrow"] = demoEnrowKey
	}
	if cfg.Secrets["ecore"] == "" && getenv("ECORE_API_TOKEN") == "" {
		cfg.Secrets["ecore"] = demoECoreToken
	}
	return stop, nil
}

// printDemo prints curl lines a new user can paste.
func printDemo(w io.Writer, cfg config, proxyAddr, adminAddr string) {
	base, admin := "http://"+pasteable(proxyAddr), "http://"+pasteable(adminAddr)
	enrowSim := cfg.Policies["enrow"].BaseURL
	fmt.Fprintf(w, `
enrichproxy demo: simulated Enrow at %s, eCore at %s

  # one synchronous call, whichever vendor answers
  curl -s -X POST %s/v1/email/find -H 'Prefer: wait=30' \
       -d '{"full_name":"Tim Cook","company_domain":"apple.com"}'
  # start an Enrow email search (answers "pending" with an id), then poll it (ok/found after 2 s)
  curl -s -X POST %s/enrow/email/find/single -H 'Content-Type: application/json' \
       -d '{"fullname":"Tim Cook","company_domain":"apple.com"}'
  curl -s '%s/enrow/email/find/single?id=<id from above>'
  # eCore finds synchronously; "nobody" is never found
  curl -s -X POST %s/ecore/external/email/enrichment/ -H 'Content-Type: application/json' \
       -d '{"first_name":"Nobody","last_name":"Here","company_website":"example.com"}'
  # make the simulated Enrow fail 30 %% of calls, and watch retries and the breaker
  curl -s -X PUT %s/_sim/faults -d '{"error_rate":0.3}'
  curl -s %s/metrics | grep -E 'enrichproxy_(requests|retries)_total'

`, enrowSim, cfg.Policies["ecore"].BaseURL, base, base, base, base, enrowSim, admin)
}

// pasteable turns a listener address into one a client can dial: an unspecified host
// (":9090", "[::]:9090", "0.0.0.0:9090") becomes 127.0.0.1.
func pasteable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
