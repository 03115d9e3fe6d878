package idemhttp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// Defaults of the client transport.
const (
	// DefaultMaxAttempts bounds the attempts of one logical request (the
	// first one included).
	DefaultMaxAttempts = 5
	// DefaultBackoffBase is the backoff before the first retry's jitter:
	// retry n waits a random time in [0, min(max, base·2^(n-1))).
	DefaultBackoffBase = 250 * time.Millisecond
	// DefaultBackoffMax caps the exponential backoff.
	DefaultBackoffMax = 8 * time.Second
	// DefaultMaxRetryAfter caps a server's Retry-After.
	DefaultMaxRetryAfter = 20 * time.Second
	// DefaultRewindLimit is how much of a request body without GetBody is
	// buffered so that it can be sent again (6 MB, the middleware's limit).
	DefaultRewindLimit = DefaultMaxBody
)

// drainLimit is how much of a discarded response body is read before it is
// closed, so that the connection can be reused.
const drainLimit = 16 << 10

// KeyForm is how a generated key is written in the Idempotency-Key header.
type KeyForm int

const (
	// KeyToken sends the key bare, as Stripe's API takes it:
	// Idempotency-Key: 8e03978e-40d5-43e8-bc93-6894a57f9324
	KeyToken KeyForm = iota
	// KeyQuoted sends the key as an RFC 8941 structured-field string, as the
	// IETF draft writes it: Idempotency-Key: "8e03978e-…"
	KeyQuoted
)

// TransportOption configures NewTransport and NewClient.
type TransportOption func(*transportOptions)

type transportOptions struct {
	methods       []string
	form          KeyForm
	maxAttempts   int
	base, max     time.Duration
	maxRetryAfter time.Duration
	budget        *RetryBudget
	rewindLimit   int64
	onAttempt     func(AttemptInfo)
	logger        *slog.Logger
	err           error

	// Injected in tests.
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func() float64 // in [0, 1)
}

func (o *transportOptions) fail(option string, err error) {
	o.err = errors.Join(o.err, &idempotent.ConfigError{Option: option, Err: err})
}

// WithGuardedMethods sets the methods the transport attaches keys to and
// retries (default POST and PATCH, as the middleware guards). Requests with
// other methods pass through untouched: no key, no retry.
func WithGuardedMethods(methods ...string) TransportOption {
	return func(o *transportOptions) {
		if len(methods) == 0 {
			o.fail("WithGuardedMethods", errors.New("no methods"))
			return
		}
		out := make([]string, 0, len(methods))
		for _, m := range methods {
			if m == "" || strings.ContainsAny(m, " \t\r\n") {
				o.fail("WithGuardedMethods", fmt.Errorf("invalid method %q", m))
				return
			}
			out = append(out, strings.ToUpper(m))
		}
		o.methods = out
	}
}

// WithKeyForm sets how generated keys are written (default KeyToken). A
// caller's own header value is always sent as the caller wrote it.
func WithKeyForm(f KeyForm) TransportOption {
	return func(o *transportOptions) {
		if f != KeyToken && f != KeyQuoted {
			o.fail("WithKeyForm", fmt.Errorf("unknown key form %d", f))
			return
		}
		o.form = f
	}
}

// WithMaxAttempts bounds the attempts of one logical request, the first one
// included (default DefaultMaxAttempts; 1 disables retries).
func WithMaxAttempts(n int) TransportOption {
	return func(o *transportOptions) {
		if n < 1 {
			o.fail("WithMaxAttempts", fmt.Errorf("%d attempts", n))
			return
		}
		o.maxAttempts = n
	}
}

// WithBackoff sets the capped exponential backoff with full jitter: retry n
// waits a uniformly random time in [0, min(max, base·2^(n-1))) when the
// response has no Retry-After (defaults DefaultBackoffBase,
// DefaultBackoffMax).
func WithBackoff(base, max time.Duration) TransportOption {
	return func(o *transportOptions) {
		if base <= 0 || max < base {
			o.fail("WithBackoff", fmt.Errorf("base %v, max %v: need 0 < base <= max", base, max))
			return
		}
		o.base, o.max = base, max
	}
}

