package idempotent

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

type ctxKey struct{}

// RecordIDFromContext returns the record id of the guarded run that ctx belongs
// to. Handlers use it to derive keys for their own downstream writes (a
// conditional put keyed by it, an idempotency key sent to a payment
// provider), so that even a second run after a crash does not double an
// effect.
func RecordIDFromContext(ctx context.Context) (string, bool) {
	r, ok := ctx.Value(ctxKey{}).(*runInfo)
	if !ok {
		return "", false
	}
	return r.id, true
}

// LeaseEndFromContext returns when the lease of the guarded run that ctx
// belongs to ends: the invocation's deadline, or WithLease from the acquire.
// After it, a duplicate may take the key over and this run's result is
// fenced off (ErrLeaseLost). Long handlers use it to stop in time.
func LeaseEndFromContext(ctx context.Context) (time.Time, bool) {
	r, ok := ctx.Value(ctxKey{}).(*runInfo)
	if !ok {
		return time.Time{}, false
	}
	return r.leaseEnd, true
}

// runInfo is the value a guarded run's context carries.
type runInfo struct {
	id       string
	leaseEnd time.Time
}

// runContext is a guarded run's context: the call's, with its runInfo
// under ctxKey. It is context.WithValue(ctx, ctxKey{}, &info) in one
// allocation instead of two.
type runContext struct {
	context.Context
	info runInfo
}

// Value implements context.Context.
func (c *runContext) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return &c.info
	}
	return c.Context.Value(key)
}

// Wrap returns a handler that runs h at most once per idempotency key within
// the TTL and answers every duplicate with the stored result of the first
// run. It goes straight into lambda.Start:
//
//	lambda.Start(idempotent.Wrap(idempotent.New(store), handle, idempotent.WithKeyPath("orderId")))
//
// The key is the whole event by default (its JSON form), or what WithKeyPath
// or WithKeyFunc select. Results are stored as JSON and decoded into Out on
// replay. Concurrency: the returned handler is safe for concurrent use, and
// any number of handlers in any number of processes sharing one Store
// coordinate through it — one run holds a key at a time, and a duplicate
// either replays, waits (WithWait) or fails with ErrInProgress. Duplicates
// that meet in one process over one Store value coalesce: they wait in
// memory for the first call and replay its result (docs/concurrency.md). A
// run that returns an error or panics releases its key so a retry runs
// again; a run that crashes holds it until its lease ends. Store failures fail closed: h
// does not run and the call returns a *StoreError.
//
// The options are checked here, once. A mistake in them, or in the guard's
// (Guard.Err), makes every call fail with a *ConfigError; h never runs
// unguarded because of a configuration mistake.
func Wrap[In, Out any](g *Guard, h func(context.Context, In) (Out, error), opts ...WrapOption) func(context.Context, In) (Out, error) {
	w := &wrapConfig{}
	for _, o := range opts {
		if o != nil {
			o.applyWrap(w)
		}
	}
	err := g.Err()
	var keyFunc func(In) (string, string, error)
	if err == nil {
		// Paths are compiled with the guard's custom functions.
		w.keyPath = compilePath(w, g.c.functions, "WithKeyPath", w.keyExpr)
		w.payloadPath = compilePath(w, g.c.functions, "WithPayloadPath", w.payloadExpr)
		keyFunc, err = eventKeyFunc[In](w)
	}
	if err == nil && h == nil {
		err = &ConfigError{Option: "handler", Err: errors.New("nil handler")}
	}
	if err == nil {
		err = checkReplayHook[Out](w.replayHook)
	}
	if err != nil {
		return func(context.Context, In) (Out, error) {
			var zero Out
			return zero, err
		}
	}
	c := &g.c
	if c.disabled {
		return h
	}
	validate, hook := w.payloadPath != nil, w.replayHook
	return func(ctx context.Context, event In) (Out, error) {
		key, fp, err := keyFunc(event)
		if err != nil {
			err = typed(err, "")
			endNoKey(ctx, c, err)
			var zero Out
			return zero, err
		}
		return execute(ctx, c, g.store, key, fp, validate, hook, func(ctx context.Context) (Out, error) { return h(ctx, event) })
	}
}

// Do runs fn at most once per (step, key) within the TTL, inside a handler:
// per SQS record, per step of a workflow. It follows the same contract as
// Wrap, with the key given directly.
//
// step names the guarded operation and is required: the record belongs to
// the step and the key together, so two guarded operations that use the
// same key — "charge" and "send-receipt" for one order id — keep separate
// records instead of one replaying the other's result:
//
//	receipt, err := idempotent.Do(ctx, guard, "charge", order.ID, charge)
//	...
//	_, err = idempotent.Do(ctx, guard, "send-receipt", order.ID, sendReceipt)
//
// Keep a step's name stable across deployments: renaming it starts new
// records. An empty step (or one with a NUL byte) is a *ConfigError. An
// empty key runs fn unguarded with a warning, or fails with ErrNoKey under
// WithRequireKey. WithFingerprint turns on payload validation. The result is
// stored as JSON and decoded into T on replay. The guard's settings, its
// local cache included, apply to every Do through it.
func Do[T any](ctx context.Context, g *Guard, step, key string, fn func(context.Context) (T, error), opts ...CallOption) (T, error) {
	var zero T
	if err := g.Err(); err != nil {
		return zero, err
	}
	var fingerprint *string
	var hook any
	if len(opts) > 0 {
		cc := &callConfig{}
		for _, o := range opts {
			if o != nil {
				o.applyCall(cc)
			}
		}
		if cc.err != nil {
			return zero, cc.err
		}
		if err := checkReplayHook[T](cc.replayHook); err != nil {
			return zero, err
		}
		fingerprint, hook = cc.fingerprint, cc.replayHook
	}
	if step == "" || strings.IndexByte(step, 0) >= 0 {
		return zero, &ConfigError{Option: "step", Err: fmt.Errorf("step name %q is empty or has a NUL byte", step)}
	}
	if fn == nil {
		return zero, &ConfigError{Option: "fn", Err: errors.New("nil function")}
	}
	c := &g.c
	if c.disabled {
		return fn(ctx)
	}
	fp := ""
	if fingerprint != nil {
		fp = *fingerprint
	}
	return execute(ctx, c, g.store, stepKey(step, key), fp, fingerprint != nil, hook, fn)
}

// stepKey is the key material of key in step: the step, a NUL byte (which
// a step never contains, so the split is unambiguous) and the key. No key
// stays no key.
func stepKey(step, key string) string {
	if key == "" {
		return ""
	}
	return step + "\x00" + key
}

// execute is the state machine of the contract, §3 (docs/contract.md), in
// phases: the local cache, read first, coalescing with a duplicate in this
// process, acquire (with the wait and the decision on a conflict), run,
// complete. Each phase returns a decision; finish, the one
// exit, reports it. (A panic in fn is reported by runGuarded before it goes
// on: a panicking call never reaches finish.)
func execute[T any](ctx context.Context, c *config, store Store, key, fingerprint string, validate bool, hook any, fn func(context.Context) (T, error)) (T, error) {
	if key == "" {
		var t tracker
		ctx = t.start(ctx, c, "")
		if c.requireKey {
			err := &NoKeyError{}
			t.end(ctx, OutcomeNoKey, err)
			var zero T
			return zero, err
		}
		return runUnguarded(ctx, &t, fn)
	}
	k := call{c: c, store: store, id: recordID(c.name, key)}
	k.t.hook = hook
	// The call's result bytes are its own (no copy needed) when the store
	// copies at its boundary and neither a local cache nor a replay hook
	// gets them; waiters in memory get copies (flight.land).
	k.owned = c.cache == nil && hook == nil && copiesData(store)
	k.ctx = k.t.start(ctx, c, k.id)
	if validate {
		k.fp = hashHex(fingerprint)
	}
	d, done := cached[T](&k)
	if !done {
		d, done = readFirst[T](&k)
	}
	if !done {
		var fl *flight
		fl, d, done = coalesce[T](&k)
		if fl != nil {
			// The leader: its store calls go through the flight, and its
			// outcome lands it, after finish or on a panic (flight.go).
			k.store = fl
			defer fl.land(k.ctx, &k.t)
		}
	}
	if !done {
		d, done = acquire[T](&k)
	}
	if !done {
		d = run(&k, fn)
	}
	return finish(&k, d)
}

