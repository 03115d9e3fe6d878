package idempotent

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Match them with errors.Is; the errors the package returns
// wrap them with detail.
var (
	// ErrInProgress: another invocation holds the key and has not finished.
	// The concrete error is an *InProgressError that tells when its lease
	// ends.
	ErrInProgress = errors.New("idempotent: another invocation with this key is in progress")
	// ErrPayloadMismatch: the key was used before with a different payload.
	ErrPayloadMismatch = errors.New("idempotent: idempotency key reused with a different payload")
	// ErrNoKey: the key is required and the event yielded none.
	ErrNoKey = errors.New("idempotent: no idempotency key in the event")
	// ErrLeaseLost: the run finished after its lease ended and another
	// invocation took the key over; nothing was overwritten.
	ErrLeaseLost = errors.New("idempotent: lease lost to another invocation; result not stored")
	// ErrCorruptRecord: a stored record or its data cannot be decoded. The
	// handler does not run and the record is left as it is.
	ErrCorruptRecord = errors.New("idempotent: corrupt idempotency record")
)

// InProgressError is returned (wrapping ErrInProgress) when a duplicate finds
// the key held by a running invocation.
type InProgressError struct {
	// Key is the record id.
	Key string
	// LeaseExpiration is when the running invocation's lease ends; after it a
	// retry may run again.
	LeaseExpiration time.Time
}

func (e *InProgressError) Error() string {
	return fmt.Sprintf("%v (record %s, lease ends %s)", ErrInProgress, e.Key, e.LeaseExpiration.UTC().Format(time.RFC3339Nano))
}

// Is makes errors.Is(err, ErrInProgress) true.
func (e *InProgressError) Is(target error) bool { return target == ErrInProgress }

// RetryAfter is how long a caller should wait before retrying, at now:
// the time left on the lease, rounded up to whole seconds, at least 1 s.
func (e *InProgressError) RetryAfter(now time.Time) time.Duration {
	d := e.LeaseExpiration.Sub(now)
	if d < time.Second {
		return time.Second
	}
	return (d + time.Second - 1).Truncate(time.Second)
}

// StoreError is a failure of the persistence layer (network, throttling,
// permissions, a missing table), after the SDK's own retries. With Op
// "acquire" or "get" the guarded function did not run and the call is safe to
// retry. With Op "complete" it ran but its result was not stored: the key
// stays held until the lease ends, after which a retry runs it again, as
// after a crash (KeyFromContext lets the function make that second run's
// effects idempotent).
type StoreError struct {
	// Op is the Store operation: "acquire", "get", "complete" or "release".
	Op string
	// Key is the record id (never the raw key).
	Key string
	// Err is the underlying error.
	Err error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("idempotent: store %s %s: %v", e.Op, e.Key, e.Err)
}

// Unwrap returns the underlying error.
func (e *StoreError) Unwrap() error { return e.Err }

// ConfigError reports an invalid option (a JMESPath expression that does not
// compile, a key function for another event type). A handler built with one
// fails every invocation with it and never runs unguarded.
type ConfigError struct {
	// Option names the option (or argument) at fault, e.g. "WithKeyPath".
	Option string
	// Err says what is wrong with it.
	Err error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("idempotent: invalid option %s: %v", e.Option, e.Err)
}

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }
