package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/vendorsim"
)

// TestCoalescing: identical concurrent GETs reach a slow vendor once and all get the
// answer, each with its own request id.
func TestCoalescing(t *testing.T) {
	h := start(t)
	id := post(t, h, "/enrow/email/find/single", timCook)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // never leave the vendor stuck
	arrived := make(chan struct{}, 64)
	h.enrow.OnRequest(func(vendorsim.Call) {
		arrived <- struct{}{}
		<-release // the vendor is slow until every client has asked
	})
	const n = 20
	answers := make(chan answer, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { answers <- h.do("GET", "/enrow/email/find/single?id="+id, "") })
	}
	<-arrived
	// Every client has sent its request once the proxy counts them in flight; wait for
	// that on /metrics rather than for time to pass.
	waitInflight(t, h, n)
	once.Do(func() { close(release) })
	wg.Wait()
	close(answers)
	ids := map[string]bool{}
	for a := range answers {
		if a.code != 200 || a.env.Qualification != "found" {
			t.Errorf("got %d %s/%s, want 200 ok/found", a.code, a.env.Status, a.env.Qualification)
		}
		ids[a.env.RequestID] = true
	}
	if got := h.enrow.CallCount(); got != 2 { // the POST and one shared GET
		t.Errorf("got %d vendor calls for 1 POST and %d identical GETs, want 2", got, n)
	}
	if len(ids) != n {
		t.Errorf("got %d distinct request ids among %d answers, want each its own", len(ids), n)
	}
}

// waitInflight waits until the proxy counts n requests in flight to Enrow.
func waitInflight(t *testing.T, h *harness, n int) {
	t.Helper()
	want := `enrichproxy_inflight_requests{vendor="enrow"} ` + strconv.Itoa(n)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(h.metricsText(t), want) {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %s", want)
		}
	}
}

// metricsText scrapes the admin listener's /metrics.
func (h *harness) metricsText(t *testing.T) string {
	t.Helper()
	resp, err := h.client.Get(h.adminURL + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: got %d, want 200\n%s", resp.StatusCode, b)
	}
	return string(b)
}

// TestCache: a final answer is served from the cache within the TTL; a pending one never
// is; Cache-Control: no-cache skips it; different credentials never share an entry. (The
// TTL's end is tested with an explicit clock in internal/upstream, TestCacheBounds.)
func TestCache(t *testing.T) {
	t.Run("a final answer is served from the cache", func(t *testing.T) {
		h := start(t)
		id := post(t, h, "/enrow/email/find/single", timCook)
		first := h.do("GET", "/enrow/email/find/single?id="+id, "")
		calls := h.enrow.CallCount()
		second := h.do("GET", "/enrow/email/find/single?id="+id, "")
		if h.enrow.CallCount() != calls {
			t.Errorf("the vendor was called again for a cached final answer")
		}
		if second.code != 200 || second.env.Qualification != "found" || string(second.env.Data) != string(first.env.Data) {
			t.Errorf("got %d %s %s, want the first answer again", second.code, second.env.Qualification, second.raw)
		}
		if second.env.RequestID == first.env.RequestID {
			t.Error("a cached answer kept the first request's id")
		}
		if second.env.Upstream != nil {
			t.Errorf("got upstream %+v on a cache hit, want none: the vendor was not called", second.env.Upstream)
		}
		h.do("GET", "/enrow/email/find/single?id="+id, "", "Cache-Control", "no-cache")
		if h.enrow.CallCount() != calls+1 {
			t.Errorf("Cache-Control: no-cache was answered from the cache")
		}
	})
	t.Run("an unknown id is kept, an error is not", func(t *testing.T) {
		h := start(t)
		h.do("GET", "/enrow/email/find/single?id=nope", "")
		h.do("GET", "/enrow/email/find/single?id=nope", "")
		if got := h.enrow.CallCount(); got != 1 {
			t.Errorf("got %d vendor calls for an unknown id asked twice, want 1", got)
		}
		h.enrow.Script(vendorsim.Answer{Status: 400, Body: `{"message":"Missing id in the query params"}`},
			vendorsim.Answer{Status: 400, Body: `{"message":"Missing id in the query params"}`})
		h.do("GET", "/enrow/phone/single", "")
		h.do("GET", "/enrow/phone/single", "")
		if got := h.enrow.CallCount(); got != 3 {
			t.Errorf("got %d vendor calls in all, want 3: a 400 is never cached", got)
		}
	})
	t.Run("a pending answer is never served from the cache", func(t *testing.T) {
		h := start(t, withEnrow(func(o *vendorsim.Options) { o.PendingPolls = 2 }))
		id := post(t, h, "/enrow/email/find/single", timCook)
		for i, want := range []int{202, 202, 200, 200} {
			a := h.do("GET", "/enrow/email/find/single?id="+id, "")
			if a.code != want {
				t.Errorf("GET %d: got %d, want %d", i+1, a.code, want)
			}
		}
		if got := h.enrow.CallCount(); got != 4 { // POST, two pending GETs, one final GET
			t.Errorf("got %d vendor calls, want 4", got)
		}
	})
	t.Run("different credentials never share an entry", func(t *testing.T) {
		h := start(t, withEnv("ENROW_API_KEY", ""), withEnrow(func(o *vendorsim.Options) { o.Keys = []string{"key-a", "key-b"} }))
		a := h.do("POST", "/enrow/email/find/single", timCook, "x-api-key", "key-a")
		id := idOf(t, a)
		h.do("GET", "/enrow/email/find/single?id="+id, "", "x-api-key", "key-a")
		calls := h.enrow.CallCount()
		h.do("GET", "/enrow/email/find/single?id="+id, "", "x-api-key", "key-b")
		if h.enrow.CallCount() != calls+1 {
			t.Error("a second credential was answered from the first credential's cache entry")
		}
	})
	t.Run("POSTs and downloads are never cached", func(t *testing.T) {
		h := start(t)
		post(t, h, "/enrow/email/find/single", timCook)
		post(t, h, "/enrow/email/find/single", timCook)
		id := post(t, h, "/ecore/email-validation/jobs/upload/", `{"emails":["a@apple.com"]}`)
		h.do("GET", "/ecore/email-validation/jobs/"+id+"/download/", "")
		h.do("GET", "/ecore/email-validation/jobs/"+id+"/download/", "")
		if got := h.enrow.CallCount() + h.ecore.CallCount(); got != 5 {
			t.Errorf("got %d vendor calls, want 5", got)
		}
	})
	_ = http.MethodGet
}