// call is the state of one guarded call with a key, shared by its phases.
type call struct {
	ctx       context.Context // the call's context, inside PhaseCall
	c         *config
	store     Store
	t         tracker
	id, owner string
	fp        string        // the fingerprint hash, or ""
	owned     bool          // result bytes need no copy of the core's (execute)
	waited    time.Duration // WithWait: time spent waiting so far
	polls     int
	backoff   time.Duration // the next poll's delay
}

// decision is how a phase ended the call: its outcome, and the result or
// the error. replay marks a stored result, which finish passes through the
// replay hook.
type decision[T any] struct {
	outcome Outcome
	out     T
	err     error
	replay  bool
}

func failed[T any](o Outcome, err error) decision[T] { return decision[T]{outcome: o, err: err} }

// finish is the one exit of a guarded call: it applies the replay hook to a
// replay, reports the outcome and returns the result.
func finish[T any](k *call, d decision[T]) (T, error) {
	if d.replay {
		if d.err == nil {
			d.out, d.err = replayed(k.ctx, k.c, k.t.hook, k.id, d.outcome, d.out)
		}
		if d.err != nil {
			d.outcome = storeOutcome(d.err)
		}
	}
	k.t.end(k.ctx, d.outcome, d.err)
	if d.err != nil {
		var zero T
		return zero, d.err
	}
	return d.out, nil
}

// cached is phase 2, the local cache: a replay or a mismatch ends the call.
func cached[T any](k *call) (decision[T], bool) {
	c := k.c
	if c.cache == nil {
		return decision[T]{}, false
	}
	e, ok := c.cache.get(k.id)
	if !ok {
		return decision[T]{}, false
	}
	if e.expiration <= c.clock().Unix() {
		c.cache.remove(k.id)
		return decision[T]{}, false
	}
	if mismatch(k.fp, e.fingerprint) {
		return failed[T](OutcomePayloadMismatch, &PayloadMismatchError{RecordID: k.id}), true
	}
	out, err := decode[T](k.id, e.data, false)
	return decision[T]{outcome: OutcomeCacheReplayed, out: out, err: err, replay: true}, true
}

// acquire is phases 3–4: take the key, or wait for and decide on the record
// that holds it. It ends the call (a replay, a conflict, a failure) or
// returns done = false with the key held by k.owner.
func acquire[T any](k *call) (d decision[T], done bool) {
	owner, err := newOwner()
	if err != nil {
		return failed[T](OutcomeStoreError, &StoreError{Op: "acquire", RecordID: k.id, Err: err}), true
	}
	k.owner = owner
	k.backoff = firstPoll
	actx, endAcquire := k.t.phase(k.ctx, PhaseAcquire)
	for attempt := 0; ; attempt++ {
		existing, acquired, d, done := tryAcquire[T](k, actx)
		if !done && !acquired {
			existing, d, done = wait[T](k, actx, existing)
		}
		if !done && !acquired {
			d, done = decide[T](k, existing, attempt)
			if !done {
				continue // the record vanished or expired: acquire again
			}
		}
		if done {
			endAcquire(d.err)
			return d, true
		}
		endAcquire(nil)
		return d, false
	}
}

// tryAcquire makes one conditional write. It returns the record that holds
// the key when the write failed, acquired when it landed in time, or a
// decision that ends the call.
func tryAcquire[T any](k *call, actx context.Context) (existing *Record, acquired bool, d decision[T], done bool) {
	c, t := k.c, &k.t
	now := c.clock()
	lease := time.UnixMilli(c.leaseEnd(k.ctx, now).UnixMilli())
	rec := Record{
		ID:              k.id,
		Status:          StatusInProgress,
		Expiration:      inProgressExpiration(now, c.ttl, lease),
		LeaseExpiration: lease,
		Owner:           k.owner,
		Fingerprint:     k.fp,
	}
	if !lease.After(now) {
		// The invocation's deadline has passed: a record written now
		// would be free at once, so a duplicate could run beside this
		// run. Fail as a store call on a finished context does, whether
		// or not the store looks at the context.
		err := storeErr("acquire", k.id, cmp.Or(k.ctx.Err(), context.DeadlineExceeded))
		return nil, false, failed[T](storeOutcome(err), err), true
	}
	if err := k.ctx.Err(); err != nil {
		// A cancelled or expired context fails before any store call,
		// whether or not the store looks at the context.
		err = storeErr("acquire", k.id, err)
		return nil, false, failed[T](storeOutcome(err), err), true
	}
	t.ev.Attempts++
	s := t.now()
	existing, acquired, err := k.store.Acquire(actx, rec, now)
	t.storeSince(s)
	if err != nil {
		err = storeErr("acquire", k.id, err)
		return nil, false, failed[T](storeOutcome(err), err), true
	}
	if !acquired {
		return existing, false, d, false
	}
	// The store reports the in-progress record it replaced, if any: a run
	// whose lease ended before it finished.
	t.ev.Takeover = existing != nil && existing.Status == StatusInProgress && existing.Owner != k.owner
	t.ev.LeaseEnd = lease
	if !lease.After(c.clock()) || k.ctx.Err() != nil {
		// The store answered after the lease ended (a paused or slow
		// server) or after the caller gave up: a duplicate may already hold
		// the key, so running now could run twice at once. Give the key
		// back (fenced by owner) and fail as a store timeout.
		err := storeErr("acquire", k.id, cmp.Or(k.ctx.Err(), context.DeadlineExceeded))
		err = errors.Join(err, release(k.ctx, c, k.store, k.id, k.owner, t))
		return nil, false, failed[T](OutcomeStoreError, err), true
	}
	return nil, true, d, false
}

