package apigw

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// Option configures WrapV2, WrapV1, WrapURL and WrapALB. It is the one
// option type of the HTTP adapters: idemhttp.Option is the same type, and
// the options below are declared once, in the shared HTTP engine, for both
// packages. (idemhttp.WithMaxBody is the net/http middleware's own: given
// here it is a configuration error.)
type Option = httpidem.Option

// Options shared with idemhttp. Each is documented where it is declared;
// in short:
var (
	// WithMethods sets the guarded HTTP methods (default POST and PATCH);
	// other methods pass through untouched.
	WithMethods = httpidem.WithMethods
	// WithRequireKey answers a guarded request without an Idempotency-Key
	// header 400 (by default it passes through unguarded).
	WithRequireKey = httpidem.WithRequireKey
	// WithFingerprintHeaders adds request headers (names case-insensitive)
	// to the payload fingerprint, next to the query string and the body.
	WithFingerprintHeaders = httpidem.WithFingerprintHeaders
	// WithStoredStatus replaces the policy of which responses are stored and
	// replayed (default DefaultStored); a response not stored is returned
	// as it is and releases the key.
	WithStoredStatus = httpidem.WithStoredStatus
	// WithTTL sets how long a stored response is replayed
	// (idempotent.WithTTL).
	WithTTL = httpidem.WithTTL
	// WithWait makes a duplicate that finds the key in progress wait up to
	// max for the first request's response (idempotent.WithWait) instead of
	// getting 409 at once. Off by default: the wait holds the duplicate's
	// invocation.
	WithWait = httpidem.WithWait
	// WithLocalCache keeps up to size stored responses in a per-process LRU
	// cache (idempotent.WithLocalCache); handlers built from this Option
	// value share it.
	WithLocalCache = httpidem.WithLocalCache
	// WithName sets the key namespace (idempotent.WithName).
	WithName = httpidem.WithName
	// WithClock sets the clock for every time decision, Retry-After included
	// (idempotent.WithClock).
	WithClock = httpidem.WithClock
	// WithLogger sets the logger of the adapter and the core (default
	// slog.Default()).
	WithLogger = httpidem.WithLogger
	// WithCore passes options to idempotent.Do, e.g. idempotent.WithLease.
	// The adapter sets the key and the fingerprint itself: WithKeyPath,
	// WithKeyFunc and WithPayloadPath do not apply (every request is
	// answered 500).
	WithCore = httpidem.WithCore
)

// Event is the set of request types the adapters accept; WithScope is typed
// by it.
type Event interface {
	events.APIGatewayV2HTTPRequest | events.APIGatewayProxyRequest | events.LambdaFunctionURLRequest | events.ALBTargetGroupRequest
}

// WithScope sets the caller principal, the part of the key material that
// keeps two callers who pick the same key apart, instead of the one the
// adapter finds in the event (see the package doc). E must be the event type
// of the adapter it is given to (checked when the adapter is built; a
// mismatch answers every request 500). An empty result means "anonymous", a
// scope shared by every caller that gets it: return "" only for requests
// that are truly unauthenticated. An error answers 500 without running the
// handler.
//
// Use it when the event carries credentials the adapter does not read: an
// HTTP API Lambda authorizer whose context has no principalId, ALB
// authentication (ALBOIDCScope), or a token the function checks itself.
// Without it such requests are refused (500, type unidentified-caller).
func WithScope[E Event](f func(ctx context.Context, event E) (string, error)) Option {
	return httpidem.SetScope(f, f == nil)
}
