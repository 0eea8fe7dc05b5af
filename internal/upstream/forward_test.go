package upstream

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

// TestForwardCredentials checks credential injection (SPEC 2): a configured credential
// replaces whatever the client sent, in the vendor's header and scheme; without one the
// client's own header for that vendor passes through; the other vendor's header never does.
func TestForwardCredentials(t *testing.T) {
	tests := []struct {
		name       string
		vendor     string
		secret     string
		path       string
		header     http.Header
		wantAPIKey string // x-api-key at the vendor; "" means absent
		wantAuth   string // Authorization at the vendor; "" means absent
	}{
		{
			name: "Enrow key replaces the client's and drops Authorization", vendor: normalize.Enrow, secret: "ENROW-KEY",
			path:       "/email/find/single",
			header:     http.Header{"X-Api-Key": {"client-key"}, "Authorization": {"Bearer client"}},
			wantAPIKey: "ENROW-KEY",
		},
		{
			name: "Enrow without a configured key passes the client's through", vendor: normalize.Enrow,
			path:       "/email/find/single",
			header:     http.Header{"X-Api-Key": {"client-key"}, "Authorization": {"Token other-vendor"}},
			wantAPIKey: "client-key",
		},
		{
			name: "eCore Token on the finder", vendor: normalize.ECore, secret: "ECORE",
			path:     "/external/email/enrichment/",
			header:   http.Header{"X-Api-Key": {"client-key"}, "Authorization": {"Token client"}},
			wantAuth: "Token ECORE",
		},
		{
			name: "eCore Bearer on /enrichment/", vendor: normalize.ECore, secret: "ECORE",
			path:     "/enrichment/submit/",
			header:   http.Header{"Authorization": {"Token client"}},
			wantAuth: "Bearer ECORE",
		},
		{
			name: "eCore Bearer on /enrichment-control/", vendor: normalize.ECore, secret: "ECORE",
			path:     "/enrichment-control/",
			wantAuth: "Bearer ECORE",
		},
		{
			name: "eCore Token on a path that only starts like enrichment", vendor: normalize.ECore, secret: "ECORE",
			path:     "/enrichments/",
			wantAuth: "Token ECORE",
		},
		{
			name: "eCore without a configured token passes the client's through", vendor: normalize.ECore,
			path:     "/external/search/",
			header:   http.Header{"X-Api-Key": {"enrow-key"}, "Authorization": {"Token client"}},
			wantAuth: "Token client",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVendor(t, answer{status: 200, body: `{}`})
			c, _ := newClient(t, Config{Name: tc.vendor, Secret: tc.secret, Policy: testPolicy(v.URL())})

			if _, err := c.Do(t.Context(), &Request{Method: http.MethodGet, Path: tc.path, Header: tc.header}); err != nil {
				t.Fatal(err)
			}

			got := v.waitArrival(t).header
			if key := got.Get("X-Api-Key"); key != tc.wantAPIKey {
				t.Errorf("got x-api-key %q, want %q", key, tc.wantAPIKey)
			}
			if auth := got.Get("Authorization"); auth != tc.wantAuth {
				t.Errorf("got Authorization %q, want %q", auth, tc.wantAuth)
			}
		})
	}
}

// TestForwardHeaders checks the forwarding rules (SPEC 1): hop-by-hop headers (also those
// named in Connection), Cookie, X-Forwarded-*, Forwarded and the proxy's own headers stay
// behind; the request id and the rest go on.
func TestForwardHeaders(t *testing.T) {
	v := newVendor(t, answer{status: 200, body: searchStarted})
	c, _ := newClient(t, Config{Policy: testPolicy(v.URL()), Secret: "K"})
	in := http.Header{
		"Connection":          {"X-Hop"},
		"X-Hop":               {"1"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Authorization": {"Basic cHJveHk="},
		"Te":                  {"trailers"},
		"Cookie":              {"session=1"},
		"X-Forwarded-For":     {"10.0.0.1"},
		"X-Forwarded-Proto":   {"https"},
		"Forwarded":           {"for=10.0.0.1"},
		"X-Proxy-Token":       {"inbound-secret"},
		"Prefer":              {"wait=10"},
		"X-Request-Timeout":   {"5"},
		"X-Request-Id":        {"client-chosen"},
		"Content-Type":        {"application/json"},
		"Accept":              {"application/json"},
		"X-Custom":            {"kept"},
	}
	before := in.Clone()

	if _, err := c.Do(t.Context(), &Request{Method: http.MethodPost, Path: "/email/find/single",
		Header: in, Body: []byte(`{}`), RequestID: "req-42"}); err != nil {
		t.Fatal(err)
	}

	got := v.waitArrival(t).header
	for _, h := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Authorization", "Te", "Cookie",
		"X-Forwarded-For", "X-Forwarded-Proto", "Forwarded", "X-Proxy-Token", "Prefer", "X-Request-Timeout"} {
		if vs, ok := got[h]; ok {
			t.Errorf("got %s: %q at the vendor, want it not forwarded", h, vs)
		}
	}
	for h, want := range map[string]string{"X-Request-Id": "req-42", "Content-Type": "application/json",
		"Accept": "application/json", "X-Custom": "kept", "X-Api-Key": "K"} {
		if g := got.Get(h); g != want {
			t.Errorf("got %s: %q at the vendor, want %q", h, g, want)
		}
	}
	for k, vs := range before {
		if g := in[k]; len(g) != len(vs) || g[0] != vs[0] {
			t.Errorf("the client's header %s changed to %q, want %q untouched", k, g, vs)
		}
	}
	if len(in) != len(before) {
		t.Errorf("the client's headers went from %d to %d, want untouched", len(before), len(in))
	}
}

// TestForwardBodyOnRetry checks that a retried request resends the body byte for byte.
func TestForwardBodyOnRetry(t *testing.T) {
	v := newVendor(t, answer{status: 503, body: generic500}, answer{status: 502, body: generic500},
		answer{status: 200, body: searchStarted})
	c, _ := newClient(t, Config{Policy: testPolicy(v.URL())})
	body := []byte("{\"fullname\":\"Zoë \\u00e9\",\"raw\":\"\x00\xff\r\n\"}")

	out, err := c.Do(t.Context(), &Request{Method: http.MethodPost, Path: "/email/find/single",
		Header: http.Header{"Content-Type": {"application/json"}}, Body: body})

	wantEnvelope(t, out, err, normalize.StatusPending, "")
	calls := v.received()
	if len(calls) != 3 {
		t.Fatalf("got %d vendor calls, want 3", len(calls))
	}
	for i, c := range calls {
		if !bytes.Equal(c.body, body) {
			t.Errorf("call %d: got body %q, want %q", i+1, c.body, body)
		}
		if c.method != http.MethodPost || c.uri != "/email/find/single" {
			t.Errorf("call %d: got %s %s, want POST /email/find/single", i+1, c.method, c.uri)
		}
	}
}

// TestForwardTarget checks the vendor URL: base path, then the client's path as escaped,
// and the query kept as sent.
func TestForwardTarget(t *testing.T) {
	v := newVendor(t, answer{status: 200, body: `{"qualification":"valid","email":"tim@apple.com"}`})
	c, _ := newClient(t, Config{Policy: testPolicy(v.URL() + "/backend/api/v1/")})

	if _, err := c.Do(t.Context(), get("/email/find/single?id=a%2Bb&x=1")); err != nil {
		t.Fatal(err)
	}

	if got, want := v.waitArrival(t).uri, "/backend/api/v1/email/find/single?id=a%2Bb&x=1"; got != want {
		t.Errorf("got %s at the vendor, want %s", got, want)
	}
}
