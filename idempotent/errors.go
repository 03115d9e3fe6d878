package idempotent

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Match them with errors.Is. The package never returns a
// bare sentinel: each comes as a named type that matches it (ErrNoKey as a
// *NoKeyError, and so on), so the error keeps a meaningful type name where
// the type is what counts — Lambda's errorType (aws-lambda-go reports the Go
// type name of the returned error), Step Functions Retry and Catch, logs.
var (
	// ErrInProgress: another invocation holds the key and has not finished.
	// The concrete error is an *InProgressError that tells when its lease
	// ends.
	ErrInProgress = errors.New("idempotent: another invocation with this key is in progress")
	// ErrPayloadMismatch: the key was used before with a different payload.
	// The concrete error is a *PayloadMismatchError.
	ErrPayloadMismatch = errors.New("idempotent: idempotency key reused with a different payload")
	// ErrNoKey: the key is required and the event yielded none, or the key
	// could not be read from the event. The concrete error is a *NoKeyError.
	ErrNoKey = errors.New("idempotent: no idempotency key in the event")
	// ErrLeaseLost: the run finished after its lease ended and another
	// invocation took the key over; nothing was overwritten. The concrete
	// error is a *LeaseLostError.
	ErrLeaseLost = errors.New("idempotent: lease lost to another invocation; result not stored")
	// ErrCorruptRecord: a stored record or its data cannot be decoded. The
	// handler does not run and the record is left as it is. The concrete
	// error is a *CorruptRecordError.
	ErrCorruptRecord = errors.New("idempotent: corrupt idempotency record")
)

// NoKeyError is returned (matching ErrNoKey) when the key is required and
// the event yields none, or when the key cannot be read from the event.
type NoKeyError struct {
	// Err says why the key could not be read; nil when it is simply absent.
	Err error
}

func (e *NoKeyError) Error() string { return detail(ErrNoKey, "", e.Err) }

// Is makes errors.Is(err, ErrNoKey) true.
func (e *NoKeyError) Is(target error) bool { return target == ErrNoKey }

// Unwrap returns the cause, if any.
func (e *NoKeyError) Unwrap() error { return e.Err }

// PayloadMismatchError is returned (matching ErrPayloadMismatch) when a key
// is presented with another payload than the one it was first used with.
type PayloadMismatchError struct {
	// RecordID is the record id.
	RecordID string
}

func (e *PayloadMismatchError) Error() string { return detail(ErrPayloadMismatch, e.RecordID, nil) }

// Is makes errors.Is(err, ErrPayloadMismatch) true.
func (e *PayloadMismatchError) Is(target error) bool { return target == ErrPayloadMismatch }

// LeaseLostError is returned (matching ErrLeaseLost) when a run finished
// after another invocation took its key over; its result was not stored.
// Stores may return it (or any error matching ErrLeaseLost) from Complete
// and Release.
type LeaseLostError struct {
	// RecordID is the record id.
	RecordID string
}

func (e *LeaseLostError) Error() string { return detail(ErrLeaseLost, e.RecordID, nil) }

// Is makes errors.Is(err, ErrLeaseLost) true.
func (e *LeaseLostError) Is(target error) bool { return target == ErrLeaseLost }

// CorruptRecordError is returned (matching ErrCorruptRecord) when a stored
// record or its data cannot be decoded. Stores report undecodable records
// with it.
type CorruptRecordError struct {
	// RecordID is the record id.
	RecordID string
	// Err says what is wrong with the record.
	Err error
}

func (e *CorruptRecordError) Error() string { return detail(ErrCorruptRecord, e.RecordID, e.Err) }

// Is makes errors.Is(err, ErrCorruptRecord) true.
func (e *CorruptRecordError) Is(target error) bool { return target == ErrCorruptRecord }

// Unwrap returns the cause, if any.
func (e *CorruptRecordError) Unwrap() error { return e.Err }

// detail is the message of a typed sentinel error: the sentinel's, the
// record id and the cause — unless the cause already says the sentinel's
// words (it wraps it), so the message does not repeat itself.
func detail(sentinel error, key string, cause error) string {
	msg := sentinel.Error()
	if cause != nil && errors.Is(cause, sentinel) {
		msg = cause.Error()
		cause = nil
	}
	if key != "" && !strings.Contains(msg, key) {
		msg += " (record " + key + ")"
	}
	if cause != nil {
		msg += ": " + cause.Error()
	}
	return msg
}

// typed returns err as one of the package's named error types when it
// matches a sentinel only through a generic wrapper (fmt.Errorf("%w")), so
// that what leaves Wrap or Do has a meaningful type name. Other errors are
// returned as they are.
func typed(err error, key string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNoKey):
		if _, ok := errors.AsType[*NoKeyError](err); !ok {
			return &NoKeyError{Err: err}
		}
	case errors.Is(err, ErrCorruptRecord):
		if _, ok := errors.AsType[*CorruptRecordError](err); !ok {
			return &CorruptRecordError{RecordID: key, Err: err}
		}
	case errors.Is(err, ErrLeaseLost):
		if _, ok := errors.AsType[*LeaseLostError](err); !ok {
			return &LeaseLostError{RecordID: key}
		}
	}
	return err
}

// InProgressError is returned (wrapping ErrInProgress) when a duplicate finds
// the key held by a running invocation.
type InProgressError struct {
	// RecordID is the record id.
	RecordID string
	// LeaseExpiration is when the running invocation's lease ends; after it a
	// retry may run again.
	LeaseExpiration time.Time
}

func (e *InProgressError) Error() string {
	return fmt.Sprintf("%v (record %s, lease ends %s)", ErrInProgress, e.RecordID, e.LeaseExpiration.UTC().Format(time.RFC3339Nano))
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
// after a crash (RecordIDFromContext lets the function make that second run's
// effects idempotent).
type StoreError struct {
	// Op is the Store operation: "acquire", "get", "complete" or "release".
	Op string
	// RecordID is the record id (never the raw key).
	RecordID string
	// Err is the underlying error.
	Err error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("idempotent: store %s %s: %v", e.Op, e.RecordID, e.Err)
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
