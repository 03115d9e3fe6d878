package idemclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// Defaults of the client.
const (
	// DefaultMaxAttempts bounds the attempts of one logical request (the
	// first one included, over every redirect hop).
	DefaultMaxAttempts = 5
	// DefaultBackoffBase is the backoff before the first retry's jitter:
	// retry n waits a random time in [0, min(max, base·2^(n-1))).
	DefaultBackoffBase = 250 * time.Millisecond
	// DefaultBackoffMax caps the exponential backoff.
	DefaultBackoffMax = 8 * time.Second
	// DefaultMaxRetryAfter is the longest Retry-After the client waits for
	// (WithMaxRetryAfter).
	DefaultMaxRetryAfter = 20 * time.Second
	// DefaultRewindLimit is how much of a request body without GetBody is
	// buffered so that it can be sent again (6 MB, the default buffering
	// limit of the idemhttp middleware).
	DefaultRewindLimit = 6 << 20
)

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

// Option configures NewTransport and NewClient.
type Option func(*options)

type options struct {
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

func (o *options) fail(option string, err error) {
	o.err = errors.Join(o.err, &idempotent.ConfigError{Option: option, Err: err})
}

// WithMethods sets the methods the client attaches keys to and retries
// (default POST and PATCH, the methods the idemhttp middleware guards).
// Requests with other methods pass through untouched: no key, no retry.
func WithMethods(methods ...string) Option {
	return func(o *options) {
		if len(methods) == 0 {
			o.fail("WithMethods", errors.New("no methods"))
			return
		}
		out := make([]string, 0, len(methods))
		for _, m := range methods {
			if m == "" || strings.ContainsAny(m, " \t\r\n") {
				o.fail("WithMethods", fmt.Errorf("invalid method %q", m))
				return
			}
			out = append(out, strings.ToUpper(m))
		}
		o.methods = out
	}
}

// WithKeyForm sets how generated keys are written (default KeyToken). A
// caller's own header value is always sent as the caller wrote it.
func WithKeyForm(f KeyForm) Option {
	return func(o *options) {
		if f != KeyToken && f != KeyQuoted {
			o.fail("WithKeyForm", fmt.Errorf("unknown key form %d", f))
			return
		}
		o.form = f
	}
}

// WithMaxAttempts bounds the attempts of one logical request, the first one
// included (default DefaultMaxAttempts; 1 disables retries). Attempts are
// counted over every redirect hop; a redirect hop is always sent once, and
// retried only while the bound allows.
func WithMaxAttempts(n int) Option {
	return func(o *options) {
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
func WithBackoff(base, max time.Duration) Option {
	return func(o *options) {
		if base <= 0 || max < base {
			o.fail("WithBackoff", fmt.Errorf("base %v, max %v: need 0 < base <= max", base, max))
			return
		}
		o.base, o.max = base, max
	}
}

// WithMaxRetryAfter caps the wait a server asks for in Retry-After (default
// DefaultMaxRetryAfter): a response that asks for longer is not retried but
// returned as it is, its Retry-After telling the caller when to send the
// request again (with KeyOf's key). A retry sooner than the server asks
// cannot succeed: our server's 503 outcome-unknown holds the key until the
// run's lease ends, and earlier retries get 409.
func WithMaxRetryAfter(max time.Duration) Option {
	return func(o *options) {
		if max < 0 {
			o.fail("WithMaxRetryAfter", fmt.Errorf("negative cap %v", max))
			return
		}
		o.maxRetryAfter = max
	}
}

// WithRetryBudget makes every retry take tokens from b, shared by every
// client given the same b (see RetryBudget). Without it retries are bounded
// per request only.
func WithRetryBudget(b *RetryBudget) Option {
	return func(o *options) {
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
func WithRewindLimit(n int64) Option {
	return func(o *options) {
		if n < 0 {
			o.fail("WithRewindLimit", fmt.Errorf("negative limit %d", n))
			return
		}
		o.rewindLimit = n
	}
}

// WithOnAttempt calls f after every attempt of a guarded request, from the
// goroutine that called RoundTrip, before any wait.
func WithOnAttempt(f func(AttemptInfo)) Option {
	return func(o *options) {
		if f == nil {
			o.fail("WithOnAttempt", errors.New("nil function"))
			return
		}
		o.onAttempt = f
	}
}

// WithLogger sets the logger of retries and give-ups (default
// slog.Default()). Keys are logged redacted: their first 4 characters.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.fail("WithLogger", errors.New("nil logger"))
			return
		}
		o.logger = l
	}
}
