package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"

	"github.com/enrichproxy/enrichproxy/internal/upstream"
)

// vendorNames are the vendors the proxy knows, in the default order.
var vendorNames = []string{"enrow", "ecore"}

// config is everything the proxy is run with (SPEC 8). Precedence: flag > env > file >
// default. Secrets come only from the environment or _FILE paths, never from flags.
type config struct {
	Listen            string
	AdminListen       string
	ConfigFile        string
	LogLevel          zapcore.Level
	RequestTimeout    time.Duration
	MaxNormalizeBytes int64
	ShutdownTimeout   time.Duration
	MaxBodyBytes      int64
	RedisURL          string
	AuthTokens        []string
	VendorOrder       []string
	Policies          map[string]upstream.Policy
	Secrets           map[string]string

	Demo  bool
	Check bool
	Help  bool // -h was asked for: usage is printed, nothing runs
}

// fileConfig is the YAML policy file: only `vendors` (unknown keys are errors). The
// policies are pointers to the defaults, so that the file's keys land on top of them
// (a map would be replaced whole) and `enrow: null` leaves the defaults as they are.
type fileConfig struct {
	Vendors struct {
		Enrow *upstream.Policy `yaml:"enrow"`
		ECore *upstream.Policy `yaml:"ecore"`
	} `yaml:"vendors"`
}

func defaultConfig() config {
	c := config{
		Listen:            "127.0.0.1:8080",
		AdminListen:       ":9090",
		LogLevel:          zapcore.InfoLevel,
		RequestTimeout:    30 * time.Second,
		MaxNormalizeBytes: 16 << 20,
		ShutdownTimeout:   25 * time.Second,
		MaxBodyBytes:      10 << 20,
		VendorOrder:       slices.Clone(vendorNames),
		Policies:          map[string]upstream.Policy{},
		Secrets:           map[string]string{},
	}
	for _, v := range vendorNames {
		c.Policies[v] = upstream.DefaultPolicy(v)
	}
	return c
}

// setting is one configuration value with its flag and environment names.
type setting struct {
	env, flag, usage string
	set              func(c *config, v string) error
}

// settings lists every non-secret setting; per-vendor policy keys follow the YAML names
// (ENROW_MAX_ATTEMPTS ↔ -enrow-max-attempts ↔ vendors.enrow.max_attempts).
func settings() []setting {
	s := []setting{
		{"PROXY_LISTEN", "listen", "proxy listener address", func(c *config, v string) error { c.Listen = v; return nil }},
		{"PROXY_ADMIN_LISTEN", "admin-listen", "admin listener address (/metrics, /healthz, /readyz)", func(c *config, v string) error { c.AdminListen = v; return nil }},
		{"PROXY_LOG_LEVEL", "log-level", "log level: debug, info, warn, error", func(c *config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
		{"PROXY_REQUEST_TIMEOUT", "request-timeout", "default total deadline of a request", durationSetter(func(c *config) *time.Duration { return &c.RequestTimeout })},
		{"PROXY_MAX_NORMALIZE_BYTES", "max-normalize-bytes", "larger vendor bodies are streamed", int64Setter(func(c *config) *int64 { return &c.MaxNormalizeBytes })},
		{"PROXY_SHUTDOWN_TIMEOUT", "shutdown-timeout", "drain limit on SIGTERM", durationSetter(func(c *config) *time.Duration { return &c.ShutdownTimeout })},
		{"PROXY_MAX_BODY_BYTES", "max-body-bytes", "client body limit", int64Setter(func(c *config) *int64 { return &c.MaxBodyBytes })},
		{"PROXY_REDIS_URL", "redis-url", "Redis URL for shared limits", func(c *config, v string) error { c.RedisURL = v; return nil }},
		{"PROXY_VENDOR_ORDER", "vendor-order", "/v1 vendor order, comma-separated", func(c *config, v string) error { c.VendorOrder = splitList(v); return nil }},
	}
	for _, vendor := range vendorNames {
		for _, k := range policyKeys {
			s = append(s, setting{
				env:   strings.ToUpper(vendor + "_" + k.name),
				flag:  vendor + "-" + strings.ReplaceAll(k.name, "_", "-"),
				usage: vendor + " policy: " + k.name,
				set: func(c *config, v string) error {
					p := c.Policies[vendor]
					if err := k.set(&p, v); err != nil {
						return err
					}
					c.Policies[vendor] = p
					return nil
				},
			})
		}
	}
	return s
}

// parseConfig reads the configuration from defaults, the YAML file, the environment and
// args, and returns every problem found, not just the first.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, []string) {
	c := defaultConfig()
	var problems []string
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := settings()
	values := make(map[string]*string, len(all))
	for _, st := range all {
		values[st.flag] = fs.String(st.flag, "", st.usage+" (env "+st.env+")")
	}
	configFile := fs.String("config", "", "YAML policy file (env PROXY_CONFIG)")
	fs.BoolVar(&c.Demo, "demo", false, "run against built-in simulated vendors")
	fs.BoolVar(&c.Check, "check", false, "validate the configuration, print every problem, and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.Help = true
			return c, nil
		}
		return c, []string{err.Error()}
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments: %q", fs.Args()))
	}
	setFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })

	c.ConfigFile = getenv("PROXY_CONFIG")
	if setFlags["config"] {
		c.ConfigFile = *configFile
	}
	if c.ConfigFile != "" {
		problems = append(problems, c.loadFile(c.ConfigFile)...)
	}
	for _, st := range all {
		v, from := getenv(st.env), st.env
		if setFlags[st.flag] {
			v, from = *values[st.flag], "-"+st.flag
		} else if v == "" {
			continue
		}
		if err := st.set(&c, strings.TrimSpace(v)); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", from, err))
		}
	}
	problems = append(problems, c.loadSecrets(getenv)...)
	problems = append(problems, c.validate()...)
	return c, problems
}

