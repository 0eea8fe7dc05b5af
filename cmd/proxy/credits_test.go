package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/vendorsim"
)

// TestCreditsRefresh: Enrow's balance reaches enrichproxy_credits_remaining from
// GET /account/info at start-up, though no client asked for it.
func TestCreditsRefresh(t *testing.T) {
	h := start(t, withEnv("ENROW_CREDITS_REFRESH", "1h"), withEnrow(func(o *vendorsim.Options) { o.Credits = 1234.5 }))
	if err := h.enrow.WaitCalls(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	call := lastCall(t, h.enrow.Calls())
	if call.Method != "GET" || call.Path != "/account/info" || call.Header.Get("X-Api-Key") != enrowKey {
		t.Fatalf("got %s %s with key %q, want GET /account/info with the configured key", call.Method, call.Path, call.Header.Get("X-Api-Key"))
	}
	// The gauge is set once the answer has been read, just after the call arrived: scrape
	// until it shows, within a bound.
	want := `enrichproxy_credits_remaining{vendor="enrow"} 1234.5`
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := h.client.Get(h.adminURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %s", want)
		}
	}
}
