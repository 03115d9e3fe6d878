package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
)

// Client is the part of a go-redis client the Store calls: SET and GET (an
// acquire is one plain SET NX GET, a read one GET) and the scripting
// commands (EVALSHA, with EVAL when the server does not know a script yet)
// for the writes that need a compare-and-set. *redis.Client,
// *redis.ClusterClient, *redis.Ring and every redis.UniversalClient satisfy
// it; tests can wrap one.
//
// Client used to be redis.Scripter alone. The module is before 1.0, and
// the two methods it gained are an incompatible change for a caller that
// passes a type of its own with only the scripting methods: embed Client in
// it instead (or add Get and SetArgs). The go-redis clients are unaffected.
type Client interface {
	redis.Scripter
	Get(ctx context.Context, key string) *redis.StringCmd
	SetArgs(ctx context.Context, key string, value any, a redis.SetArgs) *redis.StatusCmd
}

var (
	_ Client = (*redis.Client)(nil)
	_ Client = (*redis.ClusterClient)(nil)
	_ Client = (*redis.Ring)(nil)
	_ Client = redis.UniversalClient(nil)
)

// Store is an idempotent.Store backed by Redis (7 or later) or Valkey. It is
// safe for concurrent use; it holds no state besides its configuration, so
// any number of Stores (in any number of processes) may share a database.
type Store struct {
	client Client
	opts   Options
	// replicaReads: the client may send a GET to a replica (readsReplicas).
	replicaReads bool
}

var _ idempotent.Store = (*Store)(nil)

// Store operation names, as reported in idempotent.StoreError.Op.
const (
	opAcquire  = "acquire"
	opGet      = "get"
	opComplete = "complete"
	opRelease  = "release"
)

// New returns a Store that keeps its records in the database client talks
// to. Options start from the defaults (see Options) and optFns are applied
// in order.
func New(client Client, optFns ...func(*Options)) *Store {
	return &Store{client: client, opts: resolveOptions(optFns), replicaReads: readsReplicas(client)}
}

// readsReplicas reports whether client may send a read-only command (GET)
// to a replica: a cluster client with ReadOnly, RouteByLatency or
// RouteRandomly. Get then reads through its script, which go-redis sends to
// the primary, as every other operation.
func readsReplicas(client Client) bool {
	c, ok := client.(*redis.ClusterClient)
	if !ok {
		return false
	}
	o := c.Options()
	return o.ReadOnly || o.RouteByLatency || o.RouteRandomly
}

// Key returns the Redis key that holds record id: KeyPrefix + "{" + id + "}".
func (s *Store) Key(id string) string {
	return s.opts.KeyPrefix + "{" + id + "}"
}