// wait polls, under WithWait, while existing is a live in-progress record
// with a matching fingerprint, and returns the record it last read (or a
// decision that ends the call).
func wait[T any](k *call, actx context.Context, existing *Record) (*Record, decision[T], bool) {
	c, t := k.c, &k.t
	for existing != nil && existing.Status == StatusInProgress && !existing.Free(c.clock()) && !mismatch(k.fp, existing.Fingerprint) && c.wait > 0 && k.waited < c.wait {
		d := min(k.backoff, c.wait-k.waited)
		if err := sleep(actx, d); err != nil {
			t.ev.LeaseEnd = existing.LeaseExpiration
			return nil, failed[T](OutcomeWaitTimedOut, &InProgressError{RecordID: k.id, LeaseExpiration: existing.LeaseExpiration}), true
		}
		k.waited += d
		k.polls++
		t.ev.Polls = k.polls
		k.backoff = min(k.backoff*2, maxPoll)
		s := t.now()
		got, err := k.store.Get(actx, k.id)
		t.storeSince(s)
		if err != nil {
			err = storeErr("get", k.id, err)
			return nil, failed[T](storeOutcome(err), err), true
		}
		existing = got
	}
	return existing, decision[T]{}, false
}

// decide resolves a conflict with the record that holds the key: a replay,
// a mismatch, in progress, a corrupt record, or done = false to acquire
// again (the record vanished or expired meanwhile).
func decide[T any](k *call, existing *Record, attempt int) (decision[T], bool) {
	c, t := k.c, &k.t
	if existing == nil || existing.Free(c.clock()) {
		if attempt >= maxAcquireAttempts+k.polls {
			return failed[T](OutcomeStoreError, &StoreError{Op: "acquire", RecordID: k.id, Err: errors.New("record kept changing between conditional write and read")}), true
		}
		return decision[T]{}, false
	}
	if mismatch(k.fp, existing.Fingerprint) {
		return failed[T](OutcomePayloadMismatch, &PayloadMismatchError{RecordID: k.id}), true
	}
	switch existing.Status {
	case StatusCompleted:
		c.remember(existing)
		out, err := decode[T](k.id, existing.Data, k.owned)
		o := OutcomeReplayed
		if k.waited > 0 {
			o = OutcomeWaitReplayed
		}
		return decision[T]{outcome: o, out: out, err: err, replay: true}, true
	case StatusInProgress:
		t.ev.LeaseEnd = existing.LeaseExpiration
		o := OutcomeInProgress
		if k.waited > 0 {
			o = OutcomeWaitTimedOut
		}
		return failed[T](o, &InProgressError{RecordID: k.id, LeaseExpiration: existing.LeaseExpiration}), true
	default:
		return failed[T](OutcomeCorruptRecord, &CorruptRecordError{RecordID: k.id, Err: fmt.Errorf("unknown status %q", existing.Status)}), true
	}
}

