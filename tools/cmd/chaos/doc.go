// Command chaos runs the fault-injection workload of tools/internal/chaos against a
// local DynamoDB-compatible server (dynalite) and checks the library's
// guarantees: no duplicate completions, no divergent answers, no lost
// operations, no records stuck in progress. It prints a table per fault kind
// and ends with one line
//
//	chaos: ops=<n> retries=<n> faults=<n> duplicates=<n> divergent=<n> lost=<n> stuck=<n>
//
// and exits 1 when any invariant fails.
//
// The server is taken from -endpoint or AWS_ENDPOINT_URL_DYNAMODB, which
// dynalite/ctl.sh run sets:
//
//	dynalite/ctl.sh run -- go run ./tools/cmd/chaos -seed 1 -clients 16 -ops 75
//
// Each run creates its own table and deletes it afterwards (unless -keep).
//
// With -store redis the workload runs on the Redis store
// (idempotent/redisstore) instead, through a TCP fault proxy (connection
// reset, delay, and a command that ran but whose answer is lost) in front of
// the server at -redis-url or REDIS_URL, which redis/ctl.sh run sets; the
// summary line starts with "chaos-redis:". Each run keeps its records under a
// fresh key prefix and deletes them afterwards (unless -keep):
//
//	redis/ctl.sh run -- go run ./tools/cmd/chaos -store redis -seed 1 -clients 16 -ops 125
package main
