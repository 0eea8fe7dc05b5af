package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrichproxy/enrichproxy/bench/internal/benchsrv"
	"github.com/enrichproxy/enrichproxy/internal/metrics"
	"github.com/enrichproxy/enrichproxy/internal/upstream"
)

// BenchmarkHeld attributes the memory of a request held by a slow vendor (what
// bench/memory.sh measures from outside) to the layers of the proxy. Run one
// sub-benchmark per process: stack memory freed by one is reused by the next, which
// blurs the stack figures otherwise.
//
//	go test -c -o /tmp/bench.test ./bench
//	for t in direct reverseproxy reverseproxy_1k_buffers forwarder enrichproxy_client_only enrichproxy; do
//	    /tmp/bench.test -test.run '^$' -test.bench "Held/$t\$" -test.benchtime 1x
//	done
//
// Each iteration holds heldN requests at once, each on its own connection, through a
// proxy on a loopback httptest server to the stand-in answering after heldDelay, all in
// this process; once the stand-in holds them all, it reads the runtime's figures. Reported
// per held request: stack-B and heap-B (StackInuse and HeapInuse over the figures before,
// after a GC so that the heap is what is live) and goroutines. Client and stand-in are in
// every sub-benchmark alike (direct is them alone), so a sub-benchmark's figures minus
// direct's are its proxy's. enrichproxy_client_only serves each request with a bare
// handler calling enrichproxy's upstream.Client.Do and writing the vendor's body: the
// difference between it and enrichproxy is the router, the middleware and the envelope.
// reverseproxy_1k_buffers shows what the transport's buffer sizes are worth.
// With HELD_PROFILE_DIR set, each sub-benchmark also writes there the goroutine profile
// and the heap profile taken during the hold: which goroutines and which allocations a
// held request keeps alive.
func BenchmarkHeld(b *testing.B) {
	const heldN = 1000
	const heldDelay = 1500 * time.Millisecond
	stand := &benchsrv.Upstream{Delay: heldDelay}
	vendor := httptest.NewServer(stand)
	b.Cleanup(vendor.Close)
	target, _ := url.Parse(vendor.URL)

	cases := []struct {
		name, prefix string
		h            func(testing.TB) http.Handler
	}{
		{"direct", "", nil},
		{"reverseproxy", "", func(testing.TB) http.Handler { return benchsrv.ReverseProxy(target) }},
		// The same with the transport's per-connection buffers cut from 4 KiB to 1 KiB.
		{"reverseproxy_1k_buffers", "", func(testing.TB) http.Handler {
			rp := benchsrv.ReverseProxy(target).(*httputil.ReverseProxy)
			tr := rp.Transport.(*http.Transport)
			tr.ReadBufferSize, tr.WriteBufferSize = 1024, 1024
			return rp
		}},
		{"forwarder", "", func(testing.TB) http.Handler { return benchsrv.Forwarder(vendor.URL) }},
		{"enrichproxy_client_only", "", func(tb testing.TB) http.Handler { return clientOnly(tb, vendor.URL) }},
		{"enrichproxy", "/enrow", func(tb testing.TB) http.Handler { return enrichproxy(tb, vendor.URL) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			base := vendor.URL
			if c.h != nil {
				srv := httptest.NewServer(c.h(b))
				defer srv.Close()
				base = srv.URL
			}
			for b.Loop() {
				stack, heap, goroutines := hold(b, stand, base+c.prefix+"/email/find/single?id=", heldN)
				b.ReportMetric(stack, "stack-B/held")
				b.ReportMetric(heap, "heap-B/held")
				b.ReportMetric(goroutines, "goroutines/held")
			}
		})
	}
}

// hold sends n requests at once, each on its own connection, and measures the process
// while the stand-in holds them all.
func hold(b *testing.B, stand *benchsrv.Upstream, url string, n int) (stack, heap, goroutines float64) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}
	defer client.CloseIdleConnections()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	held0 := stand.Inflight()

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			resp, err := client.Get(url + fmt.Sprintf("held-%d-%d", time.Now().UnixNano(), i))
			if err != nil {
				errs <- err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for stand.Inflight()-held0 < int64(n) {
		if ctx.Err() != nil {
			b.Fatalf("only %d of %d requests reached the stand-in", stand.Inflight()-held0, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	g1 := runtime.NumGoroutine()
	if dir := os.Getenv("HELD_PROFILE_DIR"); dir != "" {
		// While the requests are held: the goroutines grouped by stack (debug=1 text), and
		// the live heap (after the GC above; go tool pprof -sample_index=inuse_space).
		name := filepath.Join(dir, strings.ReplaceAll(b.Name(), "/", "_"))
		for file, profile := range map[string]string{".goroutines.txt": "goroutine", ".heap.pb.gz": "heap"} {
			f, err := os.Create(name + file)
			if err != nil {
				b.Fatal(err)
			}
			debug := 0
			if profile == "goroutine" {
				debug = 1
			}
			_ = pprof.Lookup(profile).WriteTo(f, debug)
			f.Close()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return float64(during.StackInuse-before.StackInuse) / float64(n),
		float64(int64(during.HeapInuse)-int64(before.HeapInuse)) / float64(n),
		float64(g1-g0) / float64(n)
}

// clientOnly serves each request by calling enrichproxy's upstream client for Enrow and
// writing the vendor's body: enrichproxy without its router, middleware and envelope.
func clientOnly(tb testing.TB, base string) http.Handler {
	pol := upstream.DefaultPolicy("enrow")
	pol.BaseURL = base
	c, err := upstream.New(upstream.Config{Name: "enrow", Policy: pol, Secret: "bench-key", MaxNormalizeBytes: 16 << 20,
		Metrics: metrics.New(prometheus.NewRegistry(), "bench")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.CloseIdleConnections)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := c.Do(r.Context(), &upstream.Request{Method: r.Method, Path: r.URL.EscapedPath(),
			RawQuery: r.URL.RawQuery, Header: r.Header})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(out.StatusCode)
		_, _ = w.Write(out.Body)
	})
}
