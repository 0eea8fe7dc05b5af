package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/enrichproxy/enrichproxy/internal/vendorsim"
)

// TestWhatReachesTheVendor checks SPEC 1 and 2 on the wire: the path, query and body are
// kept, credentials are injected (client ones removed), cookies, hop-by-hop, forwarding and
// proxy headers are not forwarded, and the request id is.
func TestWhatReachesTheVendor(t *testing.T) {
	clientHeaders := []string{
		"x-api-key", "client-enrow-key", "Authorization", "Token client-ecore-token",
		"Cookie", "session=s3cr3t", "X-Forwarded-For", "10.1.2.3", "X-Forwarded-Host", "app.internal",
		"X-Proxy-Token", "pt", "Prefer", "wait=1", "X-Request-Timeout", "5",
		"Connection", "X-Hop", "X-Hop", "hop-value", "Proxy-Authorization", "Basic abc",
		"X-Request-Id", "req-abc-123", "User-Agent", "my-app/1.0",
	}
	absent := []string{"Cookie", "X-Forwarded-For", "X-Forwarded-Host", "X-Proxy-Token", "Prefer",
		"X-Request-Timeout", "X-Hop", "Proxy-Authorization"}
	cases := []struct {
		name       string
		opts       []func(*setup)
		method     string
		path       string
		body       string
		vendor     func(h *harness) []vendorsim.Call
		wantPath   string
		wantQuery  string
		wantHeader map[string]string // "" means absent
	}{
		{name: "configured Enrow key replaces the client's; Authorization is never sent to Enrow",
			method: "POST", path: "/enrow/email/find/single?foo=bar", body: timCook,
			vendor:   func(h *harness) []vendorsim.Call { return h.enrow.Calls() },
			wantPath: "/email/find/single", wantQuery: "foo=bar",
			wantHeader: map[string]string{"X-Api-Key": enrowKey, "Authorization": "", "X-Request-Id": "req-abc-123",
				"User-Agent": "my-app/1.0", "Content-Type": "application/json"}},
		{name: "configured eCore token is sent as Token; x-api-key is never sent to eCore",
			method: "GET", path: "/ecore/external/search/?job_level=C+Level&limit=2",
			vendor:   func(h *harness) []vendorsim.Call { return h.ecore.Calls() },
			wantPath: "/external/search/", wantQuery: "job_level=C+Level&limit=2",
			wantHeader: map[string]string{"Authorization": "Token " + ecoreToken, "X-Api-Key": ""}},
		{name: "eCore enrichment job endpoints get Bearer",
			method: "POST", path: "/ecore/enrichment/submit/", body: `{"records":[{"first_name":"Tim","last_name":"Cook","company_name":"Apple"}]}`,
			vendor:     func(h *harness) []vendorsim.Call { return h.ecore.Calls() },
			wantPath:   "/enrichment/submit/",
			wantHeader: map[string]string{"Authorization": "Bearer " + ecoreToken}},
		{name: "eCore enrichment-control gets Bearer",
			method: "POST", path: "/ecore/enrichment-control/", body: `{"csv_file_id":"x","action":"pause"}`,
			vendor:     func(h *harness) []vendorsim.Call { return h.ecore.Calls() },
			wantPath:   "/enrichment-control/",
			wantHeader: map[string]string{"Authorization": "Bearer " + ecoreToken}},
		{name: "without a configured key the client's own Enrow key passes through",
			opts:   []func(*setup){withEnv("ENROW_API_KEY", ""), withEnrow(func(o *vendorsim.Options) { o.Keys = []string{"client-enrow-key"} })},
			method: "GET", path: "/enrow/account/info",
			vendor:     func(h *harness) []vendorsim.Call { return h.enrow.Calls() },
			wantPath:   "/account/info",
			wantHeader: map[string]string{"X-Api-Key": "client-enrow-key", "Authorization": ""}},
		{name: "without a configured token the client's own Authorization passes through to eCore",
			opts:   []func(*setup){withEnv("ECORE_API_TOKEN", ""), withECore(func(o *vendorsim.Options) { o.Keys = []string{"client-ecore-token"} })},
			method: "GET", path: "/ecore/external/search/",
			vendor:     func(h *harness) []vendorsim.Call { return h.ecore.Calls() },
			wantPath:   "/external/search/",
			wantHeader: map[string]string{"Authorization": "Token client-ecore-token", "X-Api-Key": ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, tc.opts...)
			a := h.do(tc.method, tc.path, tc.body, clientHeaders...)
			if a.code >= 500 {
				t.Fatalf("got %d\n%s", a.code, a.raw)
			}
			call := lastCall(t, tc.vendor(h))
			if call.Method != tc.method || call.Path != tc.wantPath || call.RawQuery != tc.wantQuery {
				t.Errorf("got %s %s?%s, want %s %s?%s", call.Method, call.Path, call.RawQuery, tc.method, tc.wantPath, tc.wantQuery)
			}
			if !bytes.Equal(call.Body, []byte(tc.body)) {
				t.Errorf("got body %q, want %q", call.Body, tc.body)
			}
			for k, want := range tc.wantHeader {
				if got := call.Header.Get(k); got != want {
					t.Errorf("got %s %q, want %q", k, got, want)
				}
			}
			for _, k := range absent {
				if v := call.Header.Values(k); len(v) > 0 {
					t.Errorf("got %s %q forwarded, want it dropped", k, v)
				}
			}
		})
	}
}

