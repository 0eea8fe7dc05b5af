package upstream

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

func TestCacheBounds(t *testing.T) {
	now := time.Now()
	c := newCache(time.Minute, 2)
	for _, k := range []string{"a", "b", "c"} {
		c.put(k, &Outcome{Body: []byte(k)}, now)
	}
	if c.get("a", now) != nil {
		t.Error("got the oldest of 3 entries in a 2-entry cache, want it evicted")
	}
	if c.get("c", now) == nil {
		t.Error("the newest entry is missing")
	}
	if c.get("b", now.Add(2*time.Minute)) != nil {
		t.Error("got an entry past its TTL")
	}
	big := newCache(time.Minute, 1000)
	body := []byte(strings.Repeat("x", maxCacheBytes/16))
	for i := range 20 {
		big.put(string(rune('a'+i)), &Outcome{Body: body}, now)
	}
	if big.bytes > maxCacheBytes {
		t.Errorf("got %d bytes kept, want at most %d", big.bytes, maxCacheBytes)
	}
	if newCache(0, 10) != nil || newCache(time.Minute, 0) != nil {
		t.Error("a zero TTL or size should disable the cache")
	}
	var none *cache
	none.put("a", &Outcome{}, now)
	if none.get("a", now) != nil {
		t.Error("a disabled cache answered")
	}
}

func TestFinalAndCacheable(t *testing.T) {
	cases := []struct {
		name string
		env  normalize.Envelope
		want bool
	}{
		{"found", normalize.Envelope{Status: normalize.StatusOK, Qualification: normalize.QualFound}, true},
		{"pending", normalize.Envelope{Status: normalize.StatusPending, Qualification: normalize.QualPending}, false},
		{"completed job", normalize.Envelope{Status: normalize.StatusOK, Job: &normalize.Job{State: normalize.JobCompleted}}, true},
		{"paused job", normalize.Envelope{Status: normalize.StatusOK, Job: &normalize.Job{State: normalize.JobPaused}}, false},
		{"a listing", normalize.Envelope{Status: normalize.StatusOK}, false},
		{"unknown id", normalize.Envelope{Status: normalize.StatusNotFound, Error: &normalize.Error{Code: normalize.CodeUnknownID}}, true},
		{"vendor error", normalize.Envelope{Status: normalize.StatusUpstreamError, Error: &normalize.Error{Code: normalize.CodeVendorError}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := final(&Outcome{Envelope: tc.env}); got != tc.want {
				t.Errorf("got final %v, want %v", got, tc.want)
			}
		})
	}
	for path, want := range map[string]bool{
		"/email/find/single": true, "/phone/bulk": true, "/account/info": false,
		"/email-validation/jobs/4/": true, "/email-validation/jobs/4/download/": false, "/external/search/": false,
	} {
		vendor := normalize.Enrow
		if strings.HasPrefix(path, "/e") && strings.Contains(path, "-") || strings.HasPrefix(path, "/external") {
			vendor = normalize.ECore
		}
		if got := cacheable(vendor, &Request{Method: http.MethodGet, Path: path}); got != want {
			t.Errorf("cacheable(%s %s) = %v, want %v", vendor, path, got, want)
		}
	}
	for v, want := range map[string]bool{"no-cache": true, "max-age=0": true, "public, no-store": true, "max-age=60": false, "": false} {
		if got := noCache(http.Header{"Cache-Control": {v}}); got != want {
			t.Errorf("noCache(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestCacheKeepsOnlyPassedHeaders: a cached answer keeps the headers an answer passes on
// (drop-in mode), not the vendor's whole header map.
func TestCacheKeepsOnlyPassedHeaders(t *testing.T) {
	now := time.Now()
	c := newCache(time.Minute, 10)
	c.put("k", &Outcome{Header: http.Header{"Content-Type": {"application/json"}, "Date": {"x"}, "Server": {"y"}}}, now)
	got := c.get("k", now)
	if got == nil || len(got.Header) != 1 || got.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %+v, want only Content-Type kept", got)
	}
	c.put("none", &Outcome{Header: http.Header{"Date": {"x"}}}, now)
	if got := c.get("none", now); got == nil || got.Header != nil {
		t.Fatalf("got %+v, want no header kept", got)
	}
}
