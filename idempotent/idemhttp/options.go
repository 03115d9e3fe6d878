package idemhttp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// DefaultMaxBody is the default buffering limit for request and response
// bodies: 6 MB, the largest payload a Lambda function can return.
const DefaultMaxBody = 6 << 20

// Option configures Middleware.
type Option func(*options)

type options struct {
	cfg     *httpidem.Config
	scope   func(*http.Request) (string, error)
	maxBody int64
}

func newOptions(opts []Option) *options {
	o := &options{cfg: httpidem.NewConfig(), maxBody: DefaultMaxBody}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
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

// WithScope sets the caller principal, the part of the key material that
// keeps two callers who pick the same key apart, typically the
// authenticated user an earlier middleware put in the request's context.
// Without it every caller is "anonymous": callers then share the key space.
// An empty result means "anonymous"; an error answers 500 without running
// the handler.
func WithScope(f func(r *http.Request) (string, error)) Option {
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
// that is not stored is sent as it is and releases the key.
func WithStoredStatus(stored func(status int) bool) Option {
	return func(o *options) { o.cfg.SetStored("WithStoredStatus", stored) }
}

// WithMaxBody sets the buffering limit in bytes (default DefaultMaxBody). A
// guarded request body over it is answered 413. A response body over it is
// streamed to the client as it is written and not stored: the key is
// released and a retry runs again.
func WithMaxBody(n int64) Option {
	return func(o *options) {
		if n <= 0 {
			o.cfg.Fail("WithMaxBody", fmt.Errorf("limit %d is not positive", n))
			return
		}
		o.maxBody = n
	}
}

// WithTTL sets how long a stored response is replayed (idempotent.WithTTL).
func WithTTL(d time.Duration) Option { return WithCore(idempotent.WithTTL(d)) }

// WithWait makes a duplicate that finds the key in progress wait up to max
// for the first request's response (idempotent.WithWait) instead of getting
// 409 at once.
func WithWait(max time.Duration) Option { return WithCore(idempotent.WithWait(max)) }

// WithLocalCache keeps up to size stored responses in a per-process LRU
// cache (idempotent.WithLocalCache); middlewares built from this Option
// value share it.
func WithLocalCache(size int) Option { return WithCore(idempotent.WithLocalCache(size)) }

// WithName sets the key namespace (idempotent.WithName).
func WithName(name string) Option { return WithCore(idempotent.WithName(name)) }

// WithClock sets the clock for every time decision, Retry-After included
// (idempotent.WithClock).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.cfg.SetClock("WithClock", now) }
}

// WithLogger sets the logger of the middleware and the core (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.cfg.SetLogger(l) }
}

// WithCore passes options to idempotent.Do, e.g. idempotent.WithLease. The
// middleware sets the key and the fingerprint itself: WithKeyPath,
// WithKeyFunc and WithPayloadPath do not apply (every request is answered
// 500).
func WithCore(opts ...idempotent.Option) Option {
	return func(o *options) { o.cfg.Core = append(o.cfg.Core, opts...) }
}
