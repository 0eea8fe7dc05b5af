package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/vendorsim"
)

func envOf(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigPrecedence: flag > env > file > default, for top-level and per-vendor settings.
func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "policy.yaml", `
vendors:
  enrow:
    max_attempts: 5
    attempt_timeout: 7s
    base_url: https://file.example
  ecore:
    rate_limit: {per_second: 4}
`)
	cases := []struct {
		name          string
		args          []string
		env           map[string]string
		wantAttempts  int
		wantTimeout   time.Duration
		wantBase      string
		wantAdmin     string
		wantECoreRate float64
	}{
		{name: "defaults", wantAttempts: 3, wantTimeout: 10 * time.Second, wantBase: "https://api.enrow.io", wantAdmin: ":9090"},
		{name: "file over defaults", args: []string{"-config", file},
			wantAttempts: 5, wantTimeout: 7 * time.Second, wantBase: "https://file.example", wantAdmin: ":9090", wantECoreRate: 4},
		{name: "env over file", args: []string{"-config", file},
			env:          map[string]string{"ENROW_MAX_ATTEMPTS": "2", "ENROW_BASE_URL": "https://env.example", "PROXY_ADMIN_LISTEN": "127.0.0.1:9999"},
			wantAttempts: 2, wantTimeout: 7 * time.Second, wantBase: "https://env.example", wantAdmin: "127.0.0.1:9999", wantECoreRate: 4},
		{name: "flag over env", args: []string{"-config", file, "-enrow-max-attempts", "4", "-enrow-base-url", "https://flag.example", "-admin-listen", "127.0.0.1:9998"},
			env:          map[string]string{"ENROW_MAX_ATTEMPTS": "2", "ENROW_BASE_URL": "https://env.example", "PROXY_ADMIN_LISTEN": "127.0.0.1:9999"},
			wantAttempts: 4, wantTimeout: 7 * time.Second, wantBase: "https://flag.example", wantAdmin: "127.0.0.1:9998", wantECoreRate: 4},
		{name: "file named by PROXY_CONFIG", env: map[string]string{"PROXY_CONFIG": file},
			wantAttempts: 5, wantTimeout: 7 * time.Second, wantBase: "https://file.example", wantAdmin: ":9090", wantECoreRate: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, problems := parseConfig(tc.args, envOf(tc.env), &bytes.Buffer{})
			if len(problems) > 0 {
				t.Fatalf("got problems %q, want none", problems)
			}
			p := c.Policies["enrow"]
			if p.MaxAttempts != tc.wantAttempts || p.AttemptTimeout != tc.wantTimeout || p.BaseURL != tc.wantBase {
				t.Errorf("got max_attempts %d, attempt_timeout %s, base_url %s; want %d, %s, %s",
					p.MaxAttempts, p.AttemptTimeout, p.BaseURL, tc.wantAttempts, tc.wantTimeout, tc.wantBase)
			}
			if c.AdminListen != tc.wantAdmin {
				t.Errorf("got admin listen %q, want %q", c.AdminListen, tc.wantAdmin)
			}
			var rate float64
			if rl := c.Policies["ecore"].RateLimit; rl != nil {
				rate = rl.PerSecond
			}
			if rate != tc.wantECoreRate {
				t.Errorf("got ecore rate %g, want %g", rate, tc.wantECoreRate)
			}
			if rl := c.Policies["enrow"].RateLimit; rl == nil || rl.PerSecond != 10 || len(rl.Methods) != 1 || rl.Methods[0] != "POST" {
				t.Errorf("got enrow rate limit %+v, want 10/s on POST", rl)
			}
		})
	}
}

// TestConfigRateLimitNull: `rate_limit: null` turns the Enrow limit off.
func TestConfigRateLimitNull(t *testing.T) {
	file := writeFile(t, "p.yaml", "vendors:\n  enrow:\n    rate_limit: null\n")
	c, problems := parseConfig([]string{"-config", file}, envOf(nil), &bytes.Buffer{})
	if len(problems) > 0 || c.Policies["enrow"].RateLimit != nil {
		t.Errorf("got problems %q, rate limit %+v; want none and nil", problems, c.Policies["enrow"].RateLimit)
	}
}

