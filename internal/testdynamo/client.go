package testdynamo

import (
	"context"
	"maps"
	"net/http"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// Region is the region of every client this package makes.
const Region = "us-east-1"

// Option configures a client made by Client or CountingClient.
type Option func(*clientOptions)

type clientOptions struct {
	counter *Counter
	oldItem bool
}

// WithCounter counts the client's round trips in c.
func WithCounter(c *Counter) Option {
	return func(o *clientOptions) { o.counter = c }
}

// WithOldItemOnConditionFailure makes the client behave like real DynamoDB
// where the local server does not: a PutItem, UpdateItem or DeleteItem with
// ReturnValuesOnConditionCheckFailure = ALL_OLD whose condition fails carries
// the existing item in its ConditionalCheckFailedException. The client's
// HTTP transport reads the item behind the scenes; those reads are not
// counted by a Counter, so tests can assert the round trips a real server
// needs (replay = 1 call).
func WithOldItemOnConditionFailure() Option {
	return func(o *clientOptions) { o.oldItem = true }
}

// Client returns a client for the local server (see Endpoint) with static
// dummy credentials and region us-east-1.
func Client(tb testing.TB, opts ...Option) *dynamodb.Client {
	tb.Helper()
	var co clientOptions
	for _, opt := range opts {
		opt(&co)
	}
	return newClient(Endpoint(tb), func(o *dynamodb.Options) {
		if co.counter != nil {
			o.APIOptions = append(o.APIOptions, co.counter.Middleware)
		}
		if co.oldItem {
			o.HTTPClient = &http.Client{Transport: &oldItemTransport{next: http.DefaultTransport}}
		}
	})
}

// CountingClient returns a Client and the Counter of its round trips.
func CountingClient(tb testing.TB, opts ...Option) (*dynamodb.Client, *Counter) {
	tb.Helper()
	c := new(Counter)
	return Client(tb, append(opts, WithCounter(c))...), c
}

// NewClient returns a client for endpoint with static dummy credentials and
// region us-east-1, then applies optFns (to add APIOptions, an HTTP client,
// ...). Tests that need no server, with a fake HTTP transport, use it.
func NewClient(endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return newClient(endpoint, optFns...)
}

func newClient(endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "testdynamo"}, nil
		}),
	}, optFns...)
}

// Counter counts the calls a client makes per operation ("PutItem",
// "GetItem", ...): one per operation, however many attempts the SDK's
// retryer needs (dynalite now and then drops a keep-alive connection and
// the SDK retries; that is transport noise, not a round trip the library
// asked for). It is safe for concurrent use; the zero value is ready.
type Counter struct {
	mu     sync.Mutex
	counts map[string]int
}

// Count returns the round trips of operation op so far.
func (c *Counter) Count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[op]
}

// Total returns the round trips of all operations so far.
func (c *Counter) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.counts {
		n += v
	}
	return n
}

// Counts returns a copy of the counts per operation.
func (c *Counter) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// Reset sets every count to zero.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.counts)
}

func (c *Counter) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = make(map[string]int)
	}
	c.counts[op]++
}

// Middleware adds the counter to a client's middleware stack; use it in
// dynamodb.Options.APIOptions (or config.LoadOptions) to count the calls of
// a client made elsewhere. It counts in the initialize step, which runs once
// per operation, before the retryer.
func (c *Counter) Middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("testdynamo.Counter",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.add(middleware.GetOperationName(ctx))
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}
