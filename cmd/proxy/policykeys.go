package main

import (
	"strconv"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/upstream"
)

// policyKey is one per-vendor policy setting, named as in the YAML file with nested keys
// joined by "_".
type policyKey struct {
	name string
	set  func(p *upstream.Policy, v string) error
}

var policyKeys = []policyKey{
	{"base_url", func(p *upstream.Policy, v string) error { p.BaseURL = v; return nil }},
	{"attempt_timeout", durationKey(func(p *upstream.Policy) *time.Duration { return &p.AttemptTimeout })},
	{"max_attempts", func(p *upstream.Policy, v string) (err error) { p.MaxAttempts, err = strconv.Atoi(v); return }},
	{"backoff_base", durationKey(func(p *upstream.Policy) *time.Duration { return &p.BackoffBase })},
	{"backoff_cap", durationKey(func(p *upstream.Policy) *time.Duration { return &p.BackoffCap })},
	{"max_retry_wait", durationKey(func(p *upstream.Policy) *time.Duration { return &p.MaxRetryWait })},
	{"retry_unsafe_post", func(p *upstream.Policy, v string) (err error) { p.RetryUnsafePost, err = strconv.ParseBool(v); return }},
	{"retry_budget_ratio", floatKey(func(p *upstream.Policy) *float64 { return &p.RetryBudget.Ratio })},
	{"retry_budget_min_per_second", floatKey(func(p *upstream.Policy) *float64 { return &p.RetryBudget.MinPerSecond })},
	{"retry_budget_window", durationKey(func(p *upstream.Policy) *time.Duration { return &p.RetryBudget.Window })},
	{"breaker_consecutive_failures", uint32Key(func(p *upstream.Policy) *uint32 { return &p.Breaker.ConsecutiveFailures })},
	{"breaker_failure_ratio", floatKey(func(p *upstream.Policy) *float64 { return &p.Breaker.FailureRatio })},
	{"breaker_min_requests", uint32Key(func(p *upstream.Policy) *uint32 { return &p.Breaker.MinRequests })},
	{"breaker_interval", durationKey(func(p *upstream.Policy) *time.Duration { return &p.Breaker.Interval })},
	{"breaker_open_timeout", durationKey(func(p *upstream.Policy) *time.Duration { return &p.Breaker.OpenTimeout })},
	{"breaker_half_open_requests", uint32Key(func(p *upstream.Policy) *uint32 { return &p.Breaker.HalfOpenRequests })},
	{"rate_limit_per_second", func(p *upstream.Policy, v string) error {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return err
		}
		if n == 0 {
			p.RateLimit = nil // 0 turns the limit off, like `rate_limit: null`
			return nil
		}
		if p.RateLimit == nil {
			p.RateLimit = &upstream.RateLimitPolicy{Methods: []string{"POST"}}
		}
		p.RateLimit.PerSecond = n
		return nil
	}},
	{"rate_limit_methods", func(p *upstream.Policy, v string) error {
		if p.RateLimit == nil {
			p.RateLimit = &upstream.RateLimitPolicy{}
		}
		p.RateLimit.Methods = splitList(v)
		return nil
	}},
	{"max_queue_wait", durationKey(func(p *upstream.Policy) *time.Duration { return &p.MaxQueueWait })},
	{"cache_ttl", durationKey(func(p *upstream.Policy) *time.Duration { return &p.CacheTTL })},
	{"cache_entries", func(p *upstream.Policy, v string) (err error) { p.CacheEntries, err = strconv.Atoi(v); return }},
	{"poll_interval", durationKey(func(p *upstream.Policy) *time.Duration { return &p.PollInterval })},
	{"credits_refresh", durationKey(func(p *upstream.Policy) *time.Duration { return &p.CreditsRefresh })},
}

func durationKey(field func(*upstream.Policy) *time.Duration) func(*upstream.Policy, string) error {
	return func(p *upstream.Policy, v string) (err error) { *field(p), err = parseDuration(v); return }
}

func floatKey(field func(*upstream.Policy) *float64) func(*upstream.Policy, string) error {
	return func(p *upstream.Policy, v string) (err error) { *field(p), err = strconv.ParseFloat(v, 64); return }
}

func uint32Key(field func(*upstream.Policy) *uint32) func(*upstream.Policy, string) error {
	return func(p *upstream.Policy, v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		*field(p) = uint32(n)
		return err
	}
}