// TestConfigSecrets: secrets from env or _FILE, trimmed; tokens from a file one per line.
func TestConfigSecrets(t *testing.T) {
	keyFile := writeFile(t, "key", "  file-key-123\n")
	tokens := writeFile(t, "tokens", "alpha\n\n bravo \n")
	c, problems := parseConfig(nil, envOf(map[string]string{
		"ENROW_API_KEY_FILE": keyFile, "ECORE_API_TOKEN": " env-token \n", "PROXY_AUTH_TOKENS_FILE": tokens,
	}), &bytes.Buffer{})
	if len(problems) > 0 {
		t.Fatalf("got problems %q", problems)
	}
	if c.Secrets["enrow"] != "file-key-123" || c.Secrets["ecore"] != "env-token" {
		t.Errorf("got secrets %q, want trimmed values", c.Secrets)
	}
	if strings.Join(c.AuthTokens, ",") != "alpha,bravo" {
		t.Errorf("got tokens %q, want alpha, bravo", c.AuthTokens)
	}
	redisFile := writeFile(t, "redis", "redis://:pa55@127.0.0.1:6379/0\n")
	c, problems = parseConfig(nil, envOf(map[string]string{"PROXY_REDIS_URL_FILE": redisFile}), &bytes.Buffer{})
	if len(problems) > 0 || c.RedisURL != "redis://:pa55@127.0.0.1:6379/0" {
		t.Errorf("got %q, %q; want the Redis URL from its file", c.RedisURL, problems)
	}
	_, problems = parseConfig(nil, envOf(map[string]string{"PROXY_REDIS_URL": "redis://:pa55@127.0.0.1:6379/0?dial_timeout=soon"}), &bytes.Buffer{})
	if len(problems) != 1 || strings.Contains(problems[0], "pa55") {
		t.Errorf("got problems %q, want one about the Redis URL that does not repeat its password", problems)
	}
	c, _ = parseConfig(nil, envOf(map[string]string{"PROXY_AUTH_TOKENS": "a, b ,c"}), &bytes.Buffer{})
	if strings.Join(c.AuthTokens, ",") != "a,b,c" {
		t.Errorf("got tokens %q, want a, b, c", c.AuthTokens)
	}
}

// TestCheckReportsEveryProblem: -check prints every problem at once and fails.
func TestCheckReportsEveryProblem(t *testing.T) {
	file := writeFile(t, "bad.yaml", "vendors:\n  enrow:\n    max_attempts: 0\n    colour: blue\n  acme: {}\n")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-check", "-config", file, "-enrow-backoff-base", "soon"},
		envOf(map[string]string{"PROXY_LISTEN": "nonsense", "ECORE_BASE_URL": "ftp://x", "PROXY_VENDOR_ORDER": "enrow,acme",
			"ENROW_API_KEY_FILE": "/does/not/exist"}), &stdout, &stderr)
	if err == nil {
		t.Fatal("got nil error, want a failed check")
	}
	for _, want := range []string{"colour", "-enrow-backoff-base", "PROXY_LISTEN", "ecore: base_url", "PROXY_VENDOR_ORDER", "ENROW_API_KEY_FILE"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, stderr.String())
		}
	}
	stdout.Reset()
	stderr.Reset()
	if err := run(context.Background(), []string{"-check"}, envOf(nil), &stdout, &stderr); err != nil {
		t.Fatalf("valid config: got %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "configuration OK") {
		t.Errorf("got %q, want configuration OK", stdout.String())
	}
}

// TestFlagsAreNotSecrets: there is no flag for a credential.
func TestFlagsAreNotSecrets(t *testing.T) {
	for _, st := range settings() {
		for _, bad := range []string{"key", "token", "secret", "password"} {
			if strings.Contains(st.flag, bad) {
				t.Errorf("flag -%s looks like a secret", st.flag)
			}
		}
	}
}

// TestHealthcheckAndVersion: the subcommands a container needs without a shell.
func TestHealthcheckAndVersion(t *testing.T) {
	h := start(t)
	admin := strings.TrimPrefix(h.adminURL, "http://")
	if err := run(context.Background(), []string{"healthcheck"}, envOf(map[string]string{"PROXY_ADMIN_LISTEN": admin}), &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Errorf("healthcheck against a running proxy: got %v, want nil", err)
	}
	if err := run(context.Background(), []string{"healthcheck", "-admin-listen", "127.0.0.1:1"}, envOf(nil), &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("healthcheck with nothing listening: got nil, want an error")
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, envOf(nil), &out, &bytes.Buffer{}); err != nil || !strings.HasPrefix(out.String(), "enrichproxy ") {
		t.Errorf("version: got %q, %v", out.String(), err)
	}
}

// TestDrain: on shutdown, readiness goes off, an in-flight request (a slow vendor) still
// gets its answer, new connections are refused, and run returns nil.
func TestDrain(t *testing.T) {
	h := start(t)
	arrived := make(chan struct{}, 1)
	h.enrow.OnRequest(func(vendorsim.Call) { arrived <- struct{}{} })
	h.enrow.Script(vendorsim.Answer{Status: 200, Body: `{"credits":5}`, Delay: 300 * time.Millisecond})
	got := make(chan answer, 1)
	go func() { got <- h.do("GET", "/enrow/account/info", "") }()
	<-arrived
	go h.shutdown()
	a := <-got
	if a.code != 200 || a.env.Status != "ok" {
		t.Errorf("in-flight request during drain: got %d %q, want 200 ok", a.code, a.env.Status)
	}
	h.shutdown() // waits for run to return
	if _, err := h.client.Get(h.proxyURL + "/enrow/account/info"); err == nil {
		t.Error("a new request after the drain was served, want refused")
	}
}
