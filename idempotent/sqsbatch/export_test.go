package sqsbatch

import "time"

// WithNow sets the clock the deadline margin is judged by, for tests.
func WithNow(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}