// run is phases 5–7: run fn with the key held, then complete (success) or
// release (error).
func run[T any](k *call, fn func(context.Context) (T, error)) decision[T] {
	out, runErr := runGuarded(k.ctx, k.c, k.store, k.id, k.owner, fn, &k.t)
	if runErr != nil {
		// 7. Error → release, and return the handler's error value itself
		// (errors.Join would wrap even a lone error), so errors.As, Lambda's
		// errorType and Step Functions' Catch see the user's type.
		return released[T](k, runErr)
	}
	return complete(k, out)
}

// released releases the key after a run that failed with runErr; the call
// fails with runErr itself unless the release failed too.
func released[T any](k *call, runErr error) decision[T] {
	relErr := release(k.ctx, k.c, k.store, k.id, k.owner, &k.t)
	if relErr == nil {
		return failed[T](OutcomeFailed, runErr)
	}
	k.t.ev.Op = "release"
	return failed[T](OutcomeStoreError, errors.Join(runErr, relErr))
}

// complete is phase 6: store out as the key's result.
func complete[T any](k *call, out T) decision[T] {
	c, t := k.c, &k.t
	data, err := encode(out, k.owned)
	if err != nil {
		return released[T](k, fmt.Errorf("idempotent: encode result of record %s: %w", k.id, err))
	}
	done := Record{
		ID:          k.id,
		Status:      StatusCompleted,
		Expiration:  time.Unix(c.clock().Add(c.ttl).Unix(), 0),
		Owner:       k.owner,
		Fingerprint: k.fp,
		Data:        data,
	}
	cctx, cancel := cleanupContext(k.ctx)
	defer cancel()
	cctx, endComplete := t.phase(cctx, PhaseComplete)
	s := t.now()
	err = k.store.Complete(cctx, done)
	t.storeSince(s)
	endComplete(err)
	if err != nil {
		if errors.Is(err, ErrLeaseLost) {
			return failed[T](OutcomeLeaseLost, &LeaseLostError{RecordID: k.id})
		}
		err = storeErr("complete", k.id, err)
		return failed[T](storeOutcome(err), err)
	}
	c.remember(&done)
	return decision[T]{outcome: OutcomeCompleted, out: out}
}

// runUnguarded runs fn for a call without key and reports it; a panic is
// reported (OutcomePanicked) before it goes on.
func runUnguarded[T any](ctx context.Context, t *tracker, fn func(context.Context) (T, error)) (out T, err error) {
	rctx, endRun := t.phase(ctx, PhaseRun)
	start := t.now()
	finished := false
	defer func() {
		if !finished {
			t.handlerSince(start)
			endRun(errPanicked)
			t.end(ctx, OutcomePanicked, nil)
		}
	}()
	out, err = fn(rctx)
	finished = true
	t.handlerSince(start)
	endRun(err)
	t.end(ctx, OutcomeUnguarded, err)
	return out, err
}

// storeOutcome is the outcome of a call that failed in the store with err.
func storeOutcome(err error) Outcome {
	switch {
	case errors.Is(err, ErrCorruptRecord):
		return OutcomeCorruptRecord
	case errors.As(err, new(*StoreError)):
		return OutcomeStoreError
	}
	return OutcomeFailed
}

// inProgressExpiration is the expiration of an in-progress record acquired
// at now with lease end lease: now + TTL, but never before the lease ends
// (§3 step 3), in whole seconds rounded up so that it cannot end before the
// lease either. Otherwise a TTL shorter than the lease would free the key —
// and let DynamoDB's TTL deletion remove the record — while its run goes on.
func inProgressExpiration(now time.Time, ttl time.Duration, lease time.Time) time.Time {
	exp := now.Add(ttl).Unix()
	leaseEnd := lease.Unix()
	if lease.After(time.Unix(leaseEnd, 0)) {
		leaseEnd++ // round up a fraction of a second
	}
	return time.Unix(max(exp, leaseEnd), 0)
}

const (
	maxAcquireAttempts = 2
	firstPoll          = 25 * time.Millisecond
	maxPoll            = time.Second
	cleanupTimeout     = 10 * time.Second
)

func runGuarded[T any](ctx context.Context, c *config, store Store, id, owner string, fn func(context.Context) (T, error), t *tracker) (out T, err error) {
	rctx, endRun := t.phase(ctx, PhaseRun)
	start := t.now()
	finished := false
	defer func() {
		if !finished {
			// fn panicked (or called runtime.Goexit): release, report, and
			// let the panic go on with its original stack.
			t.handlerSince(start)
			endRun(errPanicked)
			t.end(ctx, OutcomePanicked, release(ctx, c, store, id, owner, t))
		}
	}()
	out, err = fn(&runContext{Context: rctx, info: runInfo{id: id, leaseEnd: t.ev.LeaseEnd}})
	finished = true
	t.handlerSince(start)
	endRun(err)
	return out, err
}

