package idempotent

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"time"
)

// A Guard makes calls idempotent over one Store with one set of settings. It
// is built once, by New, like an SDK client: its options are applied and
// checked there, the environment is read there, and the local cache and the
// observers belong to it. Wrap, Do and every adapter take it. A Guard is
// safe for concurrent use; build one per process (or per setting) and share
// it.
type Guard struct {
	store Store
	c     config
}

// errNilGuard is the error of every call through a nil *Guard.
var errNilGuard = &ConfigError{Option: "guard", Err: errors.New("nil Guard")}

// New returns a Guard over store with opts applied; it is never nil. A
// mistake in the options (or a nil store, unless the environment disables
// idempotency) is kept as a *ConfigError: Err returns it, and every call
// through the guard fails with it before anything runs, so nothing runs
// unguarded because of a configuration mistake.
//
// New reads DisabledEnv once: set to a true value, every call through the
// guard runs unguarded, with a warning log; set to a value that is not a
// boolean ("yes", "on"), it is ignored with a warning.
func New(store Store, opts ...Option) *Guard {
	g := &Guard{store: store}
	c := &g.c
	c.ttl = DefaultTTL
	c.name = os.Getenv(FunctionNameEnv)
	c.clock = time.Now
	c.logger = slog.Default()
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if c.name == "" {
		c.name = "idempotent"
	}
	disabled, valid := disabledEnv()
	c.disabled = disabled
	if !valid {
		c.logger.Warn("idempotency switch is not a boolean and is ignored: idempotency stays on",
			slog.String("env", DisabledEnv), slog.String("value", os.Getenv(DisabledEnv)))
	}
	if disabled {
		// Said once, here: Wrap, Do and the adapters then run unguarded
		// without a line per call.
		c.logger.Warn("idempotency disabled by environment; every call through this guard runs unguarded", slog.String("env", DisabledEnv))
	}
	if c.cacheSize > 0 {
		cache, err := newLocalCache(c.cacheSize, c.cacheBytes)
		if err != nil {
			c.fail("WithLocalCache", err)
		}
		c.cache = cache
	}
	if store == nil && !c.disabled {
		c.fail("store", errors.New("nil Store"))
	}
	c.observer = c.observers.merged()
	return g
}

// Err returns the configuration error every call through g fails with (a
// *ConfigError, joined when there are several), or nil.
func (g *Guard) Err() error {
	if g == nil {
		return errNilGuard
	}
	return g.c.err
}

// Observer returns one Observer that forwards to every observer installed
// with WithObserver (the zero Observer when none). Adapters report their
// own reports (HTTPReport, BatchReport) through it.
func (g *Guard) Observer() Observer {
	if g == nil {
		return Observer{}
	}
	return g.c.observer
}

// Now reads the guard's clock (WithClock; time.Now by default). Adapters
// judge their own times (Retry-After, deadline margins) by it.
func (g *Guard) Now() time.Time {
	if g == nil {
		return time.Now()
	}
	return g.c.clock()
}

// Logger returns the guard's logger (WithLogger; slog.Default() by default),
// which adapters log their own decisions to.
func (g *Guard) Logger() *slog.Logger {
	if g == nil {
		return slog.Default()
	}
	return g.c.logger
}

// CompileKeyPath is the package's CompileKeyPath with the guard's custom
// functions (WithJMESPathFunction) known.
func (g *Guard) CompileKeyPath(expr string) (*KeyPath, error) {
	if err := g.Err(); err != nil {
		return nil, err
	}
	p, err := compileKeyPath(expr, g.c.functions)
	if err != nil {
		return nil, &ConfigError{Option: "CompileKeyPath", Err: err}
	}
	return p, nil
}

// RecordID is the record id that Do(ctx, g, step, key, fn) uses:
// StepRecordID with the guard's name (WithName, or the environment). Batch
// wrappers use it to read records ahead. An invalid step (empty, or with a
// NUL byte) or an empty key has no record id: it returns "".
func (g *Guard) RecordID(step, key string) string {
	if g.Err() != nil || step == "" || strings.IndexByte(step, 0) >= 0 {
		return ""
	}
	return StepRecordID(g.c.name, step, key)
}

// Store returns the store the guard was built over. Adapters use it to
// look for a store's optional interfaces (BatchReader).
func (g *Guard) Store() Store {
	if g == nil {
		return nil
	}
	return g.store
}

// Disabled reports whether the guard runs every call unguarded because
// DisabledEnv turned idempotency off when it was built.
func (g *Guard) Disabled() bool {
	return g != nil && g.c.disabled
}

// Name is the guard's namespace of record ids (WithName, else
// AWS_LAMBDA_FUNCTION_NAME, else "idempotent"), for tools that derive a
// record id (RecordID, StepRecordID, idemhttp.RecordID) for it.
func (g *Guard) Name() string {
	if g == nil {
		return ""
	}
	return g.c.name
}
