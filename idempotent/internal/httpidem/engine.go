package httpidem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// Request is what Serve needs of one HTTP request. Adapters implement it
// over their event type; Body and Principal are only called for guarded
// requests that carry a valid key.
type Request interface {
	// Method is the HTTP method, upper case.
	Method() string
	// Path is the request path, part of the scope and the fingerprint.
	Path() string
	// Query is the canonical query string (CanonicalQuery,
	// CanonicalQueryMaps).
	Query() string
	// Header returns every value of a header, name matched
	// case-insensitively (HeaderValues).
	Header(name string) []string
	// Body returns the request body, base64-decoded when the event says so.
	// An error is answered 400 (or 413 for a *BodyTooLargeError).
	Body() ([]byte, error)
	// Principal identifies the caller; "" means anonymous.
	Principal(ctx context.Context) (string, error)
}

// Codec translates an adapter's response type R.
type Codec[R any] interface {
	// Status is the HTTP status of r.
	Status(r R) int
	// Problem builds the response for a library-made error.
	Problem(p Problem) R
	// Replayed returns r marked with Idempotent-Replayed: true.
	Replayed(r R) R
}

// BodyTooLargeError is returned by Request.Body when the body is over the
// adapter's limit; Serve answers 413.
type BodyTooLargeError struct{ Limit int64 }

func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("request body is over the %d-byte limit", e.Limit)
}

// Anonymous is the principal of a caller no authorizer identified.
const Anonymous = "anonymous"

// Config is the configuration shared by every adapter. Adapters' options set
// its fields; NewConfig gives the defaults. A Config is read-only once the
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
	// Core are the options passed to idempotent.Do.
	Core []idempotent.Option
	// Clock is the clock for Retry-After (WithClock sets it and the core's).
	Clock func() time.Time
	// Logger logs decisions.
	Logger *slog.Logger
	// Err collects option errors (*idempotent.ConfigError); every request
	// is then answered 500.
	Err error
}

// NewConfig returns the defaults.
func NewConfig() *Config {
	return &Config{
		Methods: []string{http.MethodPost, http.MethodPatch},
		Stored:  DefaultStored,
		Clock:   time.Now,
		Logger:  slog.Default(),
	}
}

// Fail records an option error.
func (c *Config) Fail(option string, err error) {
	c.Err = errors.Join(c.Err, &idempotent.ConfigError{Option: option, Err: err})
}

// Finish checks the core options as idempotent.Do will see them
// (idempotent.CheckOptions), so a bad option is reported once, when the
// adapter is built, and every request is then refused with 500.
func (c *Config) Finish() {
	if err := idempotent.CheckOptions(c.Core...); err != nil {
		c.Err = errors.Join(c.Err, err)
	}
	if c.Err != nil {
		c.Logger.Error("idempotency misconfigured; every request will be refused", slog.Any("error", c.Err))
	}
}

// SetMethods sets the guarded methods (validated: non-empty tokens).
func (c *Config) SetMethods(option string, methods []string) {
	if len(methods) == 0 {
		c.Fail(option, errors.New("no methods"))
		return
	}
	out := make([]string, 0, len(methods))
	for _, m := range methods {
		if m == "" || strings.ContainsAny(m, " \t\r\n") {
			c.Fail(option, fmt.Errorf("invalid method %q", m))
			return
		}
		out = append(out, strings.ToUpper(m))
	}
	c.Methods = out
}

// SetFingerprintHeaders sets the extra fingerprint headers.
func (c *Config) SetFingerprintHeaders(option string, names []string) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, " \t\r\n:") {
			c.Fail(option, fmt.Errorf("invalid header name %q", n))
			return
		}
		out = append(out, strings.ToLower(n))
	}
	slices.Sort(out)
	c.FingerprintHeaders = slices.Compact(out)
}

// SetStored sets the stored-status predicate.
func (c *Config) SetStored(option string, f func(int) bool) {
	if f == nil {
		c.Fail(option, errors.New("nil predicate"))
		return
	}
	c.Stored = f
}