// TestDataIsVerbatim: the vendor's body is in `data` byte for byte, not re-encoded.
func TestDataIsVerbatim(t *testing.T) {
	h := start(t)
	body := "{ \"credits\" : 12.50,\n  \"webhooks\": [\"https://example.com/a?b=<c>&d\"] , \"x\":\"\\u00e9\"}"
	h.enrow.Script(vendorsim.Answer{Status: 200, Body: body})
	a := h.do("GET", "/enrow/account/info", "")
	if !bytes.Equal(a.env.Data, []byte(body)) {
		t.Errorf("got data %q, want %q", a.env.Data, body)
	}
	if !bytes.HasSuffix(a.raw, []byte(`"data":`+body+`}`)) {
		t.Errorf("got answer %q, want it to end with the vendor's body verbatim", a.raw)
	}
}

// TestProxyToken: with PROXY_AUTH_TOKENS, every proxied request needs one of them.
func TestProxyToken(t *testing.T) {
	h := start(t, withEnv("PROXY_AUTH_TOKENS", " alpha , bravo "))
	for _, tc := range []struct {
		name  string
		token string
		want  int
	}{
		{"no token", "", 401},
		{"wrong token", "charlie", 401},
		{"a prefix of a token", "alph", 401},
		{"first token", "alpha", 200},
		{"second token", "bravo", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.token != "" {
				hdr = []string{"X-Proxy-Token", tc.token}
			}
			before := h.enrow.CallCount()
			a := h.do("GET", "/enrow/account/info", "", hdr...)
			if a.code != tc.want {
				t.Fatalf("got %d, want %d\n%s", a.code, tc.want, a.raw)
			}
			if tc.want == 401 {
				if a.env.Error == nil || a.env.Error.Code != "proxy_auth" || a.env.Status != "unauthorized" {
					t.Errorf("got %+v, want unauthorized/proxy_auth", a.env)
				}
				if h.enrow.CallCount() != before {
					t.Error("the vendor was called for a request without a valid proxy token")
				}
			}
		})
	}
}

// TestAccessLogHoldsNoSecrets: one access line per request with only the allowed fields,
// and no credential, body, email or query value anywhere in the log.
func TestAccessLogHoldsNoSecrets(t *testing.T) {
	h := start(t, withEnv("PROXY_AUTH_TOKENS", "proxy-token-5e6f", "PROXY_LOG_LEVEL", "debug"))
	secretQuery := "secret-query-value-0a1b"
	a := h.do("POST", "/enrow/email/find/single?tag="+secretQuery, `{"fullname":"Tim Cook","company_domain":"apple.com"}`,
		"X-Proxy-Token", "proxy-token-5e6f", "x-api-key", "client-key-c0ffee", "Cookie", "sid=cookie-9d8c")
	id := idOf(t, a)
	h.do("GET", "/enrow/email/find/single?id="+id, "", "X-Proxy-Token", "proxy-token-5e6f")
	h.do("POST", "/ecore/external/phone/enrichment/", `{"email":"jane.doe@example.org"}`, "X-Proxy-Token", "proxy-token-5e6f")
	h.do("GET", "/enrow/account/info", "") // refused: no token
	h.shutdown()

	logs := h.logs.String()
	for _, secret := range []string{enrowKey, ecoreToken, "proxy-token-5e6f", "client-key-c0ffee", "cookie-9d8c",
		secretQuery, id, "tim.cook@apple.com", "jane.doe@example.org", "Tim Cook", "apple.com", "+1"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
	allowed := map[string]bool{"level": true, "ts": true, "logger": true, "msg": true, "request_id": true, "method": true,
		"vendor": true, "operation": true, "route": true, "status": true, "upstream_status": true, "attempts": true,
		"duration_ms": true, "breaker": true}
	var accessLines int
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"logger":"access"`) {
			continue
		}
		accessLines++
		for _, field := range jsonKeys(t, line) {
			if !allowed[field] {
				t.Errorf("access line has field %q, not on the allow-list: %s", field, line)
			}
		}
	}
	if accessLines != 4 {
		t.Errorf("got %d access lines, want 4 (one per request)", accessLines)
	}
}

// TestRequestID: a client's id is echoed and sent to the vendor; without one, one is made.
func TestRequestID(t *testing.T) {
	h := start(t)
	a := h.do("GET", "/enrow/account/info", "", "X-Request-Id", "client-id-42")
	if a.header.Get("X-Request-Id") != "client-id-42" || a.env.RequestID != "client-id-42" {
		t.Errorf("got %q / %q, want the client's id echoed", a.header.Get("X-Request-Id"), a.env.RequestID)
	}
	if got := lastCall(t, h.enrow.Calls()).Header.Get("X-Request-Id"); got != "client-id-42" {
		t.Errorf("vendor got X-Request-Id %q, want client-id-42", got)
	}
	b := h.do("GET", "/enrow/account/info", "")
	c := h.do("GET", "/enrow/account/info", "")
	if b.env.RequestID == "" || b.env.RequestID == c.env.RequestID {
		t.Errorf("got generated ids %q and %q, want two different ids", b.env.RequestID, c.env.RequestID)
	}
}

// TestAdminEndpoints: health, readiness and metrics on the admin listener.
func TestAdminEndpoints(t *testing.T) {
	h := start(t)
	h.do("GET", "/enrow/account/info", "")
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200} {
		resp, err := h.client.Get(h.adminURL + path)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: got %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/metrics" {
			for _, name := range []string{`enrichproxy_requests_total{operation="account",qualification="",status="ok",vendor="enrow"} 1`,
				"enrichproxy_build_info", `enrichproxy_circuit_state{vendor="enrow"} 0`, "go_goroutines", "process_"} {
				if !strings.Contains(buf.String(), name) {
					t.Errorf("/metrics lacks %s", name)
				}
			}
		}
	}
	_ = http.StatusOK
}
