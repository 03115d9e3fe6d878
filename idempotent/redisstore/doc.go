// Package redisstore is the Redis (7 or later) and Valkey implementation of
// idempotent.Store. It lives in a module of its own, so the Redis client
// stays out of the module graph of everyone who does not import it.
//
// # Operations
//
// Each idempotency key is one Redis string. Every decision is a
// compare-and-set on the record itself, made by the server in the same
// atomic step as the write, never a decision on a stale read; the commands
// that need no decision are sent plainly, and the ones that do are Lua
// scripts (EVALSHA, falling back to EVAL the first time a server sees one):
//
//   - Acquire is one plain SET key record NX GET PX ttl. On a new key it
//     writes the in-progress record; on a key that holds a record it writes
//     nothing and answers with that record, which the store judges by the
//     acquire script's decision table at the caller's now. A held record —
//     completed and unexpired, in progress under another owner's live
//     lease, or not a record — is returned as stored; the caller's own
//     in-progress record (its write landed, the answer was lost) is
//     acquired without a write. Only a free record — expired (expiration <=
//     now, epoch seconds), or in progress with an ended lease (lease end <=
//     now, epoch milliseconds) — goes to the acquire script, which decides
//     again and writes in one atomic step, and reports the takeover. A new
//     key costs 2 round trips (Acquire, Complete), a replay or a conflict 1,
//     a takeover 3 (2 for Acquire), a replay from the core's local cache 0.
//   - Complete is a script fenced by status = in progress and owner = me;
//     Release, a script, deletes the record under the same fence. A fencing
//     failure is idempotent.ErrLeaseLost and changes nothing.
//   - Get is one plain GET from the primary (the get script when a cluster
//     client may send a GET to a replica: ReadOnly, RouteByLatency,
//     RouteRandomly).
//
// No script reads a clock, builds a table or decodes JSON: each reads the
// record's header with one anchored pattern and writes with one SET.
//
// Lost answers: go-redis resends a command whose connection broke before the
// reply came (MaxRetries, 3 by default), so a command can run twice. A
// resent Acquire finds the in-progress record under its own owner token and
// reports the key acquired; a resent Complete finds the record completed by
// its own token, byte for byte as it would write it, and reports success. (A
// resent Release finds no record and reports ErrLeaseLost, which the core
// only logs.) Owner tokens are random 128-bit values, one per invocation.
//
// # Time
//
// The store reads no clock; every decision uses the caller's now (the core's
// WithClock), as the contract requires, so library and server agree at every
// boundary. The key's time to live is a garbage collector only, never a
// judge: the record's own expiration and lease decide. Acquire sets it to
// max(expiration, lease end) - now with PX, relative to the caller's now, plus
// one hour for an in-progress record — an in-progress key never disappears
// before its lease ends, and a crashed run's key stays an hour longer, so the
// retry that takes it over is reported as a lease takeover even when the TTL
// is shorter than the lease. Complete moves it to the new expiration without
// a clock: the remaining PTTL of the in-progress key tells how far the server
// is from that key's end, so the completed key lives PTTL + (new expiration -
// old end) more milliseconds — the TTL of the core from the completion,
// measured in the server's elapsed time. Absolute PEXPIREAT times are never
// used: a caller clock that differs from the server's (or the fixed clock of
// a test) would make the server delete live claims, or keep dead ones.
//
// # Keys and clusters
//
// The record of id lives at KeyPrefix + "{" + id + "}" (default prefix
// "idempotency:"). Every script touches exactly that one key, passed in
// KEYS, and the braces are a hash tag, so the store runs unchanged on Redis
// Cluster, ElastiCache (including Serverless) and MemoryDB: pass a
// *redis.ClusterClient or any redis.UniversalClient. The store only needs
// Client.
//
// # Layout
//
// A record is one string: a header line with the contract's attributes
// (§2), then the stored data.
//
//	1I 1800003600 1800000030250 <owner> <validation> -\n
//	1C 1800003600  <owner> <validation> zstd\n<data>
//
// The leading 1 is the layout's version; I or C the status (in progress,
// completed); then expiration (epoch seconds), lease end (epoch milliseconds,
// empty once completed), owner token, validation (the payload fingerprint,
// or empty) and the data's format ("" plain, zstd, "-" none); owner and
// validation are %XX-escaped where they hold a space, a control byte or "%"
// (the core's tokens and fingerprints never do). Earlier versions kept a
// hash per record, one field per attribute (status, expiration,
// in_progress_expiration, owner, validation, data, data_format); such records
// are still read — Get, Inspect, replays, conflicts, takeovers and expired
// records acquired over, Delete — and any write over one stores this layout.
// Complete and Release on a hash record report ErrLeaseLost: only the process
// that acquired a record completes or releases it, and it wrote the record
// in its own layout. The converse does not hold: a process of an earlier
// version reads a string record as a foreign key and fails closed with
// ErrCorruptRecord (no handler runs), so during a gradual deployment a key
// first claimed by the new version fails on the old one until it is gone.
//
// # Results of any size
//
// Results of at least Options.CompressThreshold bytes (512) are stored
// zstd-compressed when that makes them smaller, tagged by the header's
// format, as in dynamostore. On Redis that is a trade of the client's CPU
// (about 35–55 µs per 20 KB completion, 17–24 µs per 20 KB replay) for the
// server's memory and network bytes (a 20 KB JSON result takes 1.7–6.3 KB)
// and its CPU: a completion passes the result through a script's arguments,
// which costs this single-threaded server 122 µs for 20 KB stored plain and
// 12–49 µs compressed (see DefaultCompressThreshold). No chunking is needed: a Redis string holds 512
// MB, and Lambda's largest response (6 MB) travels as one script argument;
// the tests replay 6 MB byte for byte (a 6 MB JSON result is stored in about
// 155 KB). A record the store cannot decode — a key of another type, a
// string that is not a record (or of another layout version), a missing or
// non-numeric field, an unknown status or format, data that does not
// decompress — is reported as idempotent.ErrCorruptRecord and is never taken
// over.
//
// # What it guarantees, and what it does not
//
// On one Redis primary that keeps its data, the store gives the full contract
// of the idempotent package: at most one completed run per key within its
// retention, the same stored result for every retry, fenced completion.
// Redis is not DynamoDB, though, and these events lose a claim or a result,
// after which a retry runs the handler again — a duplicate:
//
//   - Failover. Replication is asynchronous: a write acknowledged by the
//     primary may not have reached the replica that is promoted. WAIT does
//     not make it durable either. ElastiCache (Redis OSS and Valkey, including
//     Serverless) has this window; MemoryDB does not (it acknowledges a
//     write only once its multi-AZ transaction log holds it).
//   - Eviction. Under memory pressure a server with a volatile-* or allkeys-*
//     policy deletes keys, and every record has a time to live. Set
//     maxmemory-policy noeviction, so a full server refuses writes instead of
//     dropping a claim. That is not "nothing runs": the server refuses a
//     write once its memory is over maxmemory, whenever that happens. An
//     Acquire refused that way fails closed before the handler (a
//     *StoreError with Op "acquire"; HTTP 503 "store unavailable"; the SQS
//     record is a batch item failure). But when the server fills while the
//     handler runs — or the in-progress record fits and the result does
//     not — the handler has run, its effects happened, and Complete is
//     refused: the caller gets a *StoreError with Op "complete" and no
//     result (HTTP 503 "outcome unknown", an SQS batch item failure), the
//     in-progress record stays as it was, duplicates get ErrInProgress
//     until its lease ends, and the first retry after that which the
//     server accepts takes the key over and runs the handler again. ElastiCache Serverless evicts
//     (volatile-lru) and cannot be set to noeviction: size its limits with
//     headroom and watch its evictions metric.
//   - A restart of a server that does not fsync every write (anything but
//     appendonly yes with appendfsync always): RDB snapshots lose every write
//     since the last snapshot, and the default appendfsync everysec loses up
//     to about a second of them on a kill -9 or power loss — a claim, or a
//     completion whose caller was already answered. FLUSHALL/FLUSHDB or an
//     operator's DEL: the records are gone.
//   - A takeover report more than an hour after a crashed run's record
//     ended. An in-progress key lives until max(expiration, lease end) plus
//     one hour; a retry after that finds no record and runs, correctly, but
//     as a new key: Report.Takeover is false, the LeaseTakeovers metric and
//     the "took over a lease" warning stay silent, so the earlier run's
//     possible effects are not reported. (DynamoDB keeps such items until
//     its TTL deletion, up to days later.)
//   - Clock: the caller's clocks decide leases and expiry, as on DynamoDB;
//     the server's elapsed time only bounds how long keys are kept.
//
// Choose DynamoDB (dynamostore) when a duplicate is worse than a few
// milliseconds of latency — payments, orders, anything not otherwise
// idempotent downstream: its conditional writes are durable and
// synchronously replicated. Choose MemoryDB when you want Redis latency with
// durable, failover-safe writes. Choose ElastiCache or a self-run Redis when
// you already have it, the work behind the key is cheap to repeat in a rare
// failover, and you set noeviction (or watch evictions).
//
// # Client
//
// The store uses github.com/redis/go-redis/v9, the client most Go services
// already have, through the narrow Client interface — redis.Scripter plus
// Get and SetArgs — that *redis.Client, *redis.ClusterClient, *redis.Ring
// and redis.UniversalClient all satisfy. (Earlier, Client was redis.Scripter
// alone; the module is before 1.0, and a wrapper of one's own needs Get and
// SetArgs now, most simply by embedding Client.) github.com/redis/rueidis
// was read as the alternative: faster pipelining and client-side caching,
// but its Lua helper takes the whole rueidis.Client interface (hard to wrap
// in a test, and a second Redis client for users who have go-redis), and it
// retries only read-only commands, so a lost answer surfaces as an error
// instead of a resend — which this store handles either way.
//
// Example:
//
//	opt, err := redis.ParseURL(os.Getenv("REDIS_URL")) // rediss:// for TLS
//	if err != nil { ... }
//	store := redisstore.New(redis.NewClient(opt))
//	lambda.Start(idempotent.Wrap(idempotent.New(store), handler, idempotent.WithKeyPath("id")))
//
// § references in this package's comments are to the contract,
// docs/contract.md in the repository.
package redisstore