// SetClock sets the clock here and in the core.
func (c *Config) SetClock(option string, now func() time.Time) {
	if now == nil {
		c.Fail(option, errors.New("nil clock"))
		return
	}
	c.Clock = now
	c.Core = append(c.Core, idempotent.WithClock(now))
}

// SetLogger sets the logger here and in the core.
func (c *Config) SetLogger(l *slog.Logger) {
	if l == nil {
		return
	}
	c.Logger = l
	c.Core = append(c.Core, idempotent.WithLogger(l))
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

func (c *Config) guarded(method string) bool {
	for _, m := range c.Methods {
		if m == method {
			return true
		}
	}
	return false
}

// notStored leaves idempotent.Do with a response the policy does not store,
// so that Do releases the key; Serve unwraps it and answers with resp.
type notStored[R any] struct {
	resp   R
	status int
}

func (e *notStored[R]) Error() string {
	return fmt.Sprintf("httpidem: status %d not stored", e.status)
}

func (e *notStored[R]) Unwrap() error { return errNotStored }

// storeRetryAfter is the Retry-After of a 503 after a store failure.
const storeRetryAfter = time.Second

// Serve runs one request through the HTTP idempotency semantics. run calls
// the user's handler with the context it is given (which carries the record
// key, see idempotent.KeyFromContext). The returned error is only ever the
// handler's own error (after its key was released); every other failure is
// a problem response.
func Serve[R any](ctx context.Context, c *Config, store idempotent.Store, req Request, codec Codec[R], run func(context.Context) (R, error)) (R, error) {
	log := c.Logger
	if c.Err != nil {
		log.ErrorContext(ctx, "idempotency misconfigured; request refused", slog.Any("error", c.Err))
		return codec.Problem(newProblem(500, TypeConfig, "The idempotency layer of this endpoint is misconfigured.")), nil
	}
	method := req.Method()
	if !c.guarded(method) {
		return run(ctx)
	}
	values := req.Header(HeaderKey)
	if len(values) == 0 {
		if c.RequireKey {
			return codec.Problem(newProblem(400, TypeMissingKey, "This request requires an Idempotency-Key header.")), nil
		}
		return run(ctx)
	}
	key, err := ParseKey(values)
	if err != nil {
		return codec.Problem(newProblem(400, TypeInvalidKey, err.Error()+". A key is 1-255 visible ASCII characters, or a quoted string (RFC 8941).")), nil
	}
	body, err := req.Body()
	if err != nil {
		if tl, ok := errors.AsType[*BodyTooLargeError](err); ok {
			return codec.Problem(newProblem(413, TypeBodyTooLarge, tl.Error()+"; it cannot be made idempotent.")), nil
		}
		return codec.Problem(newProblem(400, TypeInvalidBody, "The request body cannot be read: "+err.Error()+".")), nil
	}
	principal, err := req.Principal(ctx)
	if err != nil {
		log.ErrorContext(ctx, "idempotency scope function failed", slog.Any("error", err))
		return codec.Problem(newProblem(500, TypeInternal, "The caller could not be identified.")), nil
	}
	if principal == "" {
		principal = Anonymous
	}
	path := req.Path()
	fp := fingerprint(method, path, req.Query(), body, c.FingerprintHeaders, req.Header)
	opts := append(slices.Clip(c.Core), idempotent.WithFingerprint(fp))

	ran := false
	var handlerErr error
	out, err := idempotent.Do(ctx, store, scopeKey(principal, method, path, key), func(ctx context.Context) (R, error) {
		ran = true
		r, err := run(ctx)
		if err != nil {
			handlerErr = err
			return r, err
		}
		if s := codec.Status(r); !c.Stored(s) {
			return r, &notStored[R]{resp: r, status: s}
		}
		return r, nil
	}, opts...)
	if err == nil {
		if !ran {
			log.DebugContext(ctx, "idempotent replay", slog.String("method", method), slog.String("path", path))
			return codec.Replayed(out), nil
		}
		return out, nil
	}
	if ns, ok := errors.AsType[*notStored[R]](err); ok {
		attrs := []any{slog.Int("status", ns.status), slog.String("path", path)}
		if rest := withoutNotStored(err); rest != nil {
			attrs = append(attrs, slog.Any("error", rest))
			log.WarnContext(ctx, "response not stored; releasing the key failed", attrs...)
		} else {
			log.DebugContext(ctx, "response not stored; key released", attrs...)
		}
		return ns.resp, nil
	}
	if handlerErr != nil {
		var zero R
		return zero, err
	}
	return codec.Problem(problemFor(ctx, c, err)), nil
}

// withoutNotStored returns the other errors joined with a notStored one (a
// failed release), or nil.
func withoutNotStored(err error) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil
	}
	var rest []error
	for _, e := range j.Unwrap() {
		if !errors.Is(e, errNotStored) {
			rest = append(rest, e)
		}
	}
	return errors.Join(rest...)
}

