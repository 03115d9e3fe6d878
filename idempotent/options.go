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
// switch here, and only here, when they are built (Do: when it is called).
func Disabled() bool {
	v, err := strconv.ParseBool(os.Getenv(DisabledEnv))
	return err == nil && v
}

// Option configures Wrap and Do.
type Option func(*config)

type config struct {
	keyExpr     *string // WithKeyPath, compiled into keyPath by newConfig
	keyPath     *KeyPath
	keyFunc     any
	payloadExpr *string // WithPayloadPath, compiled into payloadPath by newConfig
	payloadPath *KeyPath
	functions   []jmespath.FunctionEntry // WithJMESPathFunction
	fingerprint *string
	ttl         time.Duration
	lease       time.Duration
	name        string
	cache       *localCache
	wait        time.Duration
	requireKey  bool
	readFirst   bool // WithReadFirst; readfirst.go
	clock       func() time.Time
	logger      *slog.Logger
	disabled    bool
	observers   observers // observe.go
	replayHook  any       // func(context.Context, Replay, T) T; observe.go
	err         error
}

func newConfig(opts []Option) *config {
	c := &config{
		ttl:    DefaultTTL,
		name:   os.Getenv(FunctionNameEnv),
		clock:  time.Now,
		logger: slog.Default(),
	}
	c.disabled = Disabled()
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if c.name == "" {
		c.name = "idempotent"
	}
	if v := os.Getenv(DisabledEnv); v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			c.logger.Warn("idempotency stays on: "+DisabledEnv+" is not a boolean (use true or 1 to disable)", slog.String("env", DisabledEnv), slog.String("value", v))
		}
	}
	// Paths are compiled once every option is known, so custom functions
	// may be registered before or after the paths that call them.
	c.keyPath = compilePath(c, "WithKeyPath", c.keyExpr)
	c.payloadPath = compilePath(c, "WithPayloadPath", c.payloadExpr)
	return c
}

// CheckOptions reports the configuration mistakes in opts, as Do would see
// them, as a *ConfigError (joined when there are several), or nil. Adapters
// that call Do per record or per request use it to reject bad options when
// they are built rather than on every call.
func CheckOptions(opts ...Option) error {
	return newDoConfig(opts).err
}

// newDoConfig is newConfig plus the checks of options that apply to Wrap only.
func newDoConfig(opts []Option) *config {
	c := newConfig(opts)
	if c.keyExpr != nil || c.keyFunc != nil || c.payloadExpr != nil {
		c.fail("Do", errors.New("WithKeyPath, WithKeyFunc and WithPayloadPath apply to Wrap; Do takes the key and WithFingerprint"))
	}
	return c
}

func (c *config) fail(option string, err error) {
	c.err = errors.Join(c.err, &ConfigError{Option: option, Err: err})
}

func compilePath(c *config, option string, expr *string) *KeyPath {
	if expr == nil {
		return nil
	}
	p, err := compileKeyPath(*expr, c.functions)
	if err != nil {
		c.fail(option, err)
		return nil
	}
	return p
}

// WithKeyPath takes the idempotency key from the JSON form of the event with
// a JMESPath expression, e.g. "body.orderId", "[customer, requestId]" or
// Powertools' "powertools_json(body).[user, orderId]" (see CompileKeyPath
// for the functions). Without it (and without WithKeyFunc) the whole event is
// the key. A path that yields nothing — null, "", [] or {}, or a list or
// object whose members are all missing — means the event has no key. An
// expression that does not compile or calls an unknown function is a
// *ConfigError on every call. Wrap only.
func WithKeyPath(expr string) Option {
	return func(c *config) { c.keyExpr = &expr }
}

// WithKeyFunc computes the idempotency key from the event with a Go function.
// In must be the event type of the handler given to Wrap; a mismatch is
// reported when Wrap is built (as a *ConfigError returned by every call). An
// empty key means the event has no key; an error fails the call with an error
// wrapping ErrNoKey, and the handler does not run. Wrap only.
func WithKeyFunc[In any](f func(In) (string, error)) Option {
	return func(c *config) {
		if f == nil {
			c.fail("WithKeyFunc", errors.New("nil key function"))
			return
		}
		c.keyFunc = f
	}
}

// WithPayloadPath turns on payload validation: the part of the event selected
// by the JMESPath expression ("@" for the whole event) is fingerprinted and
// stored, and a later call with the same key but another fingerprint fails
// with ErrPayloadMismatch instead of replaying. Wrap only; Do uses
// WithFingerprint.
func WithPayloadPath(expr string) Option {
	return func(c *config) { c.payloadExpr = &expr }
}

// WithFingerprint turns on payload validation for Do: material is hashed and
// compared with the fingerprint stored for the key; a difference fails with
// ErrPayloadMismatch.
func WithFingerprint(material string) Option {
	return func(c *config) { c.fingerprint = &material }
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
// The cache is created when WithLocalCache is called: handlers built from
// the same Option value share it, and Do calls should reuse one Option value
// to benefit from it.
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
	cache, err := newLocalCache(max(entries, 1), maxBytes)
	return func(c *config) {
		switch {
		case entries <= 0:
			c.fail(option, fmt.Errorf("size %d is not positive", entries))
		case maxBytes <= 0:
			c.fail(option, fmt.Errorf("byte bound %d is not positive", maxBytes))
		case err != nil:
			c.fail(option, err)
		default:
			c.cache = cache
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
