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
	k, ok := ctx.Value(ctxKey{}).(string)
	return k, ok
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
// either replays, waits (WithWait) or fails with ErrInProgress. A run that
// returns an error or panics releases its key so a retry runs again; a run
// that crashes holds it until its lease ends. Store failures fail closed: h
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
		c.logger.Warn("idempotency disabled by environment; handler runs unguarded", slog.String("env", DisabledEnv))
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
		c.logger.Warn("idempotency disabled by environment; function runs unguarded", slog.String("env", DisabledEnv))
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

// execute is the state machine of the contract, §3 (docs/contract.md).
// Every return goes through t.end, the one observation point (observe.go).
func execute[T any](ctx context.Context, c *config, store Store, key, fingerprint string, validate bool, hook any, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	var t tracker
	t.hook = hook
	if key == "" {
		ctx = t.start(ctx, c, "")
		if c.requireKey {
			err := &NoKeyError{}
			t.end(ctx, OutcomeNoKey, err)
			return zero, err
		}
		return runUnguarded(ctx, &t, fn)
	}
	id := recordID(c.name, key)
	ctx = t.start(ctx, c, id)
	fp := ""
	if validate {
		fp = hashHex(fingerprint)
	}

	// 2. Local cache.
	if c.cache != nil {
		if e, ok := c.cache.get(id); ok {
			if e.expiration > c.clock().Unix() {
				if mismatch(fp, e.fingerprint) {
					err := &PayloadMismatchError{Key: id}
					t.end(ctx, OutcomePayloadMismatch, err)
					return zero, err
				}
				out, err := decode[T](id, e.data)
				return endReplay(ctx, &t, OutcomeCacheReplayed, out, err)
			}
			c.cache.remove(id)
		}
	}

	owner, err := newOwner()
	if err != nil {
		err = &StoreError{Op: "acquire", Key: id, Err: err}
		t.end(ctx, OutcomeStoreError, err)
		return zero, err
	}

	// 3–4. Acquire, or resolve the conflict.
	actx, endAcquire := t.phase(ctx, PhaseAcquire)
	fail := func(o Outcome, err error) (T, error) {
		endAcquire(err)
		t.end(ctx, o, err)
		return zero, err
	}
	waited, polls := time.Duration(0), 0
	backoff := firstPoll
	for attempt := 0; ; attempt++ {
		now := c.clock()
		lease := time.UnixMilli(c.leaseEnd(ctx, now).UnixMilli())
		rec := Record{
			Key:             id,
			Status:          StatusInProgress,
			Expiration:      inProgressExpiration(now, c.ttl, lease),
			LeaseExpiration: lease,
			Owner:           owner,
			Fingerprint:     fp,
		}
		if !lease.After(now) {
			// The invocation's deadline has passed: a record written now
			// would be free at once, so a duplicate could run beside this
			// run. Fail as a store call on a finished context does, whether
			// or not the store looks at the context.
			err := storeErr("acquire", id, cmp.Or(ctx.Err(), context.DeadlineExceeded))
			return fail(storeOutcome(err), err)
		}
		if err := ctx.Err(); err != nil {
			// A cancelled or expired context fails before any store call,
			// whether or not the store looks at the context.
			err = storeErr("acquire", id, err)
			return fail(storeOutcome(err), err)
		}
		t.ev.Attempts++
		s := t.now()
		existing, acquired, err := store.Acquire(actx, rec, now)
		t.storeSince(s)
		if err != nil {
			err = storeErr("acquire", id, err)
			return fail(storeOutcome(err), err)
		}
		if acquired {
			// The store reports the in-progress record it replaced, if
			// any: a run whose lease ended before it finished.
			t.ev.Takeover = existing != nil && existing.Status == StatusInProgress && existing.Owner != owner
			t.ev.LeaseEnd = lease
			if !lease.After(c.clock()) {
				// The store answered after the lease ended (a paused or
				// slow server): a duplicate may already hold the key, so
				// running now could run twice at once. Give the key back
				// (fenced by owner) and fail as a store timeout.
				err := error(&StoreError{Op: "acquire", Key: id, Err: fmt.Errorf("lease ended before the store answered: %w", context.DeadlineExceeded)})
				if relErr := release(ctx, c, store, id, owner, &t); relErr != nil {
					err = errors.Join(err, relErr)
				}
				return fail(OutcomeStoreError, err)
			}
			break
		}
		for existing != nil && existing.Status == StatusInProgress && !existing.Free(c.clock()) && !mismatch(fp, existing.Fingerprint) && c.wait > 0 && waited < c.wait {
			d := min(backoff, c.wait-waited)
			if err := sleep(actx, d); err != nil {
				t.ev.LeaseEnd = existing.LeaseExpiration
				return fail(OutcomeWaitTimedOut, &InProgressError{Key: id, LeaseExpiration: existing.LeaseExpiration})
			}
			waited += d
			polls++
			t.ev.Polls = polls
			backoff = min(backoff*2, maxPoll)
			s := t.now()
			got, err := store.Get(actx, id)
			t.storeSince(s)
			if err != nil {
				err = storeErr("get", id, err)
				return fail(storeOutcome(err), err)
			}
			existing = got
		}
		now = c.clock()
		if existing == nil || existing.Free(now) {
			if attempt >= maxAcquireAttempts+polls {
				return fail(OutcomeStoreError, &StoreError{Op: "acquire", Key: id, Err: errors.New("record kept changing between conditional write and read")})
			}
			continue
		}
		if mismatch(fp, existing.Fingerprint) {
			return fail(OutcomePayloadMismatch, &PayloadMismatchError{Key: id})
		}
		switch existing.Status {
		case StatusCompleted:
			c.remember(existing)
			out, err := decode[T](id, existing.Data)
			endAcquire(err)
			o := OutcomeReplayed
			if waited > 0 {
				o = OutcomeWaitReplayed
			}
			return endReplay(ctx, &t, o, out, err)
		case StatusInProgress:
			t.ev.LeaseEnd = existing.LeaseExpiration
			o := OutcomeInProgress
			if waited > 0 {
				o = OutcomeWaitTimedOut
			}
			return fail(o, &InProgressError{Key: id, LeaseExpiration: existing.LeaseExpiration})
		default:
			return fail(OutcomeCorruptRecord, &CorruptRecordError{Key: id, Err: fmt.Errorf("unknown status %q", existing.Status)})
		}
	}
	endAcquire(nil)

	// 5. Run, releasing the key if fn panics or exits the goroutine.
	out, runErr := runGuarded(ctx, c, store, id, owner, fn, &t)
	if runErr != nil {
		// 7. Error → release, and return the handler's error value itself
		// (errors.Join would wrap even a lone error), so errors.As, Lambda's
		// errorType and Step Functions' Catch see the user's type.
		return zero, endFailed(ctx, &t, runErr, release(ctx, c, store, id, owner, &t))
	}

	// 6. Success → complete.
	data, err := encode(out)
	if err != nil {
		encErr := fmt.Errorf("idempotent: encode result of record %s: %w", id, err)
		return zero, endFailed(ctx, &t, encErr, release(ctx, c, store, id, owner, &t))
	}
	done := Record{
		Key:         id,
		Status:      StatusCompleted,
		Expiration:  time.Unix(c.clock().Add(c.ttl).Unix(), 0),
		Owner:       owner,
		Fingerprint: fp,
		Data:        data,
	}
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	cctx, endComplete := t.phase(cctx, PhaseComplete)
	s := t.now()
	err = store.Complete(cctx, done)
	t.storeSince(s)
	endComplete(err)
	if err != nil {
		if errors.Is(err, ErrLeaseLost) {
			err = &LeaseLostError{Key: id}
			t.end(ctx, OutcomeLeaseLost, err)
			return zero, err
		}
		err = storeErr("complete", id, err)
		t.end(ctx, storeOutcome(err), err)
		return zero, err
	}
	c.remember(&done)
	t.end(ctx, OutcomeCompleted, nil)
	return out, nil
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

// endReplay ends a call that found a stored result: out, decoded (or the
// decoding error), passes through the replay hook.
func endReplay[T any](ctx context.Context, t *tracker, o Outcome, out T, err error) (T, error) {
	if err == nil {
		out, err = replayed(ctx, t.c, t.hook, t.ev.Record, o, out)
	}
	if err != nil {
		var zero T
		t.end(ctx, storeOutcome(err), err)
		return zero, err
	}
	t.end(ctx, o, nil)
	return out, nil
}

// endFailed ends a call whose run failed with runErr, after the release
// that returned relErr; it returns the call's error: runErr itself unless
// the release failed too.
func endFailed(ctx context.Context, t *tracker, runErr, relErr error) error {
	if relErr == nil {
		t.end(ctx, OutcomeFailed, runErr)
		return runErr
	}
	err := errors.Join(runErr, relErr)
	t.ev.Op = "release"
	t.end(ctx, OutcomeStoreError, err)
	return err
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
	out, err = fn(context.WithValue(rctx, ctxKey{}, id))
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
	c.cache.add(r.Key, cacheEntry{expiration: r.Expiration.Unix(), fingerprint: r.Fingerprint, data: r.Data})
}

func mismatch(mine, stored string) bool {
	return mine != "" && stored != "" && mine != stored
}

// encode turns a result into the stored bytes: JSON, except that []byte and
// json.RawMessage results are stored as they are (no base64, no re-encoding).
// Those are copied: the caller may reuse its buffer, and the local cache must
// keep what was stored.
func encode[T any](v T) ([]byte, error) {
	switch x := any(v).(type) {
	case []byte:
		return bytes.Clone(x), nil
	case json.RawMessage:
		return bytes.Clone(x), nil
	}
	return json.Marshal(v)
}

// decode is the inverse of encode. The bytes are copied: data may be shared
// with the local cache, and every replay gets memory of its own.
func decode[T any](id string, data []byte) (T, error) {
	var out T
	switch p := any(&out).(type) {
	case *[]byte:
		*p = bytes.Clone(data)
		return out, nil
	case *json.RawMessage:
		*p = bytes.Clone(data)
		return out, nil
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, &CorruptRecordError{Key: id, Err: fmt.Errorf("stored result does not decode: %w", err)}
	}
	return out, nil
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
	return &StoreError{Op: op, Key: id, Err: err}
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