// loadFile applies the YAML policy file over the defaults.
func (c *config) loadFile(path string) []string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return []string{fmt.Sprintf("config file: %v", err)}
	}
	enrow, ecore := c.Policies["enrow"], c.Policies["ecore"]
	var fc fileConfig
	fc.Vendors.Enrow, fc.Vendors.ECore = &enrow, &ecore
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			out := make([]string, 0, len(te.Errors))
			for _, e := range te.Errors {
				out = append(out, fmt.Sprintf("config file %s: %s", path, e))
			}
			return out
		}
		return []string{fmt.Sprintf("config file %s: %v", path, err)}
	}
	if fc.Vendors.Enrow != nil {
		c.Policies["enrow"] = *fc.Vendors.Enrow
	}
	if fc.Vendors.ECore != nil {
		c.Policies["ecore"] = *fc.Vendors.ECore
	}
	return nil
}

// loadSecrets reads the credentials from NAME or NAME_FILE (trimmed of white space).
func (c *config) loadSecrets(getenv func(string) string) []string {
	var problems []string
	read := func(name string) string {
		v, file := getenv(name), getenv(name+"_FILE")
		if v != "" && file != "" {
			problems = append(problems, fmt.Sprintf("%s and %s_FILE are both set; set one", name, name))
		}
		if file != "" {
			b, err := os.ReadFile(file)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s_FILE: %v", name, err))
				return ""
			}
			return strings.TrimSpace(string(b))
		}
		return strings.TrimSpace(v)
	}
	// A Redis URL may hold a password: PROXY_REDIS_URL_FILE reads it from a mounted secret.
	if getenv("PROXY_REDIS_URL_FILE") != "" {
		if getenv("PROXY_REDIS_URL") != "" {
			problems = append(problems, "PROXY_REDIS_URL and PROXY_REDIS_URL_FILE are both set; set one")
		} else if b, err := os.ReadFile(getenv("PROXY_REDIS_URL_FILE")); err != nil {
			problems = append(problems, fmt.Sprintf("PROXY_REDIS_URL_FILE: %v", err))
		} else {
			c.RedisURL = strings.TrimSpace(string(b))
		}
	}
	c.Secrets["enrow"] = read("ENROW_API_KEY")
	c.Secrets["ecore"] = read("ECORE_API_TOKEN")
	if getenv("PROXY_AUTH_TOKENS_FILE") != "" && getenv("PROXY_AUTH_TOKENS") == "" {
		// One token per line in the file.
		c.AuthTokens = splitLines(read("PROXY_AUTH_TOKENS"))
	} else {
		c.AuthTokens = splitList(read("PROXY_AUTH_TOKENS"))
	}
	return problems
}

