package apigw

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// Option configures WrapV2, WrapV1, WrapURL and WrapALB: what the HTTP
// layer does. The core's settings (TTL, name, lease, wait, local cache,
// clock, logger, observers) belong to the idempotent.Guard the adapter
// takes. idemhttp.Option is a different type: an option of one adapter does
// not compile in the other.
type Option func(*httpidem.Config)

// WithMethods sets the guarded HTTP methods (default POST and PATCH); other
// methods pass through untouched.
func WithMethods(methods ...string) Option { return Option(httpidem.WithMethods(methods...)) }

// WithRequireKey answers a guarded request without an Idempotency-Key
// header 400. By default such a request passes through unguarded.
func WithRequireKey() Option { return Option(httpidem.WithRequireKey()) }

// WithFingerprintHeaders adds request headers (names case-insensitive) to
// the payload fingerprint, next to the query string and the body.
func WithFingerprintHeaders(names ...string) Option {
	return Option(httpidem.WithFingerprintHeaders(names...))
}

// WithStoredStatus replaces the policy of which responses are stored and
// replayed (default DefaultStored). A response that is not stored is
// returned as it is and releases the key.
func WithStoredStatus(stored func(status int) bool) Option {
	return Option(httpidem.WithStoredStatus(stored))
}

// WithReplayHook calls f with every replayed response before it is
// returned (idempotent.WithReplayHook): T is the adapter's response type,
// e.g. events.APIGatewayV2HTTPResponse, so a hook can add a header to
// replays. A hook of another type answers every replay 500.
func WithReplayHook[T any](f func(ctx context.Context, r idempotent.Replay, resp T) T) Option {
	return Option(httpidem.WithReplayHook(idempotent.WithReplayHook(f)))
}

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
	return Option(httpidem.SetScope(f, f == nil))
}
