// Package chaos runs a fault-injected, concurrent workload against the
// library on a local DynamoDB-compatible server and checks the contract's
// guarantees over the recorded history.
//
// Run starts a faultproxy between the AWS SDK clients and the server, then W
// clients each perform N logical operations — payments through Do and Wrap
// (and the HTTP and SQS adapters, see paths.go) — through several simulated
// Lambda containers (separate stores, SDK clients and local caches) that share
// one table. With Target.Redis set, the containers share one Redis server
// through redisstore instead, behind a TCP fault proxy (tcpproxy.go: reset,
// delay, drop = the command ran and its answer is lost), and the checker
// reads the records under the run's key prefix through the same store.
// Every client retries its operation with the same key, with
// jittered backoff, until it gets a final answer. Some first attempts are
// made to misbehave:
//
//   - crash: the handler blocks forever (a crashed invocation); the client
//     abandons it, its short lease expires and a retry completes the key. The
//     blocked handler is released after the run drains and must get
//     ErrLeaseLost, overwriting nothing;
//   - slow: the handler outlives its short lease while a concurrent duplicate
//     delivery takes the key over and completes it; the slow run must get
//     ErrLeaseLost;
//   - fail: the handler returns an error, which releases the key.
//
// Handlers append every side effect to a Ledger (key, attempt, run id,
// container) and make their downstream "charge" idempotent with
// idempotent.RecordIDFromContext, as the contract asks of handlers.
//
// The checker's invariants, all of which must be zero:
//
//   - duplicates: for each key, the number of runs that completed, minus one.
//     A run completed when its handler returned success and its Complete
//     succeeded: Do returned the run's own result to its caller, or the run's
//     result was replayed to any caller or found stored in the table. The TTL
//     outlives the run, so every record lives throughout.
//   - divergent: callers of one key whose final answers differ from the
//     first answer or from the result stored in the table (byte-wise).
//   - lost: operations without a final answer after faults stopped and the
//     run drained.
//   - stuck: records still INPROGRESS in the table after every invocation,
//     including the released crashed ones, has returned.
//
// The cmd/chaos command and TestChaos run it.
//
// § references in this package's comments are to the contract,
// docs/contract.md in the repository.
package chaos
