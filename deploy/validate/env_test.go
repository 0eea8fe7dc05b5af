package validate

import (
	"strings"
)

// proxySettings are the proxy's own environment variables (SPEC 8, cmd/proxy/config.go).
// TestKnownEnvIsWhatTheProxyReads checks the running binary really knows each of them.
var proxySettings = []string{
	"PROXY_LISTEN", "PROXY_ADMIN_LISTEN", "PROXY_CONFIG", "PROXY_LOG_LEVEL",
	"PROXY_REQUEST_TIMEOUT", "PROXY_MAX_NORMALIZE_BYTES", "PROXY_SHUTDOWN_TIMEOUT",
	"PROXY_MAX_BODY_BYTES", "PROXY_REDIS_URL", "PROXY_VENDOR_ORDER",
}

// policyKeys are the per-vendor policy keys (cmd/proxy/policykeys.go): the YAML key with
// nested keys joined by "_", as ENROW_<KEY> and ECORE_<KEY>.
var policyKeys = []string{
	"base_url", "attempt_timeout", "max_attempts", "backoff_base", "backoff_cap",
	"max_retry_wait", "retry_unsafe_post", "retry_budget_ratio", "retry_budget_min_per_second",
	"retry_budget_window", "breaker_consecutive_failures", "breaker_failure_ratio",
	"breaker_min_requests", "breaker_interval", "breaker_open_timeout",
	"breaker_half_open_requests", "rate_limit_per_second", "rate_limit_methods",
	"max_queue_wait", "cache_ttl", "cache_entries", "poll_interval", "credits_refresh",
}

// vendors are the vendor prefixes of the policy keys.
var vendors = []string{"ENROW", "ECORE"}

// secretSettings are the credentials (SPEC 2, 8). In the manifests they come only from
// files (NAME_FILE, from a mounted Secret), never as NAME in the environment.
var secretSettings = []string{"ENROW_API_KEY", "ECORE_API_TOKEN", "PROXY_AUTH_TOKENS"}

// runtimeEnv is read by the Go runtime or standard library inside the proxy process
// (GOMEMLIMIT from the memory limit; HTTPS_PROXY, NO_PROXY and SSL_CERT_FILE per SPEC 1),
// not by its configuration.
var runtimeEnv = []string{
	"GOMEMLIMIT", "GOMAXPROCS", "GOGC", "GODEBUG",
	"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// knownEnv is every name the proxy's container may set, with what it is.
func knownEnv() map[string]string {
	known := map[string]string{}
	for _, n := range proxySettings {
		known[n] = "setting"
	}
	for _, v := range vendors {
		for _, k := range policyKeys {
			known[v+"_"+strings.ToUpper(k)] = "setting"
		}
	}
	for _, n := range secretSettings {
		known[n] = "secret"
		known[n+"_FILE"] = "secret file"
	}
	for _, n := range runtimeEnv {
		known[n] = "runtime"
	}
	return known
}