// Acquire implements idempotent.Store. It sends SET key rec NX GET PX ttl
// itself, no script: a new key is written by it (one round trip), and a key
// that holds a record answers with that record, which Acquire judges by the
// decision table of the acquire script (judge), at the same now: a held
// record is returned as found (one round trip); the caller's own in-progress
// record (this acquire's write, resent by the client after its answer was
// lost) is acquired without a write; and only a free one — expired, or in
// progress with an ended lease — goes to the acquire script, which decides
// again atomically, writes, and reports what it replaced: an in-progress
// record, without its data, with acquired == true, so the core reports the
// takeover (two round trips). A key of the legacy hash layout answers
// WRONGTYPE and goes to the script as well.
//
// The key's time to live is max(rec.Expiration, rec.LeaseExpiration) - now,
// set relative to the caller's now, so the key never disappears before the
// record's own expiration or its lease, whatever the server's clock says; an
// in-progress key lives an hour more (graceMS), so that a takeover after a
// crash is seen as one even when the record's TTL is shorter than its lease.
func (s *Store) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	if rec.Status == "" {
		rec.Status = idempotent.StatusInProgress
	}
	if rec.Status != idempotent.StatusInProgress && rec.Status != idempotent.StatusCompleted {
		return nil, false, &idempotent.StoreError{Op: opAcquire, RecordID: rec.ID, Err: fmt.Errorf("unknown status %q", rec.Status)}
	}
	ttl, err := keyTTL(rec, now)
	if err != nil {
		return nil, false, &idempotent.StoreError{Op: opAcquire, RecordID: rec.ID, Err: err}
	}
	nowMS := now.UnixMilli()
	var data []byte
	format := ""
	if rec.Data != nil {
		var err error
		if data, format, err = s.encodeData(rec.Data); err != nil {
			return nil, false, &idempotent.StoreError{Op: opAcquire, RecordID: rec.ID, Err: err}
		}
	}
	key, value, owner := s.Key(rec.ID), encodeRecord(rec, rec.Data != nil, data, format), escape(rec.Owner)
	v, err := "", errLongTTL
	if ttl <= maxDurationMS {
		// go-redis takes the time to live as a time.Duration; a longer one
		// goes to the script as the number it is (clamping it would leave
		// the key short of the anchor the complete script counts from).
		v, err = s.client.SetArgs(ctx, key, value, redis.SetArgs{Mode: "NX", Get: true, TTL: time.Duration(ttl) * time.Millisecond}).Result()
	}
	switch {
	case errors.Is(err, errLongTTL):
		// straight to the script
	case errors.Is(err, redis.Nil):
		return nil, true, nil // written: the key was free
	case err == nil:
		switch judge(v, now.Unix(), nowMS, owner) {
		case held:
			existing, err := decodeString(rec.ID, v)
			if err != nil {
				return nil, false, err
			}
			return existing, false, nil
		case mine:
			return nil, true, nil
		}
		// free: the script decides again and writes.
	case !wrongType(err):
		return nil, false, &idempotent.StoreError{Op: opAcquire, RecordID: rec.ID, Err: err}
	}
	reply, err := acquireScript.Run(ctx, s.client, []string{key}, now.Unix(), nowMS, ttl, value, owner).Result()
	if err != nil {
		return nil, false, &idempotent.StoreError{Op: opAcquire, RecordID: rec.ID, Err: err}
	}
	if n, ok := reply.(int64); ok {
		if n != 1 {
			return nil, false, &idempotent.StoreError{Op: opAcquire, RecordID: rec.ID, Err: fmt.Errorf("unexpected script reply %d", n)}
		}
		return nil, true, nil
	}
	if arr, ok := reply.([]any); ok && len(arr) == 2 {
		if n, ok := arr[0].(int64); ok && n == 1 {
			// {1, replaced}: a lease takeover.
			return replaced(rec.ID, arr[1]), true, nil
		}
	}
	existing, err := decodeReply(rec.ID, reply)
	if err != nil {
		return nil, false, err
	}
	return existing, false, nil
}

// maxDurationMS is the longest time to live the plain SET can give a key, in
// milliseconds: the longest time.Duration (292 years), which go-redis takes
// it as. Longer ones go through the acquire script.
const maxDurationMS = int64(math.MaxInt64 / time.Millisecond)

// maxKeyMS bounds a key's time to live and the instants it is computed
// from, in milliseconds (about 146 million years): Redis refuses a PX whose
// end overflows its clock, and no sum below overflows an int64.
const maxKeyMS = int64(math.MaxInt64 / 2)

// errReplicaReads routes a Get of a client that may read replicas to the
// get script.
var errReplicaReads = errors.New("client may read replicas")

// errLongTTL routes an acquire whose time to live exceeds maxDurationMS to
// the script.
var errLongTTL = errors.New("time to live beyond a time.Duration")

// keyTTL returns the time to live of rec's key acquired at now, in
// milliseconds: max(expiration, lease end) - now, plus graceMS for an
// in-progress record, at least 1 (a record already dead at now, a caller
// bug or a clock far behind, lives a millisecond, like an item whose TTL has
// passed). Instants beyond ±maxKeyMS are an error, not a wrapped product:
// a key that vanished at once would let a duplicate run again.
func keyTTL(rec idempotent.Record, now time.Time) (int64, error) {
	const bound = maxKeyMS / 1000
	for _, t := range []time.Time{now, rec.Expiration, rec.LeaseExpiration} {
		if u := t.Unix(); u > bound || u < -bound {
			return 0, fmt.Errorf("time %d s out of the range a Redis key's time to live can be computed from (±%d s)", u, bound)
		}
	}
	ttl := max(rec.Expiration.Unix()*1000, rec.LeaseExpiration.UnixMilli()) - now.UnixMilli()
	if ttl <= maxKeyMS && rec.Status == idempotent.StatusInProgress {
		ttl += graceMS
	}
	if ttl > maxKeyMS {
		return 0, fmt.Errorf("time to live %d ms beyond the longest a Redis key can be given here (%d ms)", ttl, maxKeyMS)
	}
	return max(ttl, 1), nil
}

