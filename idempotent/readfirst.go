package idempotent

import (
	"context"
	"strings"
)

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

// DoRecordID is the record id that Do(ctx, store, step, key, fn, opts...)
// uses: "<name>#<sha256 hex of the step and key>", with the name opts
// (WithName) or the environment give. Batch wrappers use it to read records
// ahead. An empty key has no record id ("").
func DoRecordID(step, key string, opts ...Option) string {
	if step == "" || strings.IndexByte(step, 0) >= 0 {
		return ""
	}
	return StepRecordID(newConfig(opts).name, step, key)
}

// readFirst is the read-first phase of execute: when this call reads first
// and the store can peek, it reads the record and replays it if it is
// completed and unexpired (done == true; the call has ended). Anything else
// — no record, in progress, expired, a failed or undecodable read — goes on
// to the conditional write, which decides with a consistent view.
//
// A hint from ReadFirstContext or PrefetchedContext is for this call only:
// readFirst removes it from *ctxp, so guarded calls inside the call's
// function (their own steps, other records) do not inherit it.
func readFirst[T any](ctxp *context.Context, c *config, store Store, t *tracker, id, fp string) (out T, done bool, err error) {
	ctx := *ctxp
	ahead, hinted := ctx.Value(readFirstKey{}).(readAhead)
	if hinted {
		ctx = context.WithValue(ctx, readFirstKey{}, nil)
		*ctxp = ctx
	}
	if !c.readFirst && !hinted {
		return out, false, nil
	}
	rec, known := ahead[id]
	if !known {
		r, ok := store.(ReplayReader)
		if !ok {
			return out, false, nil
		}
		s := t.now()
		rec, err = r.Peek(ctx, id)
		t.storeSince(s)
		if err != nil {
			c.logger.DebugContext(ctx, "read-first failed; going on to the conditional write", "record", id, "error", err)
			return out, false, nil
		}
	}
	if rec == nil || rec.Status != StatusCompleted || rec.Key != id || rec.Expired(c.clock()) {
		return out, false, nil
	}
	if mismatch(fp, rec.Fingerprint) {
		err := &PayloadMismatchError{Key: id}
		t.end(ctx, OutcomePayloadMismatch, err)
		return out, true, err
	}
	c.remember(rec)
	out, err = decode[T](id, rec.Data)
	out, err = endReplay(ctx, t, OutcomeReplayed, out, err)
	return out, true, err
}
