package idemclient

import "sync"

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

// RetryBudget is a token bucket shared by the clients (and goroutines) that
// use it, so that a fleet of clients does not multiply an outage's load by
// its retry count: a retry takes RetryCost tokens (RetryTimeoutCost after a
// timeout), a request that ends with a final answer gives back the cost of
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
