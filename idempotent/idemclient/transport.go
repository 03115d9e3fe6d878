package idemclient

import (
	"context"
	"errors"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// AttemptInfo describes one attempt of a guarded request (WithOnAttempt).
type AttemptInfo struct {
	// Method and URL of the request.
	Method, URL string
	// Key is the idempotency key of every attempt, in the form of
	// AttemptError.Key (a header value that resends the request).
	Key string
	// Attempt counts from 1 over the logical request, every redirect hop
	// included.
	Attempt int
	// Status of the response; 0 when the attempt failed in transport.
	Status int
	// Replayed is true when the response carried Idempotent-Replayed: true.
	Replayed bool
	// Problem is the problem type (RFC 9457) of a 500 response with
	// Content-Type application/problem+json, read from the first 4 KB of
	// its body (which the caller still gets whole); "" for other outcomes.
	// A type with which our server marks the failure permanent
	// (configuration-error, unidentified-caller, corrupt-record) ends the
	// request with that response: another attempt cannot succeed.
	Problem string
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
//     once per logical request and sent on every attempt; a caller's header
//     (under any spelling of its name) is validated (contract §4; otherwise
//     *InvalidKeyError, nothing sent) and sent as it is;
//   - a redirect that keeps the method (307, 308) is the same logical
//     request: every hop net/http's Client makes for it carries the key of
//     the first hop, and attempts are counted over all hops; a redirect
//     that turns it into a GET (301, 302, 303) is a request for another
//     resource: that hop, and any later one, carries no key (not even the
//     caller's) and is sent once; a hop is a request whose Response is a
//     redirect response this transport returned, and only the first request
//     made of it (any other is a new logical request, with a new key);
//   - an attempt is retried after a transport error (the request may or may
//     not have reached the server) or a 408, 409, 425, 429, 500, 502, 503 or
//     504 response; any other response, any response with
//     Idempotent-Replayed: true, and a 500 that our server marks permanent
//     (problem types configuration-error, unidentified-caller and
//     corrupt-record, read from the first 4 KB of the body, which the
//     caller still gets whole; AttemptInfo.Problem) is final;
//   - the wait is Retry-After (seconds or HTTP date; over the cap,
//     WithMaxRetryAfter, no retry) or else capped exponential backoff with
//     full jitter; no wait that would end at or after the request context's
//     deadline is started, no attempt after the context is done, no more
//     than the attempts bound, and no retry the shared budget refuses
//     (*BudgetError);
//   - the body is sent again from GetBody or from a buffer (WithRewindLimit);
//     a discarded response's body is drained (up to 16 KB) and closed.
//
// A final response, and the last retryable one when the transport gives up
// (except for the budget), is returned as it is; on a transport error, an
// *AttemptError. Every key the transport reports (KeyOf, the errors'
// Key, AttemptInfo.Key) is a header value that sends the same logical
// request again.
// Requests with other methods go to base untouched. KeyOf and AttemptsOf
// read the key and the attempt count from the response.
//
// A request without a URL or a Header fails at once (nothing sent). The
// transport never modifies the caller's request and is safe for
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

// logical is one logical request as its latest hop sent it.
type logical struct {
	method   string   // upper case
	key      string   // resendable (AttemptError.Key)
	header   []string // the Idempotency-Key values sent
	attempts int      // attempts so far, over every hop
}

// link ties a response the transport returned to the logical request its
// hop belonged to, for the redirect hop net/http's Client may make of it.
// It rides on the context of the response's Request.
type link struct {
	l       *logical
	guarded bool                         // the hop carried l's key (false: a keyless hop after l)
	req     *http.Request                // the Request it was attached to
	hop     atomic.Pointer[http.Request] // the hop made of the response
}

type linkKey struct{}

// attach sets resp.Request to r (the request of the hop's last attempt)
// linked to l, and returns resp.
func attach(resp *http.Response, r *http.Request, l *logical, guarded bool) *http.Response {
	lk := &link{l: l, guarded: guarded}
	resp.Request = r.WithContext(context.WithValue(r.Context(), linkKey{}, lk))
	lk.req = resp.Request
	return resp
}

func linkOf(r *http.Request) *link {
	lk, _ := r.Context().Value(linkKey{}).(*link)
	if lk == nil || lk.req != r {
		return nil // another request that took the context of a linked one
	}
	return lk
}

// origin returns the logical request a redirect hop belongs to, or nil for
// a first hop. net/http's Client sets Request.Response on every hop it
// makes for a redirect to the response that caused it, whose Request the
// transport linked to its logical request. Only a redirect response that
// came from the transport is followed, by one request only (sent again as
// it is, by a RoundTripper stacked above, it is the same hop): a request
// built from an earlier one (its Response field copied) is a first hop,
// with a key of its own, and a Response/Request cycle is never walked.
func origin(req *http.Request) *logical {
	resp := req.Response
	if resp == nil || resp.Request == nil {
		return nil
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return nil // net/http follows no other status
	}
	lk := linkOf(resp.Request)
	if lk == nil || !lk.hop.CompareAndSwap(nil, req) && lk.hop.Load() != req {
		return nil
	}
	return lk.l
}

// AttemptsOf returns how many attempts the transport made for a response
// (1 when it was answered at once), counted over every redirect hop of the
// logical request, or 0 when the response did not come through it as a
// guarded request (another method, or the GET a 301, 302 or 303 turned a
// guarded request into).
func AttemptsOf(resp *http.Response) int {
	if resp == nil || resp.Request == nil {
		return 0
	}
	if lk := linkOf(resp.Request); lk != nil && lk.guarded {
		return lk.l.attempts
	}
	return 0
}

// method returns m as the transport compares methods: upper case, "" as GET.
func method(m string) string {
	if m == "" {
		return http.MethodGet
	}
	return strings.ToUpper(m)
}

func (t *transport) guarded(m string) bool {
	return slices.Contains(t.o.methods, method(m))
}

// keyless sends a redirect hop that changed the method of a guarded request
// (301, 302 and 303 make a GET of it): a request for another resource, so
// it carries no key (net/http copies the caller's headers onto every hop;
// the key is removed from a copy) and is sent once, as other methods are.
func (t *transport) keyless(req *http.Request, prev *logical) (*http.Response, error) {
	r := req
	if hasHeader(req.Header, HeaderKey) {
		r = req.Clone(req.Context())
		delKey(r.Header)
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil || resp == nil {
		return resp, err
	}
	// Linked, so that a later hop of the chain is keyless too.
	return attach(resp, r, prev, false), nil
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	prev := origin(req)
	if prev != nil && method(req.Method) != prev.method {
		return t.keyless(req, prev)
	}
	if !t.guarded(req.Method) {
		return t.base.RoundTrip(req)
	}
	if t.o.err != nil {
		closeBody(req)
		return nil, t.o.err
	}
	if err := unsendable(req); err != nil {
		closeBody(req)
		return nil, err
	}
	key, header, err := t.key(req, prev)
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
	first := 1 // this hop's first attempt, counted over the logical request
	if prev != nil {
		first = prev.attempts + 1
	}
	next := body.first()
	for attempt := first; ; attempt++ {
		r := req.Clone(ctx)
		if header != nil {
			r.Header[HeaderKey] = slices.Clone(header)
		}
		if attempt > first && !hasHeader(req.Header, HeaderAttempt) {
			// A resend to this URL: the server may read first.
			r.Header.Set(HeaderAttempt, strconv.Itoa(attempt-first+1))
		}
		r.Body, r.GetBody, r.ContentLength = next, body.getBody, body.length
		resp, lastErr = t.base.RoundTrip(r)
		switch {
		case lastErr != nil && resp != nil:
			// A RoundTripper must not return both; keep the error.
			drain(resp)
			resp = nil
		case lastErr == nil && resp == nil:
			// Nor neither: the attempt failed, outcome unknown.
			lastErr = errNoResponse
		}
		info := AttemptInfo{Method: req.Method, URL: req.URL.Redacted(), Key: key, Attempt: attempt, Err: lastErr}
		if resp != nil {
			info.Status = resp.StatusCode
			info.Replayed = resp.Header.Get(HeaderReplayed) == "true"
			if !info.Replayed {
				info.Problem = problemType(resp)
			}
		}
		retryable := t.retryable(ctx, resp, lastErr, info.Replayed, info.Problem)
		if !retryable {
			if resp != nil && t.o.budget != nil {
				if attempt == first {
					t.o.budget.give(NoRetryIncrement)
				} else {
					t.o.budget.give(cost)
				}
			}
			t.report(info)
			if permanentProblem(info.Problem) {
				t.log(ctx, slog.LevelWarn, "idemclient: not retried: the server marks the failure permanent", info, 0)
			}
			return t.finish(r, resp, lastErr, key, attempt)
		}
		// Retryable: decide whether another attempt can be made.
		wait, over := t.wait(resp, attempt)
		stop := ""
		switch {
		case attempt >= t.o.maxAttempts:
			stop = "attempts bound reached"
		case over:
			stop = "the server's Retry-After is over the WithMaxRetryAfter cap"
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

// errNoResponse is the error of an attempt whose RoundTripper returned
// neither a response nor an error (net/http's Client says the same).
var errNoResponse = errors.New("idemclient: RoundTripper returned a nil *Response with a nil error")

// finish returns the final outcome of a guarded request.
func (t *transport) finish(r *http.Request, resp *http.Response, err error, key string, attempts int) (*http.Response, error) {
	if err != nil {
		return nil, &AttemptError{Key: key, Attempts: attempts, Err: err}
	}
	// resp.Request is the request of the last attempt (key header set),
	// linked to the logical request, for AttemptsOf and for the hop of a
	// redirect of this response.
	l := &logical{method: method(r.Method), key: key, header: keyValues(r.Header), attempts: attempts}
	return attach(resp, r, l, true), nil
}

// unsendable returns the error net/http's Transport gives, before sending
// anything, for a request without a URL or a Header: another attempt would
// fail the same way (and the key could not be written into a nil Header).
func unsendable(req *http.Request) error {
	switch {
	case req.URL == nil:
		return errors.New("idemclient: nil Request.URL")
	case req.Header == nil:
		return errors.New("idemclient: nil Request.Header")
	}
	return nil
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
	if info.Problem != "" {
		attrs = append(attrs, slog.String("problem", info.Problem))
	}
	t.o.logger.LogAttrs(ctx, level, msg, attrs...)
}