// WithMaxRetryAfter caps the wait a server asks for in Retry-After (default
// DefaultMaxRetryAfter): a longer one is waited for max only.
func WithMaxRetryAfter(max time.Duration) TransportOption {
	return func(o *transportOptions) {
		if max < 0 {
			o.fail("WithMaxRetryAfter", fmt.Errorf("negative cap %v", max))
			return
		}
		o.maxRetryAfter = max
	}
}

// WithRetryBudget makes every retry take tokens from b, shared by every
// transport given the same b (see RetryBudget). Without it retries are
// bounded per request only.
func WithRetryBudget(b *RetryBudget) TransportOption {
	return func(o *transportOptions) {
		if b == nil {
			o.fail("WithRetryBudget", errors.New("nil budget"))
			return
		}
		o.budget = b
	}
}

// WithRewindLimit sets how many bytes of a request body without GetBody are
// buffered so that retries can send it again (default DefaultRewindLimit).
// A longer body is sent once, with its key, and never retried. Requests
// built by http.NewRequest from a *bytes.Buffer, *bytes.Reader or
// *strings.Reader have GetBody and are never buffered.
func WithRewindLimit(n int64) TransportOption {
	return func(o *transportOptions) {
		if n < 0 {
			o.fail("WithRewindLimit", fmt.Errorf("negative limit %d", n))
			return
		}
		o.rewindLimit = n
	}
}

// WithOnAttempt calls f after every attempt of a guarded request, from the
// goroutine that called RoundTrip, before any wait.
func WithOnAttempt(f func(AttemptInfo)) TransportOption {
	return func(o *transportOptions) {
		if f == nil {
			o.fail("WithOnAttempt", errors.New("nil function"))
			return
		}
		o.onAttempt = f
	}
}

// WithTransportLogger sets the logger of retries and give-ups (default
// slog.Default()). Keys are logged redacted: their first 4 characters.
func WithTransportLogger(l *slog.Logger) TransportOption {
	return func(o *transportOptions) {
		if l == nil {
			o.fail("WithTransportLogger", errors.New("nil logger"))
			return
		}
		o.logger = l
	}
}

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

// InvalidKeyError reports a caller-supplied Idempotency-Key header that is
// not a valid key (contract §4). The request is not sent.
type InvalidKeyError struct {
	// Reason says what is wrong.
	Reason string
}

func (e *InvalidKeyError) Error() string {
	return "idemhttp: invalid Idempotency-Key header: " + e.Reason
}

// AttemptError is the transport error of the last attempt of a guarded
// request when the transport gives up on it (not retryable, attempts
// bound, the context's deadline or cancellation, a body that cannot be sent
// again). It unwraps to that error, so errors.Is(err,
// context.DeadlineExceeded) and errors.As(err, *net.OpError) still work.
// The request may or may not have reached the server: send it again later
// with Key to learn its outcome.
type AttemptError struct {
	// Key is the idempotency key of every attempt.
	Key string
	// Attempts made.
	Attempts int
	// Err is the last attempt's error.
	Err error
}

func (e *AttemptError) Error() string {
	return fmt.Sprintf("idemhttp: %d attempt(s) with key %s: %v", e.Attempts, redact(e.Key), e.Err)
}

// Unwrap returns the last attempt's error.
func (e *AttemptError) Unwrap() error { return e.Err }

// BudgetError is returned when a guarded request should be retried but the
// shared RetryBudget has no tokens left. It carries the last attempt's
// outcome: Status and Header of its response (whose body was drained and
// closed), or its transport error Err. The request may or may not have
// taken effect: send it again later with Key.
type BudgetError struct {
	// Key is the idempotency key of every attempt.
	Key string
	// Attempts made.
	Attempts int
	// Status and Header of the last response; 0 and nil when the last
	// attempt failed in transport.
	Status int
	Header http.Header
	// Err is the last attempt's transport error, nil when it got a response.
	Err error
}

