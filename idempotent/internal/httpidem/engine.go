package httpidem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/keyjson"
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
	// Principal identifies the caller; "" means anonymous, which an
	// adapter returns only for a request that carries no credentials (or
	// when the user's scope function says so). A request with credentials
	// but no principal the adapter recognises gets an
	// *UnidentifiedCallerError: it is refused, never put in the shared
	// anonymous scope (contract §4).
	Principal(ctx context.Context) (string, error)
}

// UnidentifiedCallerError is returned by Request.Principal for a request
// that carries credentials (an authorizer, IAM authentication, ALB
// authentication headers, an Authorization header) in which the adapter
// finds no principal: Serve answers 500 (problem type unidentified-caller)
// and logs it, so that the operator sets the scope with WithScope.
type UnidentifiedCallerError struct {
	// Credentials says what the request carries, e.g. "an HTTP API Lambda
	// authorizer whose context has no principalId".
	Credentials string
}

func (e *UnidentifiedCallerError) Error() string {
	return "the request carries " + e.Credentials + " but no caller principal the idempotency adapter recognises; set it with WithScope"
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

// DeliveredCodec is implemented by the codec of an adapter whose handler
// can send its response while writing it (the net/http middleware: a body
// over the buffering limit, or a flush). Delivered reports such a response:
// r went to the client already, and could not be kept whole for a replay.
// Encoded, it is a marker ("completed without a stored response"), and a
// decoded marker is Delivered too. A delivered 2xx response that the policy
// stores completes the key with the marker, so that the handler never runs
// again for it (duplicates get 410, TypeNotStored); any other delivered
// response releases the key, as a response not stored does.
type DeliveredCodec[R any] interface {
	Delivered(r R) bool
}

// BodyTooLargeError is returned by Request.Body when the body is over the
// adapter's limit; Serve answers 413.
type BodyTooLargeError struct{ Limit int64 }

func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("request body is over the %d-byte limit", e.Limit)
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

// delivered reports whether r went to the client while it was written
// (DeliveredCodec).
func delivered[R any](codec Codec[R], r R) bool {
	d, ok := codec.(DeliveredCodec[R])
	return ok && d.Delivered(r)
}

// storeRetryAfter is the Retry-After of a 503 after a store failure.
const storeRetryAfter = time.Second

// InProgressRetry is the Retry-After of a 409 for a key in progress: most
// requests end well within a second, so a retry one second later usually
// gets the replay, while the lease (the whole invocation timeout) is only
// the worst case.
const InProgressRetry = time.Second

// inProgressRetryAfter is the Retry-After of a 409: InProgressRetry, or the
// time left on the running request's lease when that is sooner (the key is
// free then). The header is whole seconds rounded up, so it reads 1.
func inProgressRetryAfter(leaseEnd, now time.Time) time.Duration {
	if left := leaseEnd.Sub(now); left > 0 && left < InProgressRetry {
		return left
	}
	return InProgressRetry
}

// Retried reports whether the values of an Idempotency-Attempt header mark
// a retry: the first value is a decimal attempt number of 2 or more.
// Anything else (absent, malformed, 1) is not a retry; the header is a cost
// hint and never refused.
func Retried(values []string) bool {
	if len(values) == 0 {
		return false
	}
	v := strings.TrimSpace(values[0])
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	n, err := strconv.Atoi(v)
	return err == nil && n >= 2
}

// serve is Serve before the report (observe.go).
func serve[R any](ctx context.Context, c *Config, g *idempotent.Guard, req Request, codec Codec[R], run func(context.Context) (R, error)) (R, error) {
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
	if _, err := keyjson.Decode(body); errors.Is(err, keyjson.ErrDuplicateMember) {
		// Parsers disagree on which member of a duplicate wins: no
		// fingerprint can say what the handler will read.
		return codec.Problem(newProblem(400, TypeInvalidBody, "The request body is JSON with a duplicate object member, which parsers read differently; send each member once.")), nil
	}
	principal, err := req.Principal(ctx)
	if err != nil {
		if u, ok := errors.AsType[*UnidentifiedCallerError](err); ok {
			log.ErrorContext(ctx, "idempotency scope unknown; request refused: set WithScope", slog.String("credentials", u.Credentials),
				slog.String("method", method), slog.String("path", req.Path()))
			return codec.Problem(newProblem(500, TypeUnidentifiedCaller, "This request carries "+u.Credentials+
				", but the idempotency layer of this endpoint found no caller principal in it, so it cannot keep callers apart. Nothing ran. The endpoint's operator must name the caller with the WithScope option.")), nil
		}
		log.ErrorContext(ctx, "idempotency scope function failed", slog.Any("error", err))
		return codec.Problem(newProblem(500, TypeInternal, "The caller could not be identified.")), nil
	}
	if principal == "" {
		principal = Anonymous
	}
	path := req.Path()
	fp := fingerprint(method, path, req.Query(), body, c.FingerprintHeaders, req.Header)
	opts := append(slices.Clip(c.Call), idempotent.WithFingerprint(fp))

	if Retried(req.Header(HeaderAttempt)) {
		ctx = idempotent.ReadFirstContext(ctx)
	}
	ran := false
	var handlerErr error
	// The lease end of the run tells a 503 "outcome unknown" when the key
	// is free again.
	var leaseEnd time.Time
	out, err := idempotent.Do(ctx, g, Step, scopeKey(principal, method, path, key), func(ctx context.Context) (R, error) {
		leaseEnd, _ = idempotent.LeaseEndFromContext(ctx)
		ran = true
		r, err := run(ctx)
		if err != nil {
			handlerErr = err
			return r, err
		}
		s := codec.Status(r)
		if !c.Stored(s) || delivered(codec, r) && (s < 200 || s > 299) {
			return r, &notStored[R]{resp: r, status: s}
		}
		return r, nil
	}, opts...)
	if err == nil {
		if !ran {
			if delivered(codec, out) {
				log.InfoContext(ctx, "duplicate of a request whose response was delivered but not stored", slog.String("method", method), slog.String("path", path))
				return codec.Problem(newProblem(410, TypeNotStored, "The request with this Idempotency-Key was processed and its response was delivered, but the response was streamed (too large or flushed) and not stored, so it cannot be replayed. The request is not processed again; use a new key for a new request.")), nil
			}
			log.DebugContext(ctx, "idempotent replay", slog.String("method", method), slog.String("path", path))
			return codec.Replayed(out), nil
		}
		if delivered(codec, out) {
			log.InfoContext(ctx, "response delivered while written and not stored; key completed without a stored response",
				slog.Int("status", codec.Status(out)), slog.String("method", method), slog.String("path", path))
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
		// Do returns the handler's error value itself (joined only with a
		// failed release), so errors.As and Lambda's errorType see its type.
		var zero R
		return zero, err
	}
	return codec.Problem(problemFor(ctx, c, err, leaseEnd)), nil
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

// outcomeUnknownRetryAfter is the Retry-After of a 503 "outcome unknown":
// the key stays held until the lease of the call ends (the invocation's
// deadline, WithLease, or the default lease), so a retry succeeds only
// then. Whole seconds rounded up, at least one.
func outcomeUnknownRetryAfter(leaseEnd, now time.Time) time.Duration {
	d := leaseEnd.Sub(now)
	if d < time.Second {
		return time.Second
	}
	return (d + time.Second - 1).Truncate(time.Second)
}

func problemFor(ctx context.Context, c *Config, err error, leaseEnd time.Time) Problem {
	log := c.Logger
	var p Problem
	switch {
	case errors.Is(err, idempotent.ErrPayloadMismatch):
		p = newProblem(422, TypePayloadMismatch, "This Idempotency-Key was used with a different request to this method and path (another query or body). Use a new key for a new request.")
	case errors.Is(err, idempotent.ErrInProgress):
		p = newProblem(409, TypeInProgress, "A request with this Idempotency-Key is being processed. Retry after the time in Retry-After to get its response.")
		p.RetryAfter = InProgressRetry
		if ipe, ok := errors.AsType[*idempotent.InProgressError](err); ok {
			p.RetryAfter = inProgressRetryAfter(ipe.LeaseExpiration, c.Clock())
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
		p.RetryAfter = outcomeUnknownRetryAfter(leaseEnd, c.Clock())
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