func problemFor(ctx context.Context, c *Config, err error) Problem {
	log := c.Logger
	var p Problem
	switch {
	case errors.Is(err, idempotent.ErrPayloadMismatch):
		p = newProblem(422, TypePayloadMismatch, "This Idempotency-Key was used with a different request (method, path, query or body). Use a new key for a new request.")
	case errors.Is(err, idempotent.ErrInProgress):
		p = newProblem(409, TypeInProgress, "A request with this Idempotency-Key is being processed. Retry after the time in Retry-After to get its response.")
		p.RetryAfter = time.Second
		if ipe, ok := errors.AsType[*idempotent.InProgressError](err); ok {
			p.RetryAfter = ipe.RetryAfter(c.Clock())
		}
	case errors.Is(err, idempotent.ErrLeaseLost):
		log.WarnContext(ctx, "idempotency lease lost; response not stored", slog.Any("error", err))
		p = newProblem(409, TypeInProgress, "Another request with this Idempotency-Key took over while this one ran. Retry to get the stored response.")
		p.RetryAfter = time.Second
	case errors.Is(err, idempotent.ErrCorruptRecord):
		log.ErrorContext(ctx, "corrupt idempotency record", slog.Any("error", err))
		p = newProblem(500, TypeCorruptRecord, "The stored response for this Idempotency-Key cannot be read.")
	case storeOp(err) == "complete":
		// The handler ran; its response could not be stored. The key stays
		// held until the lease (the invocation's deadline) ends, as after a
		// crash; a retry then runs the handler again.
		log.ErrorContext(ctx, "idempotency store failed after the handler ran; response not stored", slog.Any("error", err))
		p = newProblem(503, TypeOutcomeUnknown, "The request was processed, but the idempotency store could not record its response, so its outcome is unknown to this endpoint. Retry after the time in Retry-After with the same key.")
		p.RetryAfter = storeRetryAfter
		if dl, ok := ctx.Deadline(); ok {
			p.RetryAfter = max(storeRetryAfter, time.Until(dl).Truncate(time.Second)+time.Second)
		}
	case isType[*idempotent.StoreError](err):
		log.ErrorContext(ctx, "idempotency store failed; request refused", slog.Any("error", err))
		p = newProblem(503, TypeStoreError, "The idempotency store is unavailable; the request was not processed. Retry later with the same key.")
		p.RetryAfter = storeRetryAfter
	case isType[*idempotent.ConfigError](err):
		log.ErrorContext(ctx, "idempotency misconfigured; request refused", slog.Any("error", err))
		p = newProblem(500, TypeConfig, "The idempotency layer of this endpoint is misconfigured.")
	default:
		log.ErrorContext(ctx, "idempotency failed", slog.Any("error", err))
		p = newProblem(500, TypeInternal, "The request could not be made idempotent.")
	}
	return p
}

// storeOp is the Op of the *idempotent.StoreError in err, or "".
func storeOp(err error) string {
	if se, ok := errors.AsType[*idempotent.StoreError](err); ok {
		return se.Op
	}
	return ""
}

func isType[E error](err error) bool {
	_, ok := errors.AsType[E](err)
	return ok
}