func (e *BudgetError) Error() string {
	last := e.Err
	if last == nil {
		last = fmt.Errorf("status %d", e.Status)
	}
	return fmt.Sprintf("idemhttp: retry budget exhausted after %d attempt(s) with key %s: %v", e.Attempts, redact(e.Key), last)
}

// Unwrap returns the last attempt's transport error (nil after a response).
func (e *BudgetError) Unwrap() error { return e.Err }

// Costs of the retry budget, those of the AWS SDK's standard retryer.
const (
	// RetryCost is taken from a RetryBudget by a retry.
	RetryCost = 5
	// RetryTimeoutCost is taken by a retry after a transport timeout.
	RetryTimeoutCost = 10
	// NoRetryIncrement is given back by a request answered at its first
	// attempt.
	NoRetryIncrement = 1
)

// RetryBudget is a token bucket shared by the transports (and goroutines)
// that use it, so that a fleet of clients does not multiply an outage's load
// by its retry count: a retry takes RetryCost tokens (RetryTimeoutCost after
// a timeout), a request that ends with a final answer gives back the cost of
// its last retry, or NoRetryIncrement when it needed none; the bucket never
// holds more than its capacity. When a retry finds too few tokens, the
// request ends with a *BudgetError. The zero value is an empty bucket that
// allows no retry; use NewRetryBudget. It is safe for concurrent use.
type RetryBudget struct {
	mu       sync.Mutex
	tokens   int
	capacity int
}

// NewRetryBudget returns a full bucket of capacity tokens (the AWS SDK
// uses 500: 100 retries, or 50 after timeouts).
func NewRetryBudget(capacity int) *RetryBudget {
	capacity = max(capacity, 0)
	return &RetryBudget{tokens: capacity, capacity: capacity}
}

// Tokens returns the tokens left.
func (b *RetryBudget) Tokens() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokens
}

func (b *RetryBudget) take(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

func (b *RetryBudget) give(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(b.tokens+n, b.capacity)
}

// NewClient returns an *http.Client whose transport is
// NewTransport(nil, opts...).
func NewClient(opts ...TransportOption) *http.Client {
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
func NewTransport(base http.RoundTripper, opts ...TransportOption) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	o := &transportOptions{
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
		o.logger.Error("idemhttp transport misconfigured; every guarded request will fail", slog.Any("error", o.err))
	}
	return &transport{base: base, o: o}
}

type transport struct {
	base http.RoundTripper
	o    *transportOptions
}

// KeyOf returns the idempotency key a response's request carried (the
// transport's generated key, or the caller's, unquoted), or "" when it
// carried none or an invalid one.
func KeyOf(resp *http.Response) string {
	if resp == nil || resp.Request == nil {
		return ""
	}
	k, err := httpidem.ParseKey(resp.Request.Header.Values(HeaderKey))
	if err != nil {
		return ""
	}
	return k
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
				t.log(ctx, slog.LevelWarn, "idemhttp: retry budget exhausted; giving up", info, wait)
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
			t.log(ctx, slog.LevelWarn, "idemhttp: giving up: "+stop, info, wait)
			return t.finish(r, resp, lastErr, key, attempt)
		}
		if resp != nil {
			drain(resp)
		}
		info.Retry, info.Wait = true, wait
		t.report(info)
		t.log(ctx, slog.LevelInfo, "idemhttp: retrying", info, wait)
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

// key returns the key of req and the header value to set ("" when the
// caller's header is kept).
func (t *transport) key(req *http.Request) (key, header string, err error) {
	if vs := req.Header.Values(HeaderKey); len(vs) > 0 {
		k, err := httpidem.ParseKey(vs)
		if err != nil {
			var ke *httpidem.KeyError
			if errors.As(err, &ke) {
				return "", "", &InvalidKeyError{Reason: ke.Reason}
			}
			return "", "", &InvalidKeyError{Reason: err.Error()}
		}
		return k, "", nil
	}
	k := newKey()
	if t.o.form == KeyQuoted {
		return k, `"` + k + `"`, nil
	}
	return k, k, nil
}

// newKey returns a random (version 4) UUID in its canonical form.
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// retryable says whether an attempt's outcome calls for another attempt.
func (t *transport) retryable(ctx context.Context, resp *http.Response, err error, replayed bool) bool {
	if err != nil {
		if ctx.Err() != nil {
			return false // the caller's context ended the attempt
		}
		return !permanent(err)
	}
	if replayed {
		return false // the stored answer of the first request: final
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// permanent reports transport errors that another attempt cannot cure: a
// certificate the client rejects. Every other transport error (refused,
// reset, EOF, timeout, DNS) is retried: with the key attached that is safe
// whether or not the request reached the server.
func permanent(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// wait returns the wait before attempt+1: the response's Retry-After,
// capped, or the jittered backoff.
func (t *transport) wait(resp *http.Response, attempt int) time.Duration {
	if resp != nil {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), t.o.now()); ok {
			return min(d, t.o.maxRetryAfter)
		}
	}
	ceil := t.o.base
	for i := 1; i < attempt && ceil < t.o.max; i++ {
		if ceil > t.o.max/2 {
			ceil = t.o.max
		} else {
			ceil *= 2
		}
	}
	return time.Duration(t.o.jitter() * float64(ceil))
}

// parseRetryAfter reads a Retry-After value: delta-seconds or an HTTP date
// (RFC 9110 §10.2.3). A date in the past is no wait.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
				return math.MaxInt64, true
			}
			return 0, false
		}
		if n > uint64(math.MaxInt64/int64(time.Second)) {
			return math.MaxInt64, true
		}
		return time.Duration(n) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}

