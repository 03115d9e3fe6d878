package idempotent

import (
	"bytes"
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// In-process coalescing (docs/concurrency.md, contract §3 step 2c).
//
// Concurrent duplicates that meet in one process — a Lambda Managed
// Instances environment running several invocations, a net/http server —
// form a flight: the first call (the leader) goes through the store as any
// call does; the others (waiters) wait in memory for its outcome, making no
// store call. A flight is keyed by the Store value and the record id, so
// every guard, Wrap, Do and adapter sharing one store coalesces, whatever
// their options. The store stays the authority across processes: the leader
// acquires, waits (WithWait) or replays exactly as without coalescing, and
// its waiters get what its path gave it.
//
// A waiter takes the leader's answer only when it is the store's answer for
// the record: a completed record (stored by the leader's run, or found by
// its acquire or its polls), or a conflict the store reported before any
// run (in progress elsewhere, another payload, a corrupt record, a failed
// acquire or get) while the leader's context was alive. Anything else — the
// run failed, panicked, lost its lease or could not be completed, the
// leader's own context ended — is not theirs: the waiters go round again
// and one of them leads.
//
// A call inside a guarded run for that run's own record (a function that
// calls Do or Wrap on its own record id, directly or through goroutines
// given its context) does not coalesce: it would wait for itself. It goes
// to the store and gets ErrInProgress, as before coalescing.

// flightKey identifies a flight: one store value, one record id.
type flightKey struct {
	store Store
	id    string
}

// flights is the process-wide registry. It holds only flights in the air:
// a landed flight leaves it.
var flights = struct {
	mu sync.Mutex
	m  map[flightKey]*flight
}{m: make(map[flightKey]*flight)}

// flightPool recycles flights no waiter ever saw, so that the uncontended
// path allocates nothing for coalescing.
var flightPool = sync.Pool{New: func() any { return new(flight) }}

// flight is one leader's call and what its waiters learn from it. The
// leader's store calls go through it (it is a Store), so it sees the
// completed record the leader stored or found.
type flight struct {
	inner Store
	key   flightKey
	fp    string       // the leader's fingerprint hash ("" when not validated)
	owned bool         // the leader's caller owns seen's bytes (call.owned)
	lease atomic.Int64 // the leader's lease end, Unix ms, once acquired

	// Guarded by flights.mu.
	done    chan struct{} // made by the first waiter; closed at landing
	waiters int           // waiting now (for tests and diagnostics)
	vacant  bool          // a successor flight whose leader is the next call to come
	next    *flight       // the successor, when the waiters go round

	// Written by the leader before done is closed; read by waiters after.
	seen        Record // the completed record the leader stored or found
	hasSeen     bool
	result      landing
	outcome     Outcome
	err         error
	sharedLease time.Time // the lease end the leader reported with err
}

// landing is what a flight's waiters do with its outcome.
type landing uint8

const (
	landRetry  landing = iota // not their answer: one of them leads
	landRecord                // replay seen
	landShared                // return err, reported as outcome
)

// storeKey returns the registry key for store and id, and false when store
// cannot be a map key (a value of a type that is not comparable); such a
// store does not coalesce.
func storeKey(store Store, id string) (k flightKey, ok bool) {
	if typ := reflect.TypeOf(store); typ.Kind() != reflect.Pointer {
		if !typ.Comparable() {
			return k, false
		}
		defer func() {
			if recover() != nil {
				ok = false // a comparable type holding an incomparable value
			}
		}()
		_ = any(store) == any(store)
	}
	return flightKey{store: store, id: id}, true
}

// nested reports whether ctx belongs to a guarded run (any record): a call
// made from inside a run does not wait in memory. Waiting there could close
// a cycle no flight can see — the run's own record, or run A waiting for B
// while run B waits for A — which would hold both until their leases end and
// then run a record twice. Such a call goes to the store, which answers a
// held record with ErrInProgress at once (or WithWait polls), as before.
func nested(ctx context.Context) bool {
	r, _ := ctx.Value(ctxKey{}).(*runInfo)
	return r != nil
}

// coalesce is phase 2c: it joins the call to the flight of its record in
// this process. The first call leads: coalesce returns its flight (done
// false), and the leader goes on through the store with the flight as its
// store and fl.land deferred. A later call waits in memory for the leader
// and returns its own decision (done true) — or, when the leader's outcome
// is not its answer, goes round again and may lead itself. A call whose
// context has ended, a call from inside a guarded run and a store that cannot be a map key
// do not coalesce (fl nil, done false).
func coalesce[T any](k *call) (fl *flight, d decision[T], done bool) {
	if k.ctx.Err() != nil || nested(k.ctx) {
		return nil, d, false
	}
	key, ok := storeKey(k.store, k.id)
	if !ok {
		return nil, d, false
	}
	var via *flight // the successor of a flight whose outcome was not ours
	for {
		flights.mu.Lock()
		f := via
		if f == nil {
			f = flights.m[key]
		}
		via = nil
		if f == nil || f.vacant {
			if f == nil {
				f = flightPool.Get().(*flight)
				flights.m[key] = f
			}
			f.vacant = false
			f.inner, f.key, f.fp, f.owned = k.store, key, k.fp, k.owned
			flights.mu.Unlock()
			return f, d, false
		}
		if mismatch(k.fp, f.fp) && f.holds(k.c.clock()) {
			// The leader holds the record with another payload: the
			// store's answer to this call now.
			flights.mu.Unlock()
			return nil, failed[T](OutcomePayloadMismatch, &PayloadMismatchError{RecordID: k.id}), true
		}
		if f.done == nil {
			f.done = make(chan struct{})
		}
		landed := f.done
		f.waiters++
		flights.mu.Unlock()

		ok := f.await(k.ctx, k.c, landed)
		flights.mu.Lock()
		f.waiters--
		flights.mu.Unlock()
		if !ok {
			if k.ctx.Err() != nil {
				// The waiter's own context ended: what a WithWait
				// timeout gives.
				end := f.leaseEnd()
				k.t.ev.LeaseEnd = end
				return nil, failed[T](OutcomeWaitTimedOut, &InProgressError{RecordID: k.id, LeaseExpiration: end}), true
			}
			// The leader outlived its lease: it is no longer the record's
			// holder. Take it off the board; one waiter leads (and takes
			// the record over in the store); the old leader will be
			// fenced.
			flights.mu.Lock()
			if flights.m[key] == f {
				delete(flights.m, key)
			}
			flights.mu.Unlock()
			continue
		}
		switch f.result {
		case landRecord:
			if mismatch(k.fp, f.seen.Fingerprint) {
				return nil, failed[T](OutcomePayloadMismatch, &PayloadMismatchError{RecordID: k.id}), true
			}
			k.c.remember(&f.seen)
			out, err := decode[T](k.id, f.seen.Data, false)
			return nil, decision[T]{outcome: OutcomeCoalesced, out: out, err: err, replay: true}, true
		case landShared:
			if k.fp == f.fp {
				k.t.ev.LeaseEnd = f.sharedLease
				return nil, failed[T](f.outcome, f.err), true
			}
		}
		// Not this waiter's answer: go round; the first waiter back leads
		// the successor, the others wait for it.
		via = f.next
	}
}

// await waits for the flight to land (true), or for ctx or the leader's
// lease to end (false).
func (f *flight) await(ctx context.Context, c *config, landed <-chan struct{}) bool {
	for {
		end := f.leaseEnd()
		var d time.Duration
		if end.IsZero() {
			// The leader has not acquired yet (it may be polling another
			// process's record): look again within a second.
			d = maxPoll
		} else if d = end.Sub(c.clock()); d <= 0 {
			select {
			case <-landed:
				return true
			default:
				return false
			}
		}
		timer := time.NewTimer(min(d, maxPoll))
		select {
		case <-landed:
			timer.Stop()
			return true
		case <-ctx.Done():
			timer.Stop()
			select {
			case <-landed:
				return true
			default:
				return false
			}
		case <-timer.C:
		}
	}
}

// holds reports whether the leader holds the record in the store at now:
// it acquired, and its lease has not ended.
func (f *flight) holds(now time.Time) bool {
	end := f.leaseEnd()
	return !end.IsZero() && end.After(now)
}

// leaseEnd is the leader's lease end, zero before it acquired.
func (f *flight) leaseEnd() time.Time {
	if ms := f.lease.Load(); ms != 0 {
		return time.UnixMilli(ms)
	}
	return time.Time{}
}

// land ends the flight with the leader's outcome, as t reports it. The
// leader defers it, so it runs after finish and on a panic or Goexit too
// (when runGuarded has reported OutcomePanicked). ctx is the leader's
// context.
func (f *flight) land(ctx context.Context, t *tracker) {
	o := t.ev.Outcome
	switch {
	case f.hasSeen:
		// The store's last word on the record was a completed record:
		// each waiter replays it (checking its own fingerprint and
		// decoding into its own type), whatever the leader made of it.
		f.result = landRecord
	case ctx.Err() == nil && (o == OutcomeInProgress || o == OutcomeWaitTimedOut || o == OutcomePayloadMismatch ||
		o == OutcomeCorruptRecord || o == OutcomeStoreError && (t.ev.Op == "acquire" || t.ev.Op == "get")):
		f.result, f.outcome, f.err, f.sharedLease = landShared, o, t.ev.Err, t.ev.LeaseEnd
	default:
		f.result = landRetry
	}
	flights.mu.Lock()
	if flights.m[f.key] == f {
		if f.result == landRetry && f.waiters > 0 {
			// The waiters go round: the first to come back leads, the
			// others wait for it, instead of each going to the store.
			next := flightPool.Get().(*flight)
			next.key, next.vacant, next.done = f.key, true, make(chan struct{})
			flights.m[f.key] = next
			f.next = next
		} else {
			delete(flights.m, f.key)
		}
	}
	waited := f.done != nil
	if waited {
		if f.result == landRecord && f.owned {
			// The leader's caller may get seen's bytes as its own
			// (call.owned) and change them once the leader returns:
			// the waiters replay from a copy.
			f.seen.Data = bytes.Clone(f.seen.Data)
		}
		close(f.done)
	}
	flights.mu.Unlock()
	if !waited {
		*f = flight{} // no waiter holds it: reuse it
		flightPool.Put(f)
	}
}

// Acquire passes the call on and notes the lease taken or the completed
// record found.
func (f *flight) Acquire(ctx context.Context, rec Record, now time.Time) (*Record, bool, error) {
	existing, acquired, err := f.inner.Acquire(ctx, rec, now)
	if err == nil {
		if acquired {
			f.lease.Store(rec.LeaseExpiration.UnixMilli())
			f.hasSeen = false // a completed record read before is gone
		} else {
			f.note(existing)
		}
	}
	return existing, acquired, err
}

// Get passes the call on and notes a completed record found.
func (f *flight) Get(ctx context.Context, key string) (*Record, error) {
	r, err := f.inner.Get(ctx, key)
	if err == nil {
		f.note(r)
	}
	return r, err
}

// Complete passes the call on and notes the record stored.
func (f *flight) Complete(ctx context.Context, rec Record) error {
	err := f.inner.Complete(ctx, rec)
	if err == nil {
		f.note(&rec)
	}
	return err
}

// Release passes the call on.
func (f *flight) Release(ctx context.Context, key, owner string) error {
	return f.inner.Release(ctx, key, owner)
}

func (f *flight) note(r *Record) {
	if r != nil && r.Status == StatusCompleted {
		f.seen, f.hasSeen = *r, true
	}
}
