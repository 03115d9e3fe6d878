package httpidem

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// Anonymous is the principal of a caller that carries no credentials.
const Anonymous = "anonymous"

// Config is the configuration shared by every adapter. Options set its
// fields; NewConfig gives the defaults. A Config is read-only once the
// adapter is built.
type Config struct {
	// Methods are the guarded methods, upper case (default POST, PATCH).
	Methods []string
	// RequireKey answers a guarded request without the header 400.
	RequireKey bool
	// FingerprintHeaders are extra request headers in the fingerprint.
	FingerprintHeaders []string
	// Stored says which statuses are stored (default DefaultStored).
	Stored func(status int) bool
	// Scope is the adapter's scope function (WithScope), of the type the
	// adapter expects; nil: the adapter finds the principal itself.
	Scope any
	// MaxBody is the net/http middleware's buffering limit (WithMaxBody);
	// 0: the default.
	MaxBody int64
	// Call are the per-call options passed to idempotent.Do (the replay
	// hook); the fingerprint is added per request.
	Call []idempotent.CallOption
	// Guard is the guard every request goes through (set by Finish).
	Guard *idempotent.Guard
	// Clock is the clock for Retry-After: the guard's.
	Clock func() time.Time
	// Logger logs decisions: the guard's.
	Logger *slog.Logger
	// Err collects option errors (*idempotent.ConfigError); every request
	// is then answered 500.
	Err error

	observer idempotent.Observer // the guard's observers (Finish)
}

// Option configures an HTTP adapter. The rules are declared once, here;
// apigw.Option and idemhttp.Option are distinct types of the same shape
// whose options forward to these functions.
type Option func(*Config)

// NewConfig returns the defaults with opts applied (nil options skipped),
// for the adapter over guard g.
func NewConfig[O ~func(*Config)](g *idempotent.Guard, opts []O) *Config {
	c := &Config{
		Methods: []string{http.MethodPost, http.MethodPatch},
		Stored:  DefaultStored,
		Guard:   g,
		Clock:   g.Now,
		Logger:  g.Logger(),
	}
	for _, opt := range opts {
		if opt != nil {
			opt(c)
		}
	}
	return c
}

// Fail records an option error.
func (c *Config) Fail(option string, err error) {
	c.Err = errors.Join(c.Err, &idempotent.ConfigError{Option: option, Err: err})
}

// Finish takes the guard's configuration error, so a bad option is
// reported once, when the adapter is built, and every request is then
// refused with 500.
func (c *Config) Finish() {
	if err := c.Guard.Err(); err != nil {
		c.Err = errors.Join(c.Err, err)
	}
	if c.Err != nil {
		c.Logger.Error("idempotency misconfigured; every request will be refused", slog.Any("error", c.Err))
	}
	c.observer = c.Guard.Observer()
}

// DefaultStored is the default policy: 2xx, 3xx and 4xx responses are
// stored, except 408, 409, 425 and 429 (the client is expected to retry
// those); 5xx and anything outside 200–499 are not.
func DefaultStored(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return status >= 200 && status < 500
}

// WithMethods sets the guarded HTTP methods (default POST and PATCH); other
// methods pass through untouched.
func WithMethods(methods ...string) Option {
	return func(c *Config) {
		if len(methods) == 0 {
			c.Fail("WithMethods", errors.New("no methods"))
			return
		}
		out := make([]string, 0, len(methods))
		for _, m := range methods {
			if m == "" || strings.ContainsAny(m, " \t\r\n") {
				c.Fail("WithMethods", fmt.Errorf("invalid method %q", m))
				return
			}
			out = append(out, strings.ToUpper(m))
		}
		c.Methods = out
	}
}

// WithRequireKey answers a guarded request without an Idempotency-Key
// header 400. By default such a request passes through unguarded.
func WithRequireKey() Option {
	return func(c *Config) { c.RequireKey = true }
}

// WithFingerprintHeaders adds request headers (names case-insensitive) to
// the payload fingerprint, next to the query string and the body.
func WithFingerprintHeaders(names ...string) Option {
	return func(c *Config) {
		out := make([]string, 0, len(names))
		for _, n := range names {
			if n == "" || strings.ContainsAny(n, " \t\r\n:") {
				c.Fail("WithFingerprintHeaders", fmt.Errorf("invalid header name %q", n))
				return
			}
			out = append(out, strings.ToLower(n))
		}
		slices.Sort(out)
		c.FingerprintHeaders = slices.Compact(out)
	}
}

// WithStoredStatus replaces the policy of which responses are stored and
// replayed (default: 2xx, 3xx, 4xx except 408, 409, 425, 429). A response
// that is not stored is returned as it is and releases the key.
func WithStoredStatus(stored func(status int) bool) Option {
	return func(c *Config) {
		if stored == nil {
			c.Fail("WithStoredStatus", errors.New("nil predicate"))
			return
		}
		c.Stored = stored
	}
}

// WithMaxBody sets the net/http middleware's buffering limit in bytes. A
// guarded request body over it is answered 413. A response body over it is
// streamed to the client as it is written and not stored: a 2xx completes
// the key without a stored response (duplicates get 410, the handler never
// runs again), any other status releases the key. The API Gateway adapters get whole
// events from Lambda and refuse the option (a configuration error).
func WithMaxBody(n int64) Option {
	return func(c *Config) {
		if n <= 0 {
			c.Fail("WithMaxBody", fmt.Errorf("limit %d is not positive", n))
			return
		}
		c.MaxBody = n
	}
}

// WithReplayHook passes a replay hook to idempotent.Do for every request
// (idempotent.WithReplayHook); its type must take the adapter's response
// type, or every replay is answered 500.
func WithReplayHook(o idempotent.SharedOption) Option {
	return func(c *Config) { c.Call = append(c.Call, o) }
}

// SetScope records an adapter's scope function (its WithScope); f must not
// be nil.
func SetScope(f any, isNil bool) Option {
	return func(c *Config) {
		if isNil {
			c.Fail("WithScope", errors.New("nil scope function"))
			return
		}
		c.Scope = f
	}
}

// ScopeFunc returns c.Scope as the scope function type F an adapter needs,
// or nil when none was set; a scope function of another type (given to the
// wrong adapter) is a configuration error.
func ScopeFunc[F any](c *Config, want string) F {
	var zero F
	if c.Scope == nil {
		return zero
	}
	f, ok := c.Scope.(F)
	if !ok {
		c.Fail("WithScope", fmt.Errorf("scope function is %T; this adapter needs %s", c.Scope, want))
		return zero
	}
	return f
}