// pastDeadline says whether a wait started now would end at or after the
// context's deadline.
func pastDeadline(ctx context.Context, now time.Time, wait time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && !now.Add(wait).Before(dl)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// redact returns the first 4 characters of a key and an ellipsis.
func redact(key string) string {
	if len(key) <= 4 {
		return "…"
	}
	return key[:4] + "…"
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// drain reads a bounded part of a discarded response's body and closes it,
// so that its connection can be reused.
func drain(resp *http.Response) {
	if resp.Body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	_ = resp.Body.Close()
}

// rewinder gives each attempt the request body.
type rewinder struct {
	body    io.ReadCloser
	getBody func() (io.ReadCloser, error)
	length  int64
	buf     []byte
	once    bool // the body can be sent once only
}

func newRewinder(req *http.Request, limit int64) (*rewinder, error) {
	w := &rewinder{body: req.Body, getBody: req.GetBody, length: req.ContentLength}
	if req.Body == nil || req.Body == http.NoBody {
		w.getBody = nil // no body on any attempt
		return w, nil
	}
	if req.GetBody != nil {
		return w, nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		_ = req.Body.Close()
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(b)) > limit {
		// Too long to buffer: sent once, from what was read and the rest.
		w.once = true
		w.body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), req.Body), req.Body}
		return w, nil
	}
	_ = req.Body.Close()
	w.buf = b
	if w.length <= 0 {
		w.length = int64(len(b))
	}
	w.getBody = func() (io.ReadCloser, error) {
		if len(w.buf) == 0 {
			return http.NoBody, nil
		}
		return io.NopCloser(bytes.NewReader(w.buf)), nil
	}
	w.body, _ = w.getBody()
	return w, nil
}

func (w *rewinder) rewindable() bool { return !w.once }

// first returns the body of the first attempt.
func (w *rewinder) first() io.ReadCloser { return w.body }

// again returns the body of a retry.
func (w *rewinder) again() (io.ReadCloser, error) {
	if w.getBody == nil {
		return w.body, nil // nil or NoBody: no body to rewind
	}
	return w.getBody()
}
