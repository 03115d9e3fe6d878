package idempotent

import (
	"context"
	"time"
)

// Status is the state of an idempotency record.
type Status string

// The two states of a record. A record that does not exist, or whose
// Expiration has passed, is free.
const (
	// StatusInProgress marks a key held by a running invocation until
	// LeaseExpiration.
	StatusInProgress Status = "INPROGRESS"
	// StatusCompleted marks a key whose result is stored in Data.
	StatusCompleted Status = "COMPLETED"
)

// Record is one idempotency record, the unit a Store reads and writes.
//
// Times are stored at the precision the contract fixes: Expiration in epoch
// seconds (it is the DynamoDB TTL attribute), LeaseExpiration in epoch
// milliseconds. Stores must keep that precision; the core truncates before it
// writes, so comparisons never mix units.
type Record struct {
	// ID is the record id, "<name>#<sha256 hex of the key material>". The raw
	// key is never stored.
	ID string
	// Status is StatusInProgress or StatusCompleted.
	Status Status
	// Expiration is when the record dies, whatever the store's own deletion
	// does. A record is dead once Expiration <= now (second precision).
	Expiration time.Time
	// LeaseExpiration is when the lease of an in-progress record ends
	// (millisecond precision). Zero for completed records.
	LeaseExpiration time.Time
	// Owner is the random token of the invocation holding the lease; it fences
	// Complete and Release.
	Owner string
	// Fingerprint is the SHA-256 (hex) of the payload fingerprint, or empty
	// when payload validation is off.
	Fingerprint string
	// Data is the encoded result of a completed record.
	Data []byte
}

// Expired reports whether the record is dead at now: Expiration <= now, in
// epoch seconds.
func (r *Record) Expired(now time.Time) bool {
	return r.Expiration.Unix() <= now.Unix()
}

// LeaseEnded reports whether an in-progress record's lease is over at now:
// LeaseExpiration <= now, in epoch milliseconds.
func (r *Record) LeaseEnded(now time.Time) bool {
	return r.LeaseExpiration.UnixMilli() <= now.UnixMilli()
}

// Free reports whether a new invocation may take the key over from r at now:
// r is expired, or it is in progress and its lease has ended. This is the
// library-side form of the acquire condition every Store implements.
func (r *Record) Free(now time.Time) bool {
	if r.Expired(now) {
		return true
	}
	return r.Status == StatusInProgress && r.LeaseEnded(now)
}

// Store is the persistence layer: four owner-fenced primitives over one
// record per key. Implementations must be safe for concurrent use. They do no
// hashing, encoding or policy; they never read a clock of their own (the core
// passes now), so WithClock governs every time decision.
//
// Retried writes: the owner token is unique to one acquisition, so a write
// repeated by its owner after it landed (a client that retries a write whose
// answer was lost, as the AWS SDK does) must be recognised as the caller's
// own: a repeated Acquire by the owner of the running lease reports
// acquired, a repeated Complete by the owner of the completed record returns
// nil; neither changes the record. The core relies on it and does not check
// again. (The store contract suite, package storetest, tests it.)
//
// Errors: Complete and Release return ErrLeaseLost when the fencing condition
// fails; any other failure should be a *StoreError (the core wraps plain
// errors into one). Undecodable records are reported with an error wrapping
// ErrCorruptRecord.
type Store interface {
	// Acquire writes rec (StatusInProgress, with Owner and LeaseExpiration)
	// if, at now, there is no record for rec.ID, or the record is expired,
	// or it is in progress and its lease has ended — in one atomic
	// conditional write. It returns acquired == true on success. Otherwise it
	// returns the record that holds the key; existing is nil when that record
	// vanished before it could be read (the caller tries again).
	//
	// On success, existing is the in-progress record the write replaced (its
	// lease had ended: a lease takeover), if there was one and the store can
	// tell; otherwise nil. Its Data may be left out. The core reports
	// takeovers from it (Report.Takeover); a store that always returns nil on
	// success is correct but hides them.
	Acquire(ctx context.Context, rec Record, now time.Time) (existing *Record, acquired bool, err error)

	// Get returns the record for key with a strongly consistent read, or nil
	// when there is none. It does not judge expiry.
	Get(ctx context.Context, key string) (*Record, error)

	// Complete turns the in-progress record rec.ID held by rec.Owner into a
	// completed one with rec.Data and rec.Expiration, and ends the lease. If
	// the record is not in progress or another owner holds it, Complete
	// changes nothing and returns ErrLeaseLost.
	Complete(ctx context.Context, rec Record) error

	// Release deletes the in-progress record key if owner holds it, so a
	// retry can run. Otherwise it changes nothing and returns ErrLeaseLost.
	Release(ctx context.Context, key, owner string) error
}

// DataCopier is an optional interface of a Store whose result bytes cross
// its boundary by copy. CopiesData reports true when both hold:
//
//   - Complete keeps nothing of rec.Data (no slice of it) once it returns;
//   - the Data of every record Acquire, Get and Peek return is memory of the
//     caller's own, which no one else holds, reuses or changes.
//
// The core then skips its own copy of a []byte or json.RawMessage result:
// on Complete it passes the handler's bytes to the store as they are, and a
// replay hands the caller the Data the store returned. It still copies where
// the memory would be shared: into the local cache (WithLocalCache), for
// the duplicates waiting in memory on one call (their replays each get their
// own), through a replay hook, and from records read ahead
// (PrefetchedContext). A store that keeps or reuses buffers does not
// implement it, and then the core copies as before. A wrapper that embeds a
// DataCopier by its concrete type inherits the method: it overrides it when
// it keeps or shares Data itself. MemoryStore implements it.
type DataCopier interface {
	CopiesData() bool
}

// copiesData reports whether store implements DataCopier and copies.
func copiesData(store Store) bool {
	d, ok := store.(DataCopier)
	return ok && d.CopiesData()
}
