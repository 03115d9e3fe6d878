package sqsbatch

import (
	"errors"
	"fmt"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// DefaultDeadlineMargin is how much time before the invocation's deadline a
// record must still have to be started (see WithDeadlineMargin).
const DefaultDeadlineMargin = time.Second

// Option configures Wrap, WrapKinesis and WrapDynamoDB: how each record's
// key is read and how the batch is processed. The core's settings (TTL,
// name, lease, wait, local cache, clock, logger, observers) belong to the
// idempotent.Guard the wrapper takes.
type Option func(*config)

type keyKind int

const (
	keyDefault keyKind = iota
	keyBody
	keyAttribute
	keyDedup
)

func (k keyKind) option() string {
	switch k {
	case keyBody:
		return "sqsbatch.WithBodyKey"
	case keyAttribute:
		return "sqsbatch.WithAttributeKey"
	case keyDedup:
		return "sqsbatch.WithDeduplicationKey"
	}
	return "default key"
}

type config struct {
	key         keyKind
	keySet      bool
	bodyExpr    string // WithBodyKey, compiled into bodyPath by newProcessor
	bodyPath    *idempotent.KeyPath
	attribute   string
	concurrency int
	margin      time.Duration
	err         error
}

func newConfig(opts []Option) *config {
	c := &config{
		concurrency: 1,
		margin:      DefaultDeadlineMargin,
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

func (c *config) fail(option string, err error) {
	c.err = errors.Join(c.err, &idempotent.ConfigError{Option: option, Err: err})
}

func (c *config) setKey(k keyKind) bool {
	if c.keySet && c.key != k {
		c.fail(k.option(), fmt.Errorf("conflicts with %s: choose one key", c.key.option()))
		return false
	}
	c.key, c.keySet = k, true
	return true
}

// WithBodyKey takes each record's idempotency key from its JSON body with a
// JMESPath expression, e.g. "orderId", "[customer, requestId]" or
// Powertools' "powertools_json(payload).orderId", so that duplicates sent by
// the producer (which carry different message ids) collapse into one run.
// The expression is an idempotent.CompileKeyPath one: custom functions come
// from the guard's idempotent.WithJMESPathFunction options, and an
// expression that does not compile or calls an unknown function makes every
// invocation fail with a *idempotent.ConfigError. The key material is the
// result's canonical JSON, so the string "1" and the number 1 are different
// keys. A body that is not JSON, or where the expression yields nothing
// (null, "", [] or {}, or a list or object whose members are all missing),
// fails that record: it is reported in BatchItemFailures, never acknowledged
// and never run unguarded. For Kinesis the body is the record's data;
// DynamoDB stream records have no body and reject this option.
func WithBodyKey(expr string) Option {
	return func(c *config) {
		if c.setKey(keyBody) {
			c.bodyExpr = expr
		}
	}
}

// WithAttributeKey takes each record's idempotency key from the SQS message
// attribute name (its string value, or its binary value). A record without
// the attribute, or with an empty value, fails. SQS only.
func WithAttributeKey(name string) Option {
	return func(c *config) {
		if !c.setKey(keyAttribute) {
			return
		}
		if name == "" {
			c.fail("sqsbatch.WithAttributeKey", errors.New("empty attribute name"))
			return
		}
		c.attribute = name
	}
}

// WithDeduplicationKey takes each record's idempotency key from its FIFO
// deduplication id (the MessageDeduplicationId attribute), scoped by queue
// ARN and message group, so a message the producer sent twice with one
// deduplication id runs once even outside SQS's five-minute deduplication
// window. A record without a deduplication id (any record of a standard
// queue) fails. SQS only.
func WithDeduplicationKey() Option {
	return func(c *config) { c.setKey(keyDedup) }
}

// WithConcurrency processes the records of a standard SQS queue on up to n
// goroutines (default 1: one after the other). Records that share a key run
// one after the other in batch order, so the response is the one sequential
// processing gives. FIFO queues and streams are always processed in order,
// whatever n is. fn must be safe for concurrent use when n > 1.
func WithConcurrency(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail("sqsbatch.WithConcurrency", fmt.Errorf("concurrency %d is under 1", n))
			return
		}
		c.concurrency = n
	}
}

// WithDeadlineMargin sets how much time must be left before the
// invocation's deadline (the context's) for a record to be started (default
// DefaultDeadlineMargin). Records not started in time are reported failed,
// so the function returns its partial response before Lambda times it out.
// Zero starts records until the deadline itself.
func WithDeadlineMargin(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail("sqsbatch.WithDeadlineMargin", fmt.Errorf("margin %v is negative", d))
			return
		}
		c.margin = d
	}
}