// replaced decodes the in-progress record an acquire replaced (a lease
// takeover), for Acquire to report; nil when it is not an in-progress record.
// The acquire has succeeded whatever this finds, so an undecodable record is
// reported as none, as dynamostore does.
func replaced(key string, reply any) *idempotent.Record {
	r, err := decodeReply(key, reply)
	if err != nil || r.Status != idempotent.StatusInProgress {
		return nil
	}
	r.Data = nil
	return r
}

// Get implements idempotent.Store with one GET of the record from the
// primary (Redis has no other consistent read). A key of the legacy hash
// layout, or of another type, answers WRONGTYPE; a script reads it then. A
// cluster client that may send a GET to a replica (readsReplicas) reads
// through that script from the start.
func (s *Store) Get(ctx context.Context, key string) (*idempotent.Record, error) {
	v, err := "", errReplicaReads
	if !s.replicaReads {
		v, err = s.client.Get(ctx, s.Key(key)).Result()
	}
	switch {
	case errors.Is(err, errReplicaReads):
		// the script, on the primary
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err == nil:
		return decodeString(key, v)
	case !wrongType(err):
		return nil, &idempotent.StoreError{Op: opGet, RecordID: key, Err: err}
	}
	reply, err := getScript.Run(ctx, s.client, []string{s.Key(key)}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, &idempotent.StoreError{Op: opGet, RecordID: key, Err: err}
	}
	return decodeReply(key, reply)
}

// Complete implements idempotent.Store with one script run fenced by
// status = INPROGRESS and owner = rec.Owner. It sets the status COMPLETED,
// the data (zstd-compressed from CompressThreshold bytes on, when that
// shrinks it) and the expiration, removes the lease, and moves the key's time
// to live to rec.Expiration. A retry of the same Complete whose first answer
// was lost finds the record completed by rec.Owner with the same data and
// reports success.
func (s *Store) Complete(ctx context.Context, rec idempotent.Record) error {
	data, format, err := s.encodeData(rec.Data)
	if err != nil {
		return &idempotent.StoreError{Op: opComplete, RecordID: rec.ID, Err: err}
	}
	if u := rec.Expiration.Unix(); u > maxKeyMS/1000 || u < -maxKeyMS/1000 {
		return &idempotent.StoreError{Op: opComplete, RecordID: rec.ID, Err: fmt.Errorf("expiration %d s out of the range a Redis key's time to live can be computed from", u)}
	}
	rec.Status = idempotent.StatusCompleted
	n, err := completeScript.Run(ctx, s.client, []string{s.Key(rec.ID)},
		escape(rec.Owner), strconv.FormatInt(rec.Expiration.Unix(), 10), encodeRecord(rec, true, data, format),
		escape(rec.Fingerprint)).Int64()
	return fenced(opComplete, rec.ID, n, err)
}

// Release implements idempotent.Store with one script run that deletes the
// record only when it is in progress under owner.
func (s *Store) Release(ctx context.Context, key, owner string) error {
	n, err := releaseScript.Run(ctx, s.client, []string{s.Key(key)}, escape(owner)).Int64()
	return fenced(opRelease, key, n, err)
}

// fenced maps the reply of a fenced script: 0 means the lease is lost, 1 or
// 2 (written, or already written by this very call) success; any other reply
// is a store failure, never a success.
func fenced(op, key string, n int64, err error) error {
	switch {
	case err != nil:
		return &idempotent.StoreError{Op: op, RecordID: key, Err: err}
	case n == 0:
		return &idempotent.LeaseLostError{RecordID: key}
	case n == 1 || n == 2:
		return nil
	default:
		return &idempotent.StoreError{Op: op, RecordID: key, Err: fmt.Errorf("unexpected script reply %d", n)}
	}
}