// errPanicked ends the run phase of a function that panicked.
var errPanicked = errors.New("idempotent: guarded function panicked")

// release frees the key after a failed run. Losing the lease meanwhile is not
// an error of the caller's: the key is in another run's hands.
func release(ctx context.Context, c *config, store Store, id, owner string, t *tracker) error {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	cctx, endRelease := t.phase(cctx, PhaseRelease)
	s := t.now()
	err := store.Release(cctx, id, owner)
	t.storeSince(s)
	endRelease(err)
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrLeaseLost) {
		c.logger.WarnContext(ctx, "lease lost before release", slog.String("record", id))
		return nil
	}
	return storeErr("release", id, err)
}

// cleanupContext lets Complete and Release run even when the invocation's
// context was cancelled, within a bound: cleanupTimeout (10 s) from the
// moment the cleanup starts, whatever the invocation's deadline (contract
// §3, "Cleanup after the deadline").
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

func (c *config) leaseEnd(ctx context.Context, now time.Time) time.Time {
	if c.lease > 0 {
		return now.Add(c.lease)
	}
	if dl, ok := ctx.Deadline(); ok {
		// The deadline is on the wall clock; carry the time left over to the
		// configured clock so every comparison uses one clock.
		return now.Add(time.Until(dl))
	}
	return now.Add(DefaultLease)
}

func (c *config) remember(r *Record) {
	if c.cache == nil || r.Status != StatusCompleted {
		return
	}
	c.cache.add(r.ID, cacheEntry{expiration: r.Expiration.Unix(), fingerprint: r.Fingerprint, data: r.Data})
}

func mismatch(mine, stored string) bool {
	return mine != "" && stored != "" && mine != stored
}

// encode turns a result into the stored bytes: JSON, except that []byte and
// json.RawMessage results are stored as they are (no base64, no re-encoding).
// Those are copied unless owned (the store copies what it keeps and no local
// cache keeps them, see DataCopier): the caller may reuse its buffer, and
// the local cache must keep what was stored.
func encode[T any](v T, owned bool) ([]byte, error) {
	switch x := any(v).(type) {
	case []byte:
		return cloneUnless(owned, x), nil
	case json.RawMessage:
		return cloneUnless(owned, x), nil
	}
	return json.Marshal(v)
}

// decode is the inverse of encode. The bytes are copied unless owned (data
// is the store's copy for this call alone, see DataCopier): data may be
// shared with the local cache, and every replay gets memory of its own.
func decode[T any](id string, data []byte, owned bool) (T, error) {
	var out T
	switch p := any(&out).(type) {
	case *[]byte:
		*p = cloneUnless(owned, data)
		return out, nil
	case *json.RawMessage:
		*p = cloneUnless(owned, data)
		return out, nil
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, &CorruptRecordError{RecordID: id, Err: fmt.Errorf("stored result does not decode: %w", err)}
	}
	return out, nil
}

func cloneUnless(owned bool, b []byte) []byte {
	if owned {
		return b
	}
	return bytes.Clone(b)
}

func storeErr(op, id string, err error) error {
	if errors.Is(err, ErrCorruptRecord) {
		return typed(err, id)
	}
	var se *StoreError
	var ce *ConfigError
	if errors.As(err, &se) || errors.As(err, &ce) {
		return err // a misconfigured store says so itself
	}
	return &StoreError{Op: op, RecordID: id, Err: err}
}

// recordID is "<name>#<sha256 hex of key>", built in one allocation.
func recordID(name, key string) string {
	sum := sha256.Sum256([]byte(key))
	var hexSum [sha256.Size * 2]byte
	hex.Encode(hexSum[:], sum[:])
	var b strings.Builder
	b.Grow(len(name) + 1 + len(hexSum))
	b.WriteString(name)
	b.WriteByte('#')
	b.Write(hexSum[:])
	return b.String()
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// newOwner is a random 128-bit owner token, 22 characters of unpadded
// URL-safe base64 (not 32 of hex: the token is sent with every write and
// stored in every record).
func newOwner() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
