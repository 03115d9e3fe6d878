package apigw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// Option configures WrapV2, WrapV1, WrapURL and WrapALB.
type Option func(*options)

type options struct {
	cfg   *httpidem.Config
	scope any // func(context.Context, E) (string, error)
}

// Event is the set of request types the adapters accept; WithScope is typed
// by it.
type Event interface {
	events.APIGatewayV2HTTPRequest | events.APIGatewayProxyRequest | events.LambdaFunctionURLRequest | events.ALBTargetGroupRequest
}

func newOptions(opts []Option) *options {
	o := &options{cfg: httpidem.NewConfig()}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
}

// scopeFor returns the scope function for event type E, or nil.
func scopeFor[E any](o *options) func(context.Context, E) (string, error) {
	if o.scope == nil {
		return nil
	}
	f, ok := o.scope.(func(context.Context, E) (string, error))
	if !ok {
		o.cfg.Fail("WithScope", fmt.Errorf("scope function is %T; this adapter needs func(context.Context, %s) (string, error)", o.scope, reflect.TypeFor[E]()))
		return nil
	}
	return f
}

// WithMethods sets the guarded HTTP methods (default POST and PATCH); other
// methods pass through untouched.
func WithMethods(methods ...string) Option {
	return func(o *options) { o.cfg.SetMethods("WithMethods", methods) }
}

// WithRequireKey answers a guarded request without an Idempotency-Key
// header 400. By default such a request passes through unguarded.
func WithRequireKey() Option {
	return func(o *options) { o.cfg.RequireKey = true }
}

// WithScope overrides the caller principal, the part of the key material
// that keeps two callers who pick the same key apart. E must be the event
// type of the adapter it is given to (checked when the adapter is built; a
// mismatch answers every request 500). An empty result means "anonymous";
// an error answers 500 without running the handler. The default principal is
// the first present of: JWT sub (with issuer), IAM user ARN, Lambda
// authorizer principalId, API key id.
func WithScope[E Event](f func(ctx context.Context, event E) (string, error)) Option {
	return func(o *options) {
		if f == nil {
			o.cfg.Fail("WithScope", errors.New("nil scope function"))
			return
		}
		o.scope = f
	}
}

// WithFingerprintHeaders adds request headers (names case-insensitive) to
// the payload fingerprint, next to method, path, query and body.
func WithFingerprintHeaders(names ...string) Option {
	return func(o *options) { o.cfg.SetFingerprintHeaders("WithFingerprintHeaders", names) }
}

// WithStoredStatus replaces the policy of which responses are stored and
// replayed (default: 2xx, 3xx, 4xx except 408, 409, 425, 429). A response
// that is not stored is returned as it is and releases the key.
func WithStoredStatus(stored func(status int) bool) Option {
	return func(o *options) { o.cfg.SetStored("WithStoredStatus", stored) }
}

// WithTTL sets how long a stored response is replayed (idempotent.WithTTL).
func WithTTL(d time.Duration) Option { return WithCore(idempotent.WithTTL(d)) }

// WithWait makes a duplicate that finds the key in progress wait up to max
// for the first request's response (idempotent.WithWait) instead of getting
// 409 at once.
func WithWait(max time.Duration) Option { return WithCore(idempotent.WithWait(max)) }

// WithLocalCache keeps up to size stored responses in a per-process LRU
// cache (idempotent.WithLocalCache); handlers built from this Option value
// share it.
func WithLocalCache(size int) Option { return WithCore(idempotent.WithLocalCache(size)) }

// WithName sets the key namespace (idempotent.WithName).
func WithName(name string) Option { return WithCore(idempotent.WithName(name)) }

// WithClock sets the clock for every time decision, Retry-After included
// (idempotent.WithClock).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.cfg.SetClock("WithClock", now) }
}

// WithLogger sets the logger of the adapter and the core (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.cfg.SetLogger(l) }
}

// WithCore passes options to idempotent.Do, e.g. idempotent.WithLease. The
// adapter sets the key and the fingerprint itself: WithKeyPath, WithKeyFunc
// and WithPayloadPath do not apply (every request is answered 500).
func WithCore(opts ...idempotent.Option) Option {
	return func(o *options) { o.cfg.Core = append(o.cfg.Core, opts...) }
}
