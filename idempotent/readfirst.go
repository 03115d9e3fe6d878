package idempotent

import "context"

// ReplayReader is an optional interface of a Store: a cheap read of one
// record, for the read-first path (WithReadFirst). Peek returns the record
// for key, or nil when there is none; it does not judge expiry. It may read
// eventually consistently: the core replays only a completed, unexpired
// record, which no write changes before it expires, and sends anything else
// to the conditional write. dynamostore implements it with one eventually
// consistent GetItem, which costs half the read units of Get and a tenth
// to a fortieth of the write units a failed conditional write consumes.
type ReplayReader interface {
	Peek(ctx context.Context, key string) (*Record, error)
}

// BatchReader is an optional interface of a Store: ReplayReader for many
// records in one request (dynamostore: one BatchGetItem of up to 100 keys).
// PeekBatch returns the records it read by record id, with a nil value for a
// key it found absent; a key it could not read (unprocessed, or a record it
// does not return whole) is left out of the map. Batch wrappers (sqsbatch)
// use it before a redelivered batch runs.
type BatchReader interface {
	PeekBatch(ctx context.Context, keys []string) (map[string]*Record, error)
}

// WithReadFirst makes every guarded call read its record (ReplayReader.Peek)
// before the conditional write, and replay a completed record found there
// without writing. Use it where duplicates are common (retry storms,
// webhooks that retry): a replay then costs one read instead of a failed
// conditional write, which DynamoDB charges as a write of the larger item.
// A new key pays one extra read. Without a ReplayReader store the option
// changes nothing. Write-first (one round trip for a new key) is the
// default; ReadFirstContext turns read-first on per call.
func WithReadFirst() Option {
	return func(c *config) { c.readFirst = true }
}

type readFirstKey struct{}

// ReadFirstContext returns a context under which guarded calls read first,
// as under WithReadFirst: for a call the caller knows is likely a duplicate
// (sqsbatch uses it for messages SQS has delivered before).
func ReadFirstContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, readFirstKey{}, readAhead(nil))
}

// readAhead is the value under readFirstKey: records a caller read ahead by
// record id (nil value: read, absent), or nil for plain read-first.
type readAhead map[string]*Record

// PrefetchedContext returns a context under which a guarded call whose
// record id is in recs uses recs[id] in place of its own read-first Peek
// (a nil value means the record was found absent: the call goes straight to
// the conditional write). Calls whose id is not in recs read first as under
// ReadFirstContext. recs is a BatchReader's answer; it must not change
// afterwards.
func PrefetchedContext(ctx context.Context, recs map[string]*Record) context.Context {
	return context.WithValue(ctx, readFirstKey{}, readAhead(recs))
}

// readFirst is phase 2b, read first: when this call reads first and the
// store can peek, it reads the record and replays it if it is completed and
// unexpired (done; the call has ended). Anything else — no record, in
// progress, expired, a failed or undecodable read — goes on to the
// conditional write, which decides with a consistent view.
//
// A hint from ReadFirstContext or PrefetchedContext is for this call only:
// readFirst removes it from the call's context, so guarded calls inside the
// call's function (their own steps, other records) do not inherit it.
func readFirst[T any](k *call) (decision[T], bool) {
	ahead, hinted := k.ctx.Value(readFirstKey{}).(readAhead)
	if hinted {
		k.ctx = context.WithValue(k.ctx, readFirstKey{}, nil)
	}
	c := k.c
	if !c.readFirst && !hinted {
		return decision[T]{}, false
	}
	if k.ctx.Err() != nil {
		// The caller is gone: the conditional write refuses a done context,
		// and so does read-first (the hint must change no outcome).
		return decision[T]{}, false
	}
	rec, known := ahead[k.id]
	owned := false // a record read ahead may be shared by calls
	if !known {
		r, ok := k.store.(ReplayReader)
		if !ok {
			return decision[T]{}, false
		}
		s := k.t.now()
		var err error
		rec, err = r.Peek(k.ctx, k.id)
		k.t.storeSince(s)
		if err != nil {
			c.logger.DebugContext(k.ctx, "read-first failed; going on to the conditional write", "record", k.id, "error", err)
			return decision[T]{}, false
		}
		owned = k.owned
	}
	if rec == nil || rec.Status != StatusCompleted || rec.ID != k.id || rec.Expired(c.clock()) {
		return decision[T]{}, false
	}
	if mismatch(k.fp, rec.Fingerprint) {
		return failed[T](OutcomePayloadMismatch, &PayloadMismatchError{RecordID: k.id}), true
	}
	c.remember(rec)
	out, err := decode[T](k.id, rec.Data, owned)
	return decision[T]{outcome: OutcomeReplayed, out: out, err: err, replay: true}, true
}
