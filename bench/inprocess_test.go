package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/enrichproxy/enrichproxy/bench/internal/benchsrv"
	"github.com/enrichproxy/enrichproxy/internal/metrics"
	"github.com/enrichproxy/enrichproxy/internal/proxy"
	"github.com/enrichproxy/enrichproxy/internal/upstream"
)

// enrichproxy builds the proxy listener's handler as cmd/proxy's run does, against the
// stand-in at base for Enrow.
func enrichproxy(tb testing.TB, base string) http.Handler {
	tb.Helper()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { devnull.Close() })
	// cmd/proxy newLogger: zap JSON lines, ISO 8601 times, a locked unbuffered writer.
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(devnull)), zapcore.InfoLevel))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg, "bench")
	limits := upstream.NewLocalLimits()
	clients := map[string]*upstream.Client{}
	for _, name := range []string{"enrow", "ecore"} {
		pol := upstream.DefaultPolicy(name)
		secret := "bench-token"
		if name == "enrow" {
			pol.BaseURL = base
			secret = "bench-key"
		}
		c, err := upstream.New(upstream.Config{Name: name, Policy: pol, Secret: secret,
			MaxNormalizeBytes: 16 << 20, Limits: limits, Metrics: m, Log: log})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(c.CloseIdleConnections)
		clients[name] = c
		m.InitVendor(name)
	}
	return proxy.New(proxy.Config{Vendors: clients, Log: log, Metrics: m, MaxBodyBytes: 10 << 20,
		RequestTimeout: 30 * time.Second, Draining: new(atomic.Bool), VendorOrder: []string{"enrow", "ecore"}})
}

// discard is a ResponseWriter that keeps the status and counts the body.
type discard struct {
	h      http.Header
	status int
	n      int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(code int)        { d.status = code }
func (d *discard) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// BenchmarkHandler drives each proxy's handler in process, for pprof:
//
//	go test ./bench -run '^$' -bench Handler -benchmem
//	go test -c -o bench.test ./bench
//	./bench.test -test.run '^$' -test.bench 'Handler/enrichproxy$' -test.benchtime 100000x \
//	    -test.cpuprofile cpu.out -test.memprofile mem.out
//	go tool pprof -top bench.test cpu.out
//
// It calls each proxy's handler directly from 64 goroutines (no inbound connection: the
// client side is a request built in place and a ResponseWriter that discards) for one
// GET /email/find/single?id=<new id> answered by the stand-in (benchsrv.Upstream, on a
// loopback httptest server in the same process, reached through each proxy's own pooled
// transport). enrichproxy is wired as cmd/proxy wires it: both vendors, default policies,
// a Prometheus registry with the Go and process collectors, and zap's JSON access log at
// info level written to /dev/null (an *os.File: one write(2) per line, as in production
// with stdout sent to /dev/null). The stand-in's own work is in every sub-benchmark alike,
// so the differences between them are the proxies'. A fixed -test.benchtime (100000x)
// makes CPU seconds in the profile comparable per request across sub-benchmarks.
func BenchmarkHandler(b *testing.B) {
	stand := &benchsrv.Upstream{}
	srv := httptest.NewServer(stand)
	b.Cleanup(srv.Close)
	target, _ := url.Parse(srv.URL)

	cases := []struct {
		name   string
		prefix string
		h      func(testing.TB) http.Handler
		check  string // a substring the answer's body must hold
	}{
		{"reverseproxy", "", func(testing.TB) http.Handler { return benchsrv.ReverseProxy(target) }, ""},
		{"forwarder", "", func(testing.TB) http.Handler { return benchsrv.Forwarder(srv.URL) }, ""},
		{"enrichproxy", "/enrow", func(tb testing.TB) http.Handler { return enrichproxy(tb, srv.URL) }, `"status":"ok","qualification":"found"`},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := c.h(b)
			// Check the answer once, with a recorder that keeps the body.
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.prefix+"/email/find/single?id=check", nil))
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), c.check) {
				b.Fatalf("answer %d %s", rec.Code, rec.Body)
			}

			ctx := context.Background()
			path := c.prefix + "/email/find/single"
			var seq atomic.Int64
			calls := stand.Requests()
			b.ReportAllocs()
			// 32 goroutines per P, as wrk -c64 keeps 64 requests in flight on 2 cores.
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := &discard{h: http.Header{}}
				for pb.Next() {
					i := seq.Add(1)
					// What net/http's server would hand the handler for a typical client.
					r := (&http.Request{
						Method: http.MethodGet, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
						URL:    &url.URL{Path: path, RawQuery: "id=" + fmt.Sprintf("%08x-0000-4000-8000-%012x", 0xbe, i)},
						Header: http.Header{"User-Agent": {"bench/1"}, "Accept": {"application/json"}},
						Host:   "127.0.0.1", RemoteAddr: "127.0.0.1:40000", RequestURI: path, Body: http.NoBody,
					}).WithContext(ctx)
					clear(w.h)
					w.status, w.n = 0, 0
					h.ServeHTTP(w, r)
					if w.status != http.StatusOK {
						b.Errorf("status %d", w.status)
						return
					}
				}
			})
			b.StopTimer()
			if got := stand.Requests() - calls; got != int64(b.N) {
				b.Fatalf("the stand-in served %d polls for %d requests", got, b.N)
			}
		})
	}
}
