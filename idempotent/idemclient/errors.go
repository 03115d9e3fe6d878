package idemclient

import (
	"fmt"
	"net/http"
)

// InvalidKeyError reports a caller-supplied Idempotency-Key header that is
// not a valid key (contract §4). The request is not sent.
type InvalidKeyError struct {
	// Reason says what is wrong.
	Reason string
}

func (e *InvalidKeyError) Error() string {
	return "idemclient: invalid Idempotency-Key header: " + e.Reason
}

// AttemptError is the transport error of the last attempt of a guarded
// request when the client gives up on it (not retryable, attempts bound,
// the context's deadline or cancellation, a body that cannot be sent
// again). It unwraps to that error, so errors.Is(err,
// context.DeadlineExceeded) and errors.As(err, *net.OpError) still work.
// The request may or may not have reached the server: send it again later
// with Key to learn its outcome.
type AttemptError struct {
	// Key is the idempotency key of every attempt, as a value to put back
	// in the Idempotency-Key header to send the same logical request again:
	// the key itself, or, for a key that can only be sent quoted (one with
	// a space or a comma, that starts with a double quote, or with
	// surrounding spaces), its RFC 8941 quoted string. A caller's key that
	// was sent quoted but needs no quotes ("abc") is given bare (abc): the
	// server reads both as the same key.
	Key string
	// Attempts made, over every redirect hop.
	Attempts int
	// Err is the last attempt's error.
	Err error
}

func (e *AttemptError) Error() string {
	return fmt.Sprintf("idemclient: %d attempt(s) with key %s: %v", e.Attempts, redact(e.Key), e.Err)
}

// Unwrap returns the last attempt's error.
func (e *AttemptError) Unwrap() error { return e.Err }

// BudgetError is returned when a guarded request should be retried but the
// shared RetryBudget has no tokens left. It carries the last attempt's
// outcome: Status and Header of its response (whose body was drained and
// closed), or its transport error Err. The request may or may not have
// taken effect: send it again later with Key.
type BudgetError struct {
	// Key is the idempotency key of every attempt, in the form of
	// AttemptError.Key: a value to put back in the Idempotency-Key header.
	Key string
	// Attempts made, over every redirect hop.
	Attempts int
	// Status and Header of the last response; 0 and nil when the last
	// attempt failed in transport.
	Status int
	Header http.Header
	// Err is the last attempt's transport error, nil when it got a response.
	Err error
}

func (e *BudgetError) Error() string {
	last := e.Err
	if last == nil {
		last = fmt.Errorf("status %d", e.Status)
	}
	return fmt.Sprintf("idemclient: retry budget exhausted after %d attempt(s) with key %s: %v", e.Attempts, redact(e.Key), last)
}

// Unwrap returns the last attempt's transport error (nil after a response).
func (e *BudgetError) Unwrap() error { return e.Err }
