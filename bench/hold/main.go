// Command hold is the slow-vendor memory probe: it holds N concurrent requests through a
// proxy, each on its own connection, while the upstream stand-in (run with -delay) keeps
// them waiting, and samples the proxy's memory meanwhile.
//
//	hold -url 'http://127.0.0.1:P/enrow/email/find/single?id=' -n 5000 -pid PID \
//	     [-heap-url http://127.0.0.1:A/metrics -heap-format prom|memstats] \
//	     [-upstream-stats http://127.0.0.1:U/_stats] [-timeout 30s]
//
// It prints one line of key=value pairs: requests answered 200 and failed, the largest
// number the upstream held at once, the proxy's RSS before the requests (idle) and its
// peak (VmHWM, the process's high-water mark: start a fresh process for each run), and
// the largest Go heap in use, goroutine stack memory and goroutine count seen while the
// requests were held.
// -pid may list several pids separated by commas (nginx's master and workers): their
// figures are summed.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "", "request URL prefix; a new id is appended to each request")
	n := flag.Int("n", 1000, "concurrent requests to hold")
	pids := flag.String("pid", "", "pid(s) of the proxy under test, comma-separated")
	heapURL := flag.String("heap-url", "", "where to read the proxy's Go heap figures")
	heapFormat := flag.String("heap-format", "prom", "prom (go_memstats_* of a /metrics page) or memstats (bench /memstats JSON)")
	upstreamStats := flag.String("upstream-stats", "", "the stand-in's /_stats URL")
	timeout := flag.Duration("timeout", 30*time.Second, "give up on a request after this long")
	dials := flag.Int("dial-concurrency", 256, "connections being opened at once (the listen backlog is finite)")
	flag.Parse()
	if *url == "" || *pids == "" {
		fmt.Fprintln(os.Stderr, "hold: -url and -pid are required")
		os.Exit(2)
	}

	idleRSS := rss(*pids, "VmRSS")
	idleHeap, idleStack, idleG := heap(*heapURL, *heapFormat)
	if *upstreamStats != "" {
		resp, err := http.Post(strings.TrimSuffix(*upstreamStats, "/")+"/reset", "", nil)
		if err == nil {
			resp.Body.Close()
		}
	}

	dialSem := make(chan struct{}, *dials)
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		DisableKeepAlives: true, // one connection per request, as N separate clients would
		MaxConnsPerHost:   0,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialSem <- struct{}{}
			defer func() { <-dialSem }()
			return dialer.DialContext(ctx, network, addr)
		},
	}
	client := &http.Client{Transport: tr, Timeout: *timeout}

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	done := make(chan struct{})
	var peakHeap, peakStack, peakG uint64
	var peakRSS uint64
	sampled := make(chan struct{})
	go func() { // sampler
		defer close(sampled)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			peakRSS = max(peakRSS, rss(*pids, "VmRSS"))
			h, s, g := heap(*heapURL, *heapFormat)
			peakHeap, peakStack, peakG = max(peakHeap, h), max(peakStack, s), max(peakG, g)
		}
	}()

	start := time.Now()
	nonce := start.UnixNano() & 0xffffffff
	for i := range *n {
		wg.Go(func() {
			id := fmt.Sprintf("%08x-%04x-4000-8000-%012x", nonce, 0xffff, i)
			resp, err := client.Get(*url + id)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, "HTTP "+resp.Status)
				return
			}
			ok.Add(1)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(done)
	<-sampled
	hwm := rss(*pids, "VmHWM")

	maxHeld := int64(-1)
	if *upstreamStats != "" {
		if resp, err := http.Get(*upstreamStats); err == nil {
			var st struct {
				MaxInflight int64 `json:"max_inflight"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			maxHeld = st.MaxInflight
		}
	}
	errText := ""
	if e, ok := firstErr.Load().(string); ok {
		errText = strconv.Quote(e)
	}
	fmt.Printf("n=%d ok=%d failed=%d elapsed_ms=%d upstream_max_held=%d idle_rss=%d peak_rss_sampled=%d vm_hwm=%d idle_heap_inuse=%d peak_heap_inuse=%d idle_stack_inuse=%d peak_stack_inuse=%d idle_goroutines=%d peak_goroutines=%d first_error=%s\n",
		*n, ok.Load(), failed.Load(), elapsed.Milliseconds(), maxHeld, idleRSS, peakRSS, hwm,
		idleHeap, peakHeap, idleStack, peakStack, idleG, peakG, errText)
}

// rss sums a /proc/<pid>/status figure (VmRSS, VmHWM) over pids, in bytes.
func rss(pids, field string) uint64 {
	var sum uint64
	for p := range strings.SplitSeq(pids, ",") {
		f, err := os.Open("/proc/" + strings.TrimSpace(p) + "/status")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				sum += kb * 1024
			}
		}
		f.Close()
	}
	return sum
}

var scrape = &http.Client{Timeout: 2 * time.Second}

// heap reads the proxy's Go heap in use, stack in use and goroutines; zeros when there is
// no URL.
func heap(url, format string) (heapInuse, stackInuse, goroutines uint64) {
	if url == "" {
		return 0, 0, 0
	}
	resp, err := scrape.Get(url)
	if err != nil {
		return 0, 0, 0
	}
	defer resp.Body.Close()
	if format == "memstats" {
		var m struct {
			HeapInuse  uint64 `json:"heap_inuse_bytes"`
			StackInuse uint64 `json:"stack_inuse_bytes"`
			Goroutines uint64 `json:"goroutines"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return m.HeapInuse, m.StackInuse, m.Goroutines
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for name, dst := range map[string]*uint64{"go_memstats_heap_inuse_bytes ": &heapInuse,
			"go_memstats_stack_inuse_bytes ": &stackInuse, "go_goroutines ": &goroutines} {
			if rest, ok := strings.CutPrefix(line, name); ok {
				f, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
				*dst = uint64(f)
			}
		}
	}
	return heapInuse, stackInuse, goroutines
}
