package idempotent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/jmespath-community/go-jmespath"
)

// Defaults.
const (
	// DefaultTTL is how long a completed record is kept and replayed.
	DefaultTTL = time.Hour
	// DefaultLease is the lease of a run whose context has no deadline.
	DefaultLease = 60 * time.Second
	// DisabledEnv is the environment variable that, set to a true value
	// ("true", "1"), bypasses every guard with a warning: for users' unit
	// tests, never for production.
	DisabledEnv = "IDEMPOTENCY_DISABLED"
	// FunctionNameEnv names the key namespace when WithName is not given.
	FunctionNameEnv = "AWS_LAMBDA_FUNCTION_NAME"
)

// Disabled reports whether the environment turns idempotency off: DisabledEnv
// set to a true value ("true", "1"). Wrap, Do and every adapter read the
// switch here, and only here, through New, which reads it once.
func Disabled() bool {
	v, _ := disabledEnv()
	return v
}

// disabledEnv reads DisabledEnv: whether it turns idempotency off, and
// whether its value is one a boolean parses from (unset counts as valid).
func disabledEnv() (disabled, valid bool) {
	s := os.Getenv(DisabledEnv)
	if s == "" {
		return false, true
	}
	v, err := strconv.ParseBool(s)
	return err == nil && v, err == nil
}

// Option configures a Guard (New): the settings every call through the
// guard shares. Options that apply to one Wrap or one Do call are WrapOption
// and CallOption; passing one where it does not apply does not compile.
type Option func(*config)

// config is a Guard's settings, fixed by New.
type config struct {
	functions  []jmespath.FunctionEntry // WithJMESPathFunction
	ttl        time.Duration
	lease      time.Duration
	name       string
	cacheSize  int   // WithLocalCache, built into cache by New
	cacheBytes int64 // WithLocalCacheLimits
	cache      *localCache
	wait       time.Duration
	requireKey bool
	readFirst  bool // WithReadFirst; readfirst.go
	clock      func() time.Time
	logger     *slog.Logger
	disabled   bool
	observers  observers // observe.go
	observer   Observer  // observers merged, for the adapters (Guard.Observer)
	err        error
}

func (c *config) fail(option string, err error) {
	c.err = errors.Join(c.err, &ConfigError{Option: option, Err: err})
}

// WrapOption configures one Wrap: how the key and the payload fingerprint
// are read from the event, and the replay hook.
type WrapOption interface {
	applyWrap(*wrapConfig)
}

// CallOption configures one Do call: the payload fingerprint and the replay
// hook.
type CallOption interface {
	applyCall(*callConfig)
}

type wrapConfig struct {
	keyExpr     *string // WithKeyPath, compiled into keyPath by Wrap
	keyPath     *KeyPath
	keyFunc     any
	payloadExpr *string // WithPayloadPath, compiled into payloadPath by Wrap
	payloadPath *KeyPath
	replayHook  any // func(context.Context, Replay, T) T; observe.go
	err         error
}

func (w *wrapConfig) fail(option string, err error) {
	w.err = errors.Join(w.err, &ConfigError{Option: option, Err: err})
}

type callConfig struct {
	fingerprint *string
	replayHook  any
	err         error
}

// wrapOption is a WrapOption made of a function.
type wrapOption func(*wrapConfig)

func (o wrapOption) applyWrap(w *wrapConfig) { o(w) }

// fingerprintOption is WithFingerprint's CallOption.
type fingerprintOption struct{ material string }

func (o *fingerprintOption) applyCall(c *callConfig) { c.fingerprint = &o.material }

func compilePath(w *wrapConfig, functions []jmespath.FunctionEntry, option string, expr *string) *KeyPath {
	if expr == nil {
		return nil
	}
	p, err := compileKeyPath(*expr, functions)
	if err != nil {
		w.fail(option, err)
		return nil
	}
	return p
}

// WithKeyPath takes the idempotency key from the JSON form of the event with
// a JMESPath expression, e.g. "body.orderId", "[customer, requestId]" or
// Powertools' "powertools_json(body).[user, orderId]" (see CompileKeyPath
// for the functions; the guard's WithJMESPathFunction functions are known
// too). Without it (and without WithKeyFunc) the whole event is the key. A
// path that yields nothing — null, "", [] or {}, or a list or object whose
// members are all missing — means the event has no key. An expression that
// does not compile or calls an unknown function is a *ConfigError on every
// call.
func WithKeyPath(expr string) WrapOption {
	return wrapOption(func(w *wrapConfig) { w.keyExpr = &expr })
}

