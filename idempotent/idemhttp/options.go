package idemhttp

import (
	"net/http"

	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// DefaultMaxBody is the default buffering limit for request and response
// bodies: 6 MB, the largest payload a Lambda function can return.
const DefaultMaxBody = 6 << 20

// Option configures Middleware. It is the one option type of the HTTP
// adapters: apigw.Option is the same type, and the options below are
// declared once, in the shared HTTP engine, for both packages.
type Option = httpidem.Option

// Options shared with apigw. Each is documented where it is declared; in
// short:
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
	// replayed (default DefaultStored); a response not stored is sent as it
	// is and releases the key.
	WithStoredStatus = httpidem.WithStoredStatus
	// WithMaxBody sets the buffering limit in bytes (default
	// DefaultMaxBody). A guarded request body over it is answered 413. A
	// response body over it is streamed to the client as it is written and
	// not stored: the key is released and a retry runs again.
	WithMaxBody = httpidem.WithMaxBody
	// WithTTL sets how long a stored response is replayed
	// (idempotent.WithTTL).
	WithTTL = httpidem.WithTTL
	// WithWait makes a duplicate that finds the key in progress wait up to
	// max for the first request's response (idempotent.WithWait) instead of
	// getting 409 at once. Off by default.
	WithWait = httpidem.WithWait
	// WithLocalCache keeps up to size stored responses in a per-process LRU
	// cache (idempotent.WithLocalCache); middlewares built from this Option
	// value share it.
	WithLocalCache = httpidem.WithLocalCache
	// WithName sets the key namespace (idempotent.WithName).
	WithName = httpidem.WithName
	// WithClock sets the clock for every time decision, Retry-After included
	// (idempotent.WithClock).
	WithClock = httpidem.WithClock
	// WithLogger sets the logger of the middleware and the core (default
	// slog.Default()).
	WithLogger = httpidem.WithLogger
	// WithCore passes options to idempotent.Do, e.g. idempotent.WithLease.
	// The middleware sets the key and the fingerprint itself: WithKeyPath,
	// WithKeyFunc and WithPayloadPath do not apply (every request is
	// answered 500).
	WithCore = httpidem.WithCore
)

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
	return httpidem.SetScope(f, f == nil)
}

// RecordID returns the record id of a request with Idempotency-Key key,
// made by the caller scope (what WithScope returns; empty for anonymous
// callers) to method and path, in namespace name (WithName): the id an
// operator's tool inspects or forgets. The apigw adapters use the same ids.
func RecordID(name, scope, method, path, key string) string {
	return httpidem.RecordID(name, scope, method, path, key)
}
