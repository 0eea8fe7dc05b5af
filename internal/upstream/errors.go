package upstream

import (
	"errors"
	"fmt"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

// ErrCircuitOpen is wrapped by the Error returned while a vendor's breaker refuses calls.
var ErrCircuitOpen = errors.New("circuit open")

// Error is an answer the upstream edge makes itself, without (or instead of) the vendor's:
// breaker open, local rate limit, remembered daily quota, deadline, transport failure.
// The proxy turns it into an envelope with Status and Code.
type Error struct {
	Status normalize.Status
	Code   string
	// RetryAfter is when trying again makes sense; 0 when it does not apply.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Code, e.Err)
	}
	return e.Code
}

func (e *Error) Unwrap() error { return e.Err }

func circuitOpen(retryAfter time.Duration, cause error) *Error {
	return &Error{Status: normalize.StatusUnavailable, Code: normalize.CodeCircuitOpen,
		RetryAfter: retryAfter, Err: fmt.Errorf("%w: %w", ErrCircuitOpen, cause)}
}

func localRateLimited(retryAfter time.Duration, why string) *Error {
	return &Error{Status: normalize.StatusRateLimited, Code: normalize.CodeLocalRateLimited,
		RetryAfter: retryAfter, Err: errors.New(why)}
}

func deadlineExceeded(cause error) *Error {
	return &Error{Status: normalize.StatusTimeout, Code: normalize.CodeDeadlineExceeded, Err: cause}
}

func transportFailed(cause error) *Error {
	return &Error{Status: normalize.StatusUpstreamError, Code: normalize.CodeTransport, Err: cause}
}

func quotaRemembered(retryAfter time.Duration) *Error {
	return &Error{Status: normalize.StatusQuotaExceeded, Code: normalize.CodeDailyQuota,
		RetryAfter: retryAfter, Err: errors.New("daily quota exceeded; remembered until midnight UTC")}
}
