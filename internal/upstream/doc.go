// Package upstream owns the calls to the vendors: one Client per vendor with its own
// *http.Client, credential injection, the total deadline and per-attempt timeouts, retries
// with backoff and a retry budget, the 429 cool-down and remembered daily quota, the rate
// limiter, and one gobreaker circuit breaker.
//
// Every attempt's answer is classified by package normalize, so retry and breaker decisions
// use the same vocabulary as the envelope (Enrow's not-found 500 is not a failure). The
// package returns normalized answers and typed *Error values; it never writes envelope
// JSON, which is the proxy's job.
package upstream
