package vendorsim

import (
	"net/http"
	"time"
)

// Options configure a simulator at construction.
type Options struct {
	// Keys are the accepted credentials (Enrow x-api-key; eCore token after "Token " or
	// "Bearer "). Empty means any non-empty value is accepted.
	Keys []string
	// PendingPolls is the number of result GETs per search or job answered "still
	// running" before the final answer: GET number PendingPolls+1 is final. 0 means final
	// on the first GET (unless PendingFor says otherwise).
	PendingPolls int
	// PendingFor is how long a search or job stays running after its creation. A result
	// GET is final when any configured condition holds: PendingPolls > 0 and that many GETs
	// were already answered "running", or PendingFor > 0 and PendingFor has elapsed since
	// creation (on the Now clock). When both are 0 the first GET is final. Once final, a
	// search or job stays final. Both are captured when the search or job is created.
	PendingFor time.Duration
	// Credits is the starting wallet balance; 0 means 1_000_000.
	Credits float64
	// Faults are the injected faults in force from the start (see SetFaults).
	Faults Faults
	// Legacy422 (Enrow) answers insufficient credits as 422 {"message":"Insufficient
	// balance"} as the older docs say, instead of 402.
	Legacy422 bool
	// BulkOngoing202 (Enrow) answers a bulk GET while ongoing with 202 (LLMS) instead of
	// 200 (DOCS-NEW).
	BulkOngoing202 bool
	// NoRateLimit (Enrow) turns off the documented 10 POSTs per second per key limit.
	NoRateLimit bool
	// DailyQuota (eCore) caps the requests one test token may make per UTC day; past it
	// every request is a 429 with the daily-cap body. 0 means no cap.
	DailyQuota int
	// Seed seeds the random source of the fault rates; 0 picks a random seed.
	Seed uint64
	// Now is the clock (pending time, rate limit window, daily quota, timestamps); nil
	// means time.Now.
	Now func() time.Time
}

// Faults are injected failures, applied to every request that no scripted Answer takes.
// Their JSON form (used by /_sim/faults) has snake_case keys and Go duration strings.
type Faults struct {
	// ErrorRate is the fraction of requests answered with ErrorStatus (503 by default).
	ErrorRate float64
	// ErrorStatus is the status of ErrorRate answers; 0 means 503.
	ErrorStatus int
	// RateLimitRate is the fraction of requests answered 429 (Enrow: {"message":"Too Many
	// Requests"}); there is no Retry-After header unless RetryAfter > 0.
	RateLimitRate float64
	// RetryAfter, when > 0, is sent on injected 429s as Retry-After in whole seconds
	// (rounded up).
	RetryAfter time.Duration
	// Latency is added before every answer; the wait ends early (with no answer) when the
	// request context is done.
	Latency time.Duration
	// Hang makes every request wait, unanswered, until the client goes away.
	Hang bool
	// HTMLErrors makes injected 5xx answers an HTML page (text/html) like a load
	// balancer's. The vendors' own documented JSON errors (e.g. Enrow's unknown-id 500)
	// stay JSON.
	HTMLErrors bool
}

// Answer is a scripted answer. Scripted answers are consumed in order, one per request,
// before faults and normal behaviour.
type Answer struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Header is added to the answer. Without a Content-Type, a non-empty Body is sent as
	// application/json.
	Header http.Header
	// Body is sent verbatim.
	Body string
	// Hang waits, unanswered, until the request context is done.
	Hang bool
	// Delay is waited before answering (cut short when the request context is done).
	Delay time.Duration
}

// Call is what reached a simulator.
type Call struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
	Time                   time.Time
}
