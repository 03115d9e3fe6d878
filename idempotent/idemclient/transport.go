package idemclient

import (
	"context"
	"errors"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// AttemptInfo describes one attempt of a guarded request (WithOnAttempt).
type AttemptInfo struct {
	// Method and URL of the request.
	Method, URL string
	// Key is the idempotency key, as sent on every attempt (unquoted).
	Key string
	// Attempt counts from 1.
	Attempt int
	// Status of the response; 0 when the attempt failed in transport.
	Status int
	// Replayed is true when the response carried Idempotent-Replayed: true.
	Replayed bool
	// Err is the transport error of the attempt, nil when a response came.
	Err error
	// Retry is true when another attempt follows, after Wait.
	Retry bool
	// Wait before the next attempt.
	Wait time.Duration
}

// NewClient returns an *http.Client whose transport is
// NewTransport(nil, opts...).
func NewClient(opts ...Option) *http.Client {
	return &http.Client{Transport: NewTransport(nil, opts...)}
}

// NewTransport returns a RoundTripper over base (nil: http.DefaultTransport)
// that makes requests with guarded methods (POST, PATCH) safe to retry and
// retries them:
//
//   - a request without an Idempotency-Key header gets one, a UUID v4 made
//     once per RoundTrip call and sent on every attempt; a caller's header
//     is validated (contract §4; otherwise *InvalidKeyError, nothing sent)
//     and sent as it is;
//   - an attempt is retried after a transport error (the request may or may
//     not have reached the server) or a 408, 409, 425, 429, 500, 502, 503 or
//     504 response; any other response, and any response with
//     Idempotent-Replayed: true, is final;
//   - the wait is Retry-After (seconds or HTTP date, capped) or else capped
//     exponential backoff with full jitter; no wait that would end at or
//     after the request context's deadline is started, no attempt after the
//     context is done, no more than the attempts bound, and no retry the
//     shared budget refuses (*BudgetError);
//   - the body is sent again from GetBody or from a buffer (WithRewindLimit);
//     a discarded response's body is drained (up to 16 KB) and closed.
//
// When it gives up on a retryable response, that last response is returned
// as it is (except for the budget); on a transport error, an *AttemptError.
// Requests with other methods go to base untouched. KeyOf and AttemptsOf
// read the key and the attempt count from the response.
//
// The transport never modifies the caller's request and is safe for
// concurrent use. An invalid option makes every RoundTrip fail with an
// *idempotent.ConfigError.
func NewTransport(base http.RoundTripper, opts ...Option) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	o := &options{
		methods:       []string{http.MethodPost, http.MethodPatch},
		maxAttempts:   DefaultMaxAttempts,
		base:          DefaultBackoffBase,
		max:           DefaultBackoffMax,
		maxRetryAfter: DefaultMaxRetryAfter,
		rewindLimit:   DefaultRewindLimit,
		logger:        slog.Default(),
		now:           time.Now,
		sleep:         sleep,
		jitter:        mrand.Float64,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	if o.err != nil {
		o.logger.Error("idemclient misconfigured; every guarded request will fail", slog.Any("error", o.err))
	}
	return &transport{base: base, o: o}
}

type transport struct {
	base http.RoundTripper
	o    *options
}

type attemptsKey struct{}

// AttemptsOf returns how many attempts the transport made for a response
// (1 when it was answered at once), or 0 when the response did not come
// through it as a guarded request.
func AttemptsOf(resp *http.Response) int {
	if resp == nil || resp.Request == nil {
		return 0
	}
	n, _ := resp.Request.Context().Value(attemptsKey{}).(int)
	return n
}

func (t *transport) guarded(method string) bool {
	m := strings.ToUpper(method)
	if m == "" {
		m = http.MethodGet
	}
	for _, g := range t.o.methods {
		if g == m {
			return true
		}
	}
	return false
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.guarded(req.Method) {
		return t.base.RoundTrip(req)
	}
	if t.o.err != nil {
		closeBody(req)
		return nil, t.o.err
	}
	key, header, err := t.key(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	body, err := newRewinder(req, t.o.rewindLimit)
	if err != nil {
		return nil, &AttemptError{Key: key, Err: err}
	}
	ctx := req.Context()
	var (
		resp    *http.Response
		lastErr error
		cost    int // tokens taken for the latest retry
	)
	next := body.first()
	for attempt := 1; ; attempt++ {
		r := req.Clone(ctx)
		if header != "" {
			r.Header.Set(HeaderKey, header)
		}
		r.Body, r.GetBody, r.ContentLength = next, body.getBody, body.length
		resp, lastErr = t.base.RoundTrip(r)
		if lastErr != nil && resp != nil {
			// A RoundTripper must not return both; keep the error.
			drain(resp)
			resp = nil
		}
		info := AttemptInfo{Method: req.Method, URL: req.URL.Redacted(), Key: key, Attempt: attempt, Err: lastErr}
		if resp != nil {
			info.Status = resp.StatusCode
			info.Replayed = resp.Header.Get(HeaderReplayed) == "true"
		}
		retryable := t.retryable(ctx, resp, lastErr, info.Replayed)
		if !retryable {
			if resp != nil && t.o.budget != nil {
				if attempt == 1 {
					t.o.budget.give(NoRetryIncrement)
				} else {
					t.o.budget.give(cost)
				}
			}
			t.report(info)
			return t.finish(r, resp, lastErr, key, attempt)
		}
		// Retryable: decide whether another attempt can be made.
		wait := t.wait(resp, attempt)
		stop := ""
		switch {
		case attempt >= t.o.maxAttempts:
			stop = "attempts bound reached"
		case !body.rewindable():
			stop = "body over the rewind limit"
		case ctx.Err() != nil:
			stop = "context done"
		case pastDeadline(ctx, t.o.now(), wait):
			stop = "the wait would end past the context's deadline"
		}
		cost = 0
		if stop == "" && t.o.budget != nil {
			cost = RetryCost
			if isTimeout(lastErr) {
				cost = RetryTimeoutCost
			}
			if !t.o.budget.take(cost) {
				t.report(info)
				t.log(ctx, slog.LevelWarn, "idemclient: retry budget exhausted; giving up", info, wait)
				be := &BudgetError{Key: key, Attempts: attempt, Err: lastErr}
				if resp != nil {
					be.Status, be.Header = resp.StatusCode, resp.Header
					drain(resp)
				}
				return nil, be
			}
		}
		if stop == "" {
			var err error
			if next, err = body.again(); err != nil {
				stop = "GetBody failed: " + err.Error()
				if cost > 0 && t.o.budget != nil {
					t.o.budget.give(cost) // no retry after all
				}
			}
		}
		if stop != "" {
			t.report(info)
			t.log(ctx, slog.LevelWarn, "idemclient: giving up: "+stop, info, wait)
			return t.finish(r, resp, lastErr, key, attempt)
		}
		if resp != nil {
			drain(resp)
		}
		info.Retry, info.Wait = true, wait
		t.report(info)
		t.log(ctx, slog.LevelInfo, "idemclient: retrying", info, wait)
		if err := t.o.sleep(ctx, wait); err != nil {
			return nil, &AttemptError{Key: key, Attempts: attempt, Err: errors.Join(lastErr, err)}
		}
	}
}

// finish returns the final outcome of a guarded request.
func (t *transport) finish(r *http.Request, resp *http.Response, err error, key string, attempts int) (*http.Response, error) {
	if err != nil {
		return nil, &AttemptError{Key: key, Attempts: attempts, Err: err}
	}
	// resp.Request is the request of the last attempt (key header set);
	// it also carries the attempt count for AttemptsOf.
	resp.Request = r.WithContext(context.WithValue(r.Context(), attemptsKey{}, attempts))
	return resp, nil
}

func (t *transport) report(info AttemptInfo) {
	if t.o.onAttempt != nil {
		t.o.onAttempt(info)
	}
}

func (t *transport) log(ctx context.Context, level slog.Level, msg string, info AttemptInfo, wait time.Duration) {
	attrs := []slog.Attr{
		slog.String("method", info.Method), slog.String("url", info.URL),
		slog.String("key", redact(info.Key)), slog.Int("attempt", info.Attempt),
		slog.Duration("wait", wait),
	}
	if info.Err != nil {
		attrs = append(attrs, slog.String("error", info.Err.Error()))
	} else {
		attrs = append(attrs, slog.Int("status", info.Status))
	}
	t.o.logger.LogAttrs(ctx, level, msg, attrs...)
}