// WithKeyFunc computes the idempotency key from the event with a Go function.
// In must be the event type of the handler given to Wrap; a mismatch is
// reported when Wrap is built (as a *ConfigError returned by every call). An
// empty key means the event has no key; an error fails the call with an error
// wrapping ErrNoKey, and the handler does not run.
func WithKeyFunc[In any](f func(In) (string, error)) WrapOption {
	return wrapOption(func(w *wrapConfig) {
		if f == nil {
			w.fail("WithKeyFunc", errors.New("nil key function"))
			return
		}
		w.keyFunc = f
	})
}

// WithPayloadPath turns on payload validation: the part of the event selected
// by the JMESPath expression ("@" for the whole event) is fingerprinted and
// stored, and a later call with the same key but another fingerprint fails
// with ErrPayloadMismatch instead of replaying. Do uses WithFingerprint.
func WithPayloadPath(expr string) WrapOption {
	return wrapOption(func(w *wrapConfig) { w.payloadExpr = &expr })
}

// WithFingerprint turns on payload validation for Do: material is hashed and
// compared with the fingerprint stored for the key; a difference fails with
// ErrPayloadMismatch.
func WithFingerprint(material string) CallOption {
	return &fingerprintOption{material: material}
}

// WithTTL sets how long a completed result is kept and replayed (default 1 h).
// Records are written with second precision. An in-progress record lives at
// least until its lease ends, even when the TTL is shorter, so a duplicate
// never runs beside a run that still holds the key.
func WithTTL(d time.Duration) Option {
	return func(c *config) {
		if d < time.Second {
			c.fail("WithTTL", fmt.Errorf("TTL %v is under one second", d))
			return
		}
		c.ttl = d
	}
}

// WithLease sets how long a run holds its key before a duplicate may take it
// over. The default is the context's deadline (Lambda gives every invocation
// one), else 60 s. A lease shorter than the run lets a duplicate run again;
// the late run then gets ErrLeaseLost and overwrites nothing.
func WithLease(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("WithLease", fmt.Errorf("lease %v is not positive", d))
			return
		}
		c.lease = d
	}
}

// WithName sets the key namespace, the first part of every record id
// (default: AWS_LAMBDA_FUNCTION_NAME, else "idempotent"). Functions that must
// not share records need distinct names.
func WithName(name string) Option {
	return func(c *config) {
		if name == "" {
			c.fail("WithName", errors.New("empty name"))
			return
		}
		c.name = name
	}
}

// WithLocalCache keeps up to size completed records in a per-process LRU
// cache, so a replay within the same container makes no store call. The
// cache is also bounded by bytes: it holds at most DefaultLocalCacheBytes
// (16 MiB) of stored results, evicting the least recently used ones, and a
// result larger than that is not cached (WithLocalCacheLimits sets both
// bounds). It keeps each result's stored bytes only; every hit decodes
// them, so callers never share memory. In-progress records are never cached.
// The cache is built by New and belongs to the guard: every Wrap, Do and
// adapter call through the guard shares it.
func WithLocalCache(size int) Option {
	return withLocalCache("WithLocalCache", size, DefaultLocalCacheBytes)
}

// WithLocalCacheLimits is WithLocalCache with both bounds given: at most
// entries records and maxBytes bytes of stored results (a record counts its
// stored bytes, its id and fingerprint, and about 128 bytes of bookkeeping).
func WithLocalCacheLimits(entries int, maxBytes int64) Option {
	return withLocalCache("WithLocalCacheLimits", entries, maxBytes)
}

func withLocalCache(option string, entries int, maxBytes int64) Option {
	return func(c *config) {
		switch {
		case entries <= 0:
			c.fail(option, fmt.Errorf("size %d is not positive", entries))
		case maxBytes <= 0:
			c.fail(option, fmt.Errorf("byte bound %d is not positive", maxBytes))
		default:
			c.cacheSize, c.cacheBytes = entries, maxBytes
		}
	}
}

// WithWait makes a duplicate that finds the key in progress wait, polling
// with capped exponential backoff, up to max (and never past the context's
// deadline) for the running invocation to finish: it then replays its
// result, or runs itself if the key was released. Without it the duplicate
// fails at once with ErrInProgress.
func WithWait(max time.Duration) Option {
	return func(c *config) {
		if max <= 0 {
			c.fail("WithWait", fmt.Errorf("wait %v is not positive", max))
			return
		}
		c.wait = max
	}
}

// WithRequireKey makes a call whose event yields no key fail with ErrNoKey.
// By default such a call runs unguarded, with a warning log.
func WithRequireKey() Option {
	return func(c *config) { c.requireKey = true }
}

// WithClock sets the clock used for every time decision: expiry, leases and
// the times passed to the Store.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.fail("WithClock", errors.New("nil clock"))
			return
		}
		c.clock = now
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}