// validate reports every problem of a parsed configuration.
func (c *config) validate() []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	for name, addr := range map[string]string{"PROXY_LISTEN": c.Listen, "PROXY_ADMIN_LISTEN": c.AdminListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			add("%s: %q is not host:port", name, addr)
		}
	}
	positive := map[string]time.Duration{"PROXY_REQUEST_TIMEOUT": c.RequestTimeout, "PROXY_SHUTDOWN_TIMEOUT": c.ShutdownTimeout}
	for name, d := range positive {
		if d <= 0 {
			add("%s: must be positive, got %s", name, d)
		}
	}
	if c.MaxBodyBytes <= 0 {
		add("PROXY_MAX_BODY_BYTES: must be positive")
	}
	if c.MaxNormalizeBytes <= 0 {
		add("PROXY_MAX_NORMALIZE_BYTES: must be positive")
	}
	if c.RedisURL != "" {
		// go-redis's own parser, so that -check catches what start-up would refuse; its
		// error is not quoted, since it may repeat the URL's password.
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			add("PROXY_REDIS_URL: not a valid redis://host:port[/db] or rediss://… URL")
		}
	}
	seen := map[string]bool{}
	for _, v := range c.VendorOrder {
		if !slices.Contains(vendorNames, v) {
			add("PROXY_VENDOR_ORDER: unknown vendor %q", v)
		}
		if seen[v] {
			add("PROXY_VENDOR_ORDER: %q listed twice", v)
		}
		seen[v] = true
	}
	if len(c.VendorOrder) == 0 {
		add("PROXY_VENDOR_ORDER: empty")
	}
	for _, v := range vendorNames {
		for _, problem := range validatePolicy(c.Policies[v]) {
			add("%s: %s", v, problem)
		}
	}
	for _, t := range c.AuthTokens {
		if t == "" {
			add("PROXY_AUTH_TOKENS: empty token")
		}
	}
	slices.Sort(p)
	return p
}

func validatePolicy(p upstream.Policy) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("base_url: %q is not an http(s) URL", p.BaseURL)
	}
	for name, d := range map[string]time.Duration{"attempt_timeout": p.AttemptTimeout,
		"backoff_base": p.BackoffBase, "backoff_cap": p.BackoffCap, "retry_budget.window": p.RetryBudget.Window,
		"breaker.open_timeout": p.Breaker.OpenTimeout, "breaker.interval": p.Breaker.Interval, "poll_interval": p.PollInterval} {
		if d <= 0 {
			add("%s: must be positive, got %s", name, d)
		}
	}
	for name, d := range map[string]time.Duration{"max_retry_wait": p.MaxRetryWait, "max_queue_wait": p.MaxQueueWait,
		"cache_ttl": p.CacheTTL, "credits_refresh": p.CreditsRefresh} {
		if d < 0 {
			add("%s: must not be negative, got %s", name, d)
		}
	}
	if p.MaxAttempts < 1 {
		add("max_attempts: must be at least 1, got %d", p.MaxAttempts)
	}
	if p.RetryBudget.Ratio < 0 || p.RetryBudget.Ratio > 1 {
		add("retry_budget.ratio: must be within [0, 1], got %g", p.RetryBudget.Ratio)
	}
	if p.RetryBudget.MinPerSecond < 0 {
		add("retry_budget.min_per_second: must not be negative")
	}
	if p.Breaker.FailureRatio <= 0 || p.Breaker.FailureRatio > 1 {
		add("breaker.failure_ratio: must be within (0, 1], got %g", p.Breaker.FailureRatio)
	}
	if p.Breaker.HalfOpenRequests < 1 {
		add("breaker.half_open_requests: must be at least 1")
	}
	if p.CacheEntries < 0 {
		add("cache_entries: must not be negative")
	}
	if rl := p.RateLimit; rl != nil {
		if rl.PerSecond < 0 {
			add("rate_limit.per_second: must not be negative")
		}
		for _, m := range rl.Methods {
			if m != strings.ToUpper(m) || m == "" {
				add("rate_limit.methods: %q is not an upper-case HTTP method", m)
			}
		}
	}
	return out
}

func splitList(v string) []string {
	var out []string
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func splitLines(v string) []string {
	var out []string
	for line := range strings.SplitSeq(v, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

func durationSetter(field func(*config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := parseDuration(v)
		*field(c) = d
		return err
	}
}

func int64Setter(field func(*config) *int64) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		*field(c) = n
		return err
	}
}

// parseDuration takes a Go duration ("30s") or a bare number of seconds ("30").
func parseDuration(v string) (time.Duration, error) {
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(secs * float64(time.Second)), nil
	}
	return time.ParseDuration(v)
}
