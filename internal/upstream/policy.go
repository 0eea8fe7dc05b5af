package upstream

import (
	"net/http"
	"slices"
	"time"
)

// Policy is one vendor's resilience policy: the `vendors.<name>` block of the YAML file
// (SPEC 8). Every duration and count is used as given; DefaultPolicy supplies the SPEC's
// defaults.
type Policy struct {
	// BaseURL is the vendor's base URL; the vendor-relative path is appended to it.
	BaseURL string `yaml:"base_url"`
	// AttemptTimeout bounds one vendor call, headers and body.
	AttemptTimeout time.Duration `yaml:"attempt_timeout"`
	// MaxAttempts is the most calls made for one request, the first included.
	MaxAttempts int `yaml:"max_attempts"`
	// BackoffBase and BackoffCap shape the full-jitter exponential backoff between retries.
	BackoffBase time.Duration `yaml:"backoff_base"`
	BackoffCap  time.Duration `yaml:"backoff_cap"`
	// MaxRetryWait is the longest the proxy waits on a vendor's 429 (or its cool-down).
	MaxRetryWait time.Duration `yaml:"max_retry_wait"`
	// RetryUnsafePost retries a POST whose attempt failed after it was sent (it may have
	// been billed). Off by default.
	RetryUnsafePost bool          `yaml:"retry_unsafe_post"`
	RetryBudget     BudgetPolicy  `yaml:"retry_budget"`
	Breaker         BreakerPolicy `yaml:"breaker"`
	// RateLimit shapes the vendor's rate-limited operations; nil means no limit.
	RateLimit *RateLimitPolicy `yaml:"rate_limit"`
	// MaxQueueWait is the longest a request waits for a rate-limit token.
	MaxQueueWait time.Duration `yaml:"max_queue_wait"`
	// CacheTTL and CacheEntries bound the cache of final result GETs; 0 entries disables it.
	CacheTTL     time.Duration `yaml:"cache_ttl"`
	CacheEntries int           `yaml:"cache_entries"`
	// PollInterval is the time between result polls for Prefer: wait.
	PollInterval time.Duration `yaml:"poll_interval"`
	// CreditsRefresh is how often remaining credits are read where the vendor has an
	// endpoint for it (Enrow /account/info); 0 disables it.
	CreditsRefresh time.Duration `yaml:"credits_refresh"`
}

// BudgetPolicy bounds retries to a vendor over a sliding window: at most
// max(Ratio × requests in the window, MinPerSecond × window seconds).
type BudgetPolicy struct {
	Ratio        float64       `yaml:"ratio"`
	MinPerSecond float64       `yaml:"min_per_second"`
	Window       time.Duration `yaml:"window"`
}

// BreakerPolicy configures the vendor's circuit breaker.
type BreakerPolicy struct {
	// ConsecutiveFailures trips the breaker on that many failures in a row.
	ConsecutiveFailures uint32 `yaml:"consecutive_failures"`
	// FailureRatio trips it when at least MinRequests attempts in Interval failed in that ratio.
	FailureRatio float64       `yaml:"failure_ratio"`
	MinRequests  uint32        `yaml:"min_requests"`
	Interval     time.Duration `yaml:"interval"`
	// OpenTimeout is how long the breaker stays open before letting probes through.
	OpenTimeout time.Duration `yaml:"open_timeout"`
	// HalfOpenRequests is how many probes a half-open breaker lets through.
	HalfOpenRequests uint32 `yaml:"half_open_requests"`
}

// RateLimitPolicy is a token bucket with a burst of 1: requests are spaced 1/PerSecond apart.
type RateLimitPolicy struct {
	PerSecond float64  `yaml:"per_second"`
	Methods   []string `yaml:"methods"`
}

// DefaultPolicy returns the SPEC 8 defaults for vendor ("enrow" or "ecore").
func DefaultPolicy(vendor string) Policy {
	p := Policy{
		AttemptTimeout: 10 * time.Second,
		MaxAttempts:    3,
		BackoffBase:    200 * time.Millisecond,
		BackoffCap:     5 * time.Second,
		MaxRetryWait:   10 * time.Second,
		RetryBudget:    BudgetPolicy{Ratio: 0.2, MinPerSecond: 3, Window: 10 * time.Second},
		Breaker: BreakerPolicy{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20,
			Interval: 30 * time.Second, OpenTimeout: 30 * time.Second, HalfOpenRequests: 3},
		MaxQueueWait:   5 * time.Second,
		CacheTTL:       5 * time.Minute,
		CacheEntries:   10000,
		PollInterval:   2 * time.Second,
		CreditsRefresh: 5 * time.Minute,
	}
	switch vendor {
	case "enrow":
		p.BaseURL = "https://api.enrow.io"
		// vendors/enrow.md §4: 10 requests/second per API key on every POST; GETs unlimited.
		p.RateLimit = &RateLimitPolicy{PerSecond: 10, Methods: []string{http.MethodPost}}
	case "ecore":
		p.BaseURL = "https://app.ecoreservice.com/backend/api/v1"
	}
	return p
}

// shaped reports whether the rate limiter applies to method.
func (p Policy) shaped(method string) bool {
	return p.RateLimit != nil && p.RateLimit.PerSecond > 0 && slices.Contains(p.RateLimit.Methods, method)
}

// coolsDown reports whether a vendor 429's cool-down holds back method: the rate-limited
// operations (Enrow: POSTs; GETs go on), or every method when no rate limit is configured.
func (p Policy) coolsDown(method string) bool {
	return p.RateLimit == nil || slices.Contains(p.RateLimit.Methods, method)
}
