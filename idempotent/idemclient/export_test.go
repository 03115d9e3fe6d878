package idemclient

import (
	"context"
	"time"
)

// WithTestTime replaces the transport's clock, its sleep and its jitter
// source (a value in [0, 1]) so that tests never wait.
func WithTestTime(now func() time.Time, sleep func(context.Context, time.Duration) error, jitter func() float64) Option {
	return func(o *options) {
		o.now, o.sleep, o.jitter = now, sleep, jitter
	}
}

// ParseRetryAfter exposes parseRetryAfter.
var ParseRetryAfter = parseRetryAfter

// Take exposes take.
func (b *RetryBudget) Take(n int) bool { return b.take(n) }

// Give exposes give.
func (b *RetryBudget) Give(n int) { b.give(n) }

// ResendableKey exposes resendable.
var ResendableKey = resendable
