package idemhttp

import (
	"net/http"

	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// DefaultMaxBody is the default buffering limit for request and response
// bodies: 6 MB, the largest payload a Lambda function can return.
const DefaultMaxBody = 6 << 20

// Option configures Middleware: what the HTTP layer does. The core's
// settings (TTL, name, lease, wait, local cache, clock, logger, observers)
// belong to the idempotent.Guard the middleware takes. apigw.Option is a
// different type: an option of one adapter does not compile in the other.
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
// replayed (default DefaultStored). A response that is not stored is sent
// as it is and releases the key.
func WithStoredStatus(stored func(status int) bool) Option {
	return Option(httpidem.WithStoredStatus(stored))
}

// WithMaxBody sets the buffering limit in bytes (default DefaultMaxBody). A
// guarded request body over it is answered 413. A response body over it is
// streamed to the client as it is written and not stored: the key is
// released and a retry runs again.
func WithMaxBody(n int64) Option { return Option(httpidem.WithMaxBody(n)) }

// WithScope sets the caller principal, the part of the key material that
// keeps two callers who pick the same key apart, typically the
// authenticated user an earlier middleware put in the request's context.
// An empty result means "anonymous", a scope shared by every caller that
// gets it; an error answers 500 without running the handler.
//
// Without WithScope every caller is "anonymous", except that a guarded
// request carrying credentials the middleware can see (an Authorization
// header, a TLS client certificate) is refused (500, type
// unidentified-caller) rather than put in the shared scope. Sessions in
// cookies cannot be told apart from other cookies: with cookie
// authentication, set WithScope.
func WithScope(f func(r *http.Request) (string, error)) Option {
	return Option(httpidem.SetScope(f, f == nil))
}

// RecordID returns the record id of a request with Idempotency-Key key,
// made by the caller scope (what WithScope returns; empty for anonymous
// callers) to method and path, in namespace name (WithName): the id an
// operator's tool inspects or forgets. The apigw adapters use the same ids.
func RecordID(name, scope, method, path, key string) string {
	return httpidem.RecordID(name, scope, method, path, key)
}
