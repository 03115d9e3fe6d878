package idempotent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// recorder is an Observer that keeps every report.
type recorder struct {
	mu     sync.Mutex
	events []idempotent.Report
	phases []string // "start acquire", "end acquire", …
}

func (r *recorder) observer() idempotent.Observer {
	return idempotent.Observer{
		Call: func(_ context.Context, e idempotent.Report) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.events = append(r.events, e)
		},
		Phase: func(ctx context.Context, p idempotent.Phase, record string) (context.Context, func(error)) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.phases = append(r.phases, "start "+p.String())
			return context.WithValue(ctx, phaseKey{}, p), func(err error) {
				r.mu.Lock()
				defer r.mu.Unlock()
				s := "end " + p.String()
				if err != nil {
					s += " (error)"
				}
				r.phases = append(r.phases, s)
			}
		},
	}
}

type phaseKey struct{}

// only returns the one event reported, failing unless there is exactly one.
func (r *recorder) only(t *testing.T) idempotent.Report {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) != 1 {
		t.Fatalf("%d events reported, want 1: %+v", len(r.events), r.events)
	}
	e := r.events[0]
	r.events = nil
	r.phases = nil
	return e
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events, r.phases = nil, nil
}

// scriptStore wraps a store: each operation advances the clock by its cost
// and may be made to fail.
type scriptStore struct {
	idempotent.Store
	clk  *clock
	cost time.Duration
	fail map[string]error
}

func (s *scriptStore) step(op string) error {
	s.clk.Advance(s.cost)
	return s.fail[op]
}

func (s *scriptStore) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	if err := s.step("acquire"); err != nil {
		return nil, false, err
	}
	return s.Store.Acquire(ctx, rec, now)
}

func (s *scriptStore) Get(ctx context.Context, key string) (*idempotent.Record, error) {
	if err := s.step("get"); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, key)
}

func (s *scriptStore) Complete(ctx context.Context, rec idempotent.Record) error {
	if err := s.step("complete"); err != nil {
		return err
	}
	return s.Store.Complete(ctx, rec)
}

func (s *scriptStore) Release(ctx context.Context, key, owner string) error {
	if err := s.step("release"); err != nil {
		return err
	}
	return s.Store.Release(ctx, key, owner)
}

// rig is one function guarded with an observer, on a clock that store
// calls advance by 5 ms and runs by 100 ms.
type rig struct {
	clk   *clock
	mem   *idempotent.MemoryStore
	store *scriptStore
	rec   *recorder
	opts  []idempotent.Option
	g     *idempotent.Guard // over store with opts
}

const (
	storeCost = 5 * time.Millisecond
	runCost   = 100 * time.Millisecond
)

func newRig(opts ...idempotent.Option) *rig {
	r := &rig{clk: newClock(), mem: idempotent.NewMemoryStore(), rec: &recorder{}}
	r.store = &scriptStore{Store: r.mem, clk: r.clk, cost: storeCost, fail: map[string]error{}}
	r.opts = append([]idempotent.Option{
		idempotent.WithName("pay"),
		idempotent.WithClock(r.clk.Now),
		idempotent.WithLease(time.Minute),
		idempotent.WithObserver(r.rec.observer()),
		idempotent.WithLogger(slog.New(slog.DiscardHandler)),
	}, opts...)
	r.g = idempotent.New(r.store, r.opts...)
	return r
}

// do runs fn under key (advancing the clock by runCost when fn runs).
func (r *rig) do(ctx context.Context, key string, fn func(context.Context) (int, error), opts ...idempotent.CallOption) (int, error) {
	return idempotent.Do(ctx, r.g, "s", key, func(ctx context.Context) (int, error) {
		r.clk.Advance(runCost)
		return fn(ctx)
	}, opts...)
}

// with is r with more guard options (a guard of its own, over the same
// store, clock and recorder).
func (r *rig) with(opts ...idempotent.Option) *rig {
	c := *r
	c.opts = append(append([]idempotent.Option{}, r.opts...), opts...)
	c.g = idempotent.New(c.store, c.opts...)
	return &c
}

func ok42(context.Context) (int, error) { return 42, nil }

func TestObserverOutcomes(t *testing.T) {
	ctx := context.Background()
	const key = "secret-key-material"
	wantRecord := "pay#" + sha256Hex("s\x00"+key)

	t.Run("completed, then replayed", func(t *testing.T) {
		r := newRig()
		if _, err := r.do(ctx, key, ok42); err != nil {
			t.Fatal(err)
		}
		e := r.rec.only(t)
		want := idempotent.Report{
			Name: "pay", Record: wantRecord, Outcome: idempotent.OutcomeCompleted, Attempts: 1,
			LeaseEnd:  newClock().Now().Add(time.Minute),
			StoreTime: 2 * storeCost, HandlerTime: runCost,
		}
		assertEvent(t, e, want)

		if _, err := r.do(ctx, key, ok42); err != nil {
			t.Fatal(err)
		}
		assertEvent(t, r.rec.only(t), idempotent.Report{Name: "pay", Record: wantRecord, Outcome: idempotent.OutcomeReplayed, Attempts: 1, StoreTime: storeCost})
	})

	t.Run("failed and released", func(t *testing.T) {
		r := newRig()
		_, err := r.do(ctx, key, func(context.Context) (int, error) { return 0, errBoom })
		if err != errBoom {
			t.Fatalf("err = %v, want errBoom itself", err)
		}
		e := r.rec.only(t)
		if e.Outcome != idempotent.OutcomeFailed || e.Err != errBoom || e.StoreTime != 2*storeCost || e.HandlerTime != runCost {
			t.Fatalf("event = %+v", e)
		}
		if r.mem.Len() != 0 {
			t.Fatal("key not released")
		}
	})

	t.Run("panicked", func(t *testing.T) {
		r := newRig()
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("panic swallowed")
				}
			}()
			_, _ = r.do(ctx, key, func(context.Context) (int, error) { panic("kaboom") })
		}()
		e := r.rec.only(t)
		if e.Outcome != idempotent.OutcomePanicked || e.Err != nil || e.HandlerTime != runCost || e.StoreTime != 2*storeCost {
			t.Fatalf("event = %+v", e)
		}
	})

	t.Run("panicked, release failed", func(t *testing.T) {
		r := newRig()
		r.store.fail["release"] = errors.New("throttled")
		func() {
			defer func() { _ = recover() }()
			_, _ = r.do(ctx, key, func(context.Context) (int, error) { panic("kaboom") })
		}()
		e := r.rec.only(t)
		if e.Outcome != idempotent.OutcomePanicked || e.Op != "release" || e.Err == nil {
			t.Fatalf("event = %+v", e)
		}
	})

	t.Run("cache replay", func(t *testing.T) {
		r := newRig(idempotent.WithLocalCache(4))
		if _, err := r.do(ctx, key, ok42); err != nil {
			t.Fatal(err)
		}
		r.rec.reset()
		if _, err := r.do(ctx, key, ok42); err != nil {
			t.Fatal(err)
		}
		assertEvent(t, r.rec.only(t), idempotent.Report{Name: "pay", Record: wantRecord, Outcome: idempotent.OutcomeCacheReplayed})
	})

	t.Run("in progress, failed fast", func(t *testing.T) {
		r := newRig()
		holder := holdKey(t, r, key)
		_, err := r.do(ctx, key, ok42)
		if !errors.Is(err, idempotent.ErrInProgress) {
			t.Fatalf("err = %v", err)
		}
		e := r.rec.only(t)
		if e.Outcome != idempotent.OutcomeInProgress || !e.LeaseEnd.Equal(holder.LeaseExpiration) || e.Attempts != 1 || e.Polls != 0 {
			t.Fatalf("event = %+v, want in_progress with the holder's lease end %v", e, holder.LeaseExpiration)
		}
	})

	t.Run("in progress, waited and replayed", func(t *testing.T) {
		r := newRig()
		holder := holdKey(t, r, key)
		// The holder completes as soon as the waiter polls.
		r.store.fail = nil
		poller := &completeOnGet{scriptStore: r.store, holder: holder}
		_, err := idempotent.Do(ctx, idempotent.New(poller, append(r.opts, idempotent.WithWait(time.Minute))...), "s", key, ok42)
		if err != nil {
			t.Fatal(err)
		}
		e := r.rec.only(t)
		if e.Outcome != idempotent.OutcomeWaitReplayed || e.Polls != 1 || e.Attempts != 1 {
			t.Fatalf("event = %+v", e)
		}
	})

	t.Run("in progress, waited and timed out", func(t *testing.T) {
		r := newRig()
		holder := holdKey(t, r, key)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		// The context ends once the acquire has found the key held, so the
		// wait ends at once. (A context already done fails before the
		// store is called.)
		w := r.with(idempotent.WithWait(time.Minute))
		w.g = idempotent.New(&cancelAfterAcquire{Store: r.store, cancel: cancel}, w.opts...)
		_, err := w.do(cctx, key, ok42)
		if !errors.Is(err, idempotent.ErrInProgress) {
			t.Fatalf("err = %v", err)
		}
		e := r.rec.only(t)
		if e.Outcome != idempotent.OutcomeWaitTimedOut || !e.LeaseEnd.Equal(holder.LeaseExpiration) {
			t.Fatalf("event = %+v", e)
		}
	})

	t.Run("payload mismatch", func(t *testing.T) {
		r := newRig()
		if _, err := r.do(ctx, key, ok42, idempotent.WithFingerprint("a")); err != nil {
			t.Fatal(err)
		}
		r.rec.reset()
		_, err := r.do(ctx, key, ok42, idempotent.WithFingerprint("b"))
		if !errors.Is(err, idempotent.ErrPayloadMismatch) {
			t.Fatalf("err = %v", err)
		}
		if e := r.rec.only(t); e.Outcome != idempotent.OutcomePayloadMismatch || e.Record != wantRecord {
			t.Fatalf("event = %+v", e)
		}
	})

	t.Run("payload mismatch in the local cache", func(t *testing.T) {
		r := newRig(idempotent.WithLocalCache(4))
		if _, err := r.do(ctx, key, ok42, idempotent.WithFingerprint("a")); err != nil {
			t.Fatal(err)
		}
		r.rec.reset()
		if _, err := r.do(ctx, key, ok42, idempotent.WithFingerprint("b")); !errors.Is(err, idempotent.ErrPayloadMismatch) {
			t.Fatalf("err = %v", err)
		}
		if e := r.rec.only(t); e.Outcome != idempotent.OutcomePayloadMismatch || e.Attempts != 0 {
			t.Fatalf("event = %+v", e)
		}
	})

	t.Run("missing key runs unguarded", func(t *testing.T) {
		r := newRig()
		if _, err := r.do(ctx, "", ok42); err != nil {
			t.Fatal(err)
		}
		e := r.rec.only(t)
		if e.Outcome != idempotent.OutcomeUnguarded || e.Record != "" || e.HandlerTime != runCost || e.Attempts != 0 {
			t.Fatalf("event = %+v", e)
		}
	})

	t.Run("missing key refused", func(t *testing.T) {
		r := newRig(idempotent.WithRequireKey())
		if _, err := r.do(ctx, "", ok42); !errors.Is(err, idempotent.ErrNoKey) {
			t.Fatalf("err = %v", err)
		}
		if e := r.rec.only(t); e.Outcome != idempotent.OutcomeNoKey || !errors.Is(e.Err, idempotent.ErrNoKey) {
			t.Fatalf("event = %+v", e)
		}
	})

	t.Run("lease takeover, then the late run loses its lease", func(t *testing.T) {
		r := newRig()
		started, finish := make(chan struct{}), make(chan struct{})
		lateErr := make(chan error, 1)
		go func() {
			_, err := r.do(ctx, key, func(context.Context) (int, error) {
				close(started)
				<-finish
				return 1, nil
			})
			lateErr <- err
		}()
		<-started
		r.clk.Advance(2 * time.Minute) // the first run's lease ends
		if _, err := r.do(ctx, key, ok42); err != nil {
			t.Fatal(err)
		}
		e := r.rec.only(t)
		if e.Outcome != idempotent.OutcomeCompleted || !e.Takeover || e.Attempts != 1 {
			t.Fatalf("event = %+v, want a completed takeover", e)
		}
		close(finish)
		if err := <-lateErr; !errors.Is(err, idempotent.ErrLeaseLost) {
			t.Fatalf("late run: err = %v", err)
		}
		if e := r.rec.only(t); e.Outcome != idempotent.OutcomeLeaseLost || e.Takeover {
			t.Fatalf("late run: event = %+v", e)
		}
	})

	t.Run("reacquiring over an expired completed record is no takeover", func(t *testing.T) {
		r := newRig(idempotent.WithTTL(time.Second))
		if _, err := r.do(ctx, key, ok42); err != nil {
			t.Fatal(err)
		}
		r.rec.reset()
		r.clk.Advance(time.Hour)
		if _, err := r.do(ctx, key, ok42); err != nil {
			t.Fatal(err)
		}
		if e := r.rec.only(t); e.Outcome != idempotent.OutcomeCompleted || e.Takeover {
			t.Fatalf("event = %+v", e)
		}
	})

	t.Run("corrupt record", func(t *testing.T) {
		r := newRig()
		if _, _, err := r.mem.Acquire(ctx, idempotent.Record{ID: wantRecord, Status: idempotent.StatusCompleted, Expiration: r.clk.Now().Add(time.Hour), Data: []byte("{not json")}, r.clk.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := r.do(ctx, key, ok42); !errors.Is(err, idempotent.ErrCorruptRecord) {
			t.Fatalf("err = %v", err)
		}
		if e := r.rec.only(t); e.Outcome != idempotent.OutcomeCorruptRecord {
			t.Fatalf("event = %+v", e)
		}
	})

	for _, op := range []string{"acquire", "complete", "release"} {
		t.Run("store error in "+op, func(t *testing.T) {
			r := newRig()
			r.store.fail[op] = errors.New("throttled")
			fn := ok42
			if op == "release" {
				fn = func(context.Context) (int, error) { return 0, errBoom }
			}
			_, err := r.do(ctx, key, fn)
			if se, ok := errors.AsType[*idempotent.StoreError](err); !ok || se.Op != op {
				t.Fatalf("err = %v, want a *StoreError for %s", err, op)
			}
			e := r.rec.only(t)
			if e.Outcome != idempotent.OutcomeStoreError || e.Op != op || e.Err != err {
				t.Fatalf("event = %+v", e)
			}
			if ran := e.HandlerTime > 0; ran != (op != "acquire") {
				t.Fatalf("handler time %v after a failed %s", e.HandlerTime, op)
			}
		})
	}

	t.Run("store error in get while waiting", func(t *testing.T) {
		r := newRig()
		holdKey(t, r, key)
		r.store.fail["get"] = errors.New("throttled")
		_, err := r.with(idempotent.WithWait(time.Minute)).do(ctx, key, ok42)
		if se, ok := errors.AsType[*idempotent.StoreError](err); !ok || se.Op != "get" {
			t.Fatalf("err = %v", err)
		}
		if e := r.rec.only(t); e.Outcome != idempotent.OutcomeStoreError || e.Op != "get" || e.Polls != 1 {
			t.Fatalf("event = %+v", e)
		}
	})
}

func TestObserverWrapKeyError(t *testing.T) {
	rec := &recorder{}
	w := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithObserver(rec.observer())), func(context.Context, order) (int, error) { return 1, nil },
		idempotent.WithKeyFunc(func(order) (string, error) { return "", errBoom }))
	if _, err := w(context.Background(), order{ID: "o"}); err == nil {
		t.Fatal("no error")
	}
	if e := rec.only(t); e.Outcome != idempotent.OutcomeNoKey || e.Err == nil {
		t.Fatalf("event = %+v", e)
	}
}

func TestObserverPhases(t *testing.T) {
	r := newRig()
	var runPhase any
	_, err := r.do(context.Background(), "k", func(ctx context.Context) (int, error) {
		runPhase = ctx.Value(phaseKey{})
		return 0, errBoom
	})
	if err != errBoom {
		t.Fatal(err)
	}
	if runPhase != idempotent.PhaseRun {
		t.Fatalf("the function's context is in phase %v, want run", runPhase)
	}
	want := []string{"start call", "start acquire", "end acquire", "start run", "end run (error)", "start release", "end release", "end call (error)"}
	if got := r.rec.phases; strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("phases = %q\nwant %q", got, want)
	}
}

func TestObserversAddUp(t *testing.T) {
	a, b := &recorder{}, &recorder{}
	store := idempotent.NewMemoryStore()
	opts := []idempotent.Option{idempotent.WithObserver(a.observer()), idempotent.WithObserver(idempotent.Observer{}), idempotent.WithObserver(b.observer())}
	if _, err := idempotent.Do(context.Background(), idempotent.New(store, opts...), "s", "k", ok42); err != nil {
		t.Fatal(err)
	}
	if a.only(t).Outcome != idempotent.OutcomeCompleted || b.only(t).Outcome != idempotent.OutcomeCompleted {
		t.Fatal("each observer must see the call")
	}
	// Guard.Observer merges them for adapters.
	var got []int
	m := idempotent.New(store, append(opts, idempotent.WithObserver(idempotent.Observer{
		Batch: func(_ context.Context, e idempotent.BatchReport) { got = append(got, e.Records) },
	}), idempotent.WithObserver(idempotent.Observer{
		Batch: func(_ context.Context, e idempotent.BatchReport) { got = append(got, -e.Records) },
	}))...).Observer()
	m.Batch(context.Background(), idempotent.BatchReport{Records: 3})
	if len(got) != 2 || got[0] != 3 || got[1] != -3 {
		t.Fatalf("batch reports = %v", got)
	}
	if m.HTTP != nil {
		t.Fatal("no observer watches HTTP: the merged HTTP func must be nil")
	}
	if o := idempotent.New(store).Observer(); o.Call != nil || o.Phase != nil || o.HTTP != nil || o.Batch != nil {
		t.Fatal("a guard without observers must give the zero Observer")
	}
}

func TestReplayHook(t *testing.T) {
	ctx := context.Background()
	var seen []idempotent.Replay
	hook := idempotent.WithReplayHook(func(_ context.Context, r idempotent.Replay, v receipt) receipt {
		seen = append(seen, r)
		v.OrderID += "+replayed"
		return v
	})
	h := &handler{}
	store := idempotent.NewMemoryStore()
	w := idempotent.Wrap(idempotent.New(store, idempotent.WithName("fn"), idempotent.WithLocalCache(4)), h.handle, idempotent.WithKeyPath("id"), hook)
	first, err := w(ctx, order{ID: "o-1"})
	if err != nil || first.OrderID != "o-1" {
		t.Fatalf("first = %+v, %v: a new run is no replay", first, err)
	}
	again, err := w(ctx, order{ID: "o-1"}) // from the local cache
	if err != nil || again.OrderID != "o-1+replayed" || again.Run != 1 {
		t.Fatalf("replay = %+v, %v", again, err)
	}
	fresh := idempotent.Wrap(idempotent.New(store, idempotent.WithName("fn")), h.handle, idempotent.WithKeyPath("id"), hook)
	again, err = fresh(ctx, order{ID: "o-1"}) // from the store
	if err != nil || again.OrderID != "o-1+replayed" {
		t.Fatalf("replay = %+v, %v", again, err)
	}
	if len(seen) != 2 || seen[0].Outcome != idempotent.OutcomeCacheReplayed || seen[1].Outcome != idempotent.OutcomeReplayed || seen[0].Name != "fn" || !strings.HasPrefix(seen[0].Record, "fn#") {
		t.Fatalf("hook saw %+v", seen)
	}
	// The stored result is untouched.
	again, err = fresh(ctx, order{ID: "o-1"})
	if err != nil || again.OrderID != "o-1+replayed" {
		t.Fatalf("second store replay = %+v, %v: the hook must see the stored result, not its own output", again, err)
	}

	t.Run("any", func(t *testing.T) {
		n := 0
		anyHook := idempotent.WithReplayHook(func(_ context.Context, _ idempotent.Replay, v any) any { n++; return v })
		for range 2 {
			if v, err := idempotent.Do(ctx, idempotent.New(store), "s", "k", ok42, anyHook); err != nil || v != 42 {
				t.Fatalf("Do = %v, %v", v, err)
			}
		}
		if n != 1 {
			t.Fatalf("hook called %d times, want 1 (the replay)", n)
		}
	})

	t.Run("wrong type", func(t *testing.T) {
		bad := idempotent.WithReplayHook(func(_ context.Context, _ idempotent.Replay, v string) string { return v })
		ran := false
		_, err := idempotent.Do(ctx, idempotent.New(store), "s", "k2", func(context.Context) (int, error) { ran = true; return 1, nil }, bad)
		if _, ok := errors.AsType[*idempotent.ConfigError](err); !ok || ran {
			t.Fatalf("Do with a string hook for an int result: err = %v, ran = %v; want a *ConfigError and no run", err, ran)
		}
		w := idempotent.Wrap(idempotent.New(store), h.handle, idempotent.WithKeyPath("id"), bad)
		if _, err := w(ctx, order{ID: "o-9"}); !errors.As(err, new(*idempotent.ConfigError)) {
			t.Fatalf("Wrap with a string hook: err = %v", err)
		}
	})

	t.Run("any hook returning another type fails closed", func(t *testing.T) {
		bad := idempotent.WithReplayHook(func(_ context.Context, _ idempotent.Replay, _ any) any { return "nope" })
		if _, err := idempotent.Do(ctx, idempotent.New(store), "s", "k", ok42, bad); !errors.As(err, new(*idempotent.ConfigError)) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestEventLogs(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r := newRig(idempotent.WithLogger(logger))
	const key = "customer-42-secret"
	started, finish := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = r.do(context.Background(), key, func(context.Context) (int, error) {
			close(started)
			<-finish
			return 1, nil
		})
	}()
	<-started
	r.clk.Advance(2 * time.Minute)
	if _, err := r.do(context.Background(), key, ok42); err != nil { // a takeover: warn
		t.Fatal(err)
	}
	if _, err := r.do(context.Background(), key, ok42); err != nil { // a replay: debug, not logged
		t.Fatal(err)
	}
	close(finish)
	<-done // lease lost: warn

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log records, want 2 (takeover, lease lost):\n%s", len(lines), buf.String())
	}
	if strings.Contains(buf.String(), key) {
		t.Fatal("the raw key is in the logs")
	}
	var takeover, lost map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &takeover); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &lost); err != nil {
		t.Fatal(err)
	}
	wantRecord := "pay#" + sha256Hex("s\x00"+key)
	for _, c := range []struct {
		rec     map[string]any
		field   string
		want    any
		present bool
	}{
		{takeover, "level", "WARN", true},
		{takeover, "outcome", "completed", true},
		{takeover, "takeover", true, true},
		{takeover, "record", wantRecord, true},
		{takeover, "name", "pay", true},
		{takeover, "attempt", 1.0, true},
		{takeover, "lease_end", nil, true},
		{takeover, "store_ms", 10.0, true},
		{takeover, "handler_ms", 100.0, true},
		{lost, "level", "WARN", true},
		{lost, "outcome", "lease_lost", true},
		{lost, "record", wantRecord, true},
		{lost, "error", nil, true},
	} {
		v, ok := c.rec[c.field]
		if !ok {
			t.Errorf("field %q missing in %v", c.field, c.rec)
			continue
		}
		if c.want != nil && v != c.want {
			t.Errorf("field %q = %v, want %v", c.field, v, c.want)
		}
	}
}

// holdKey makes another run hold key in r's store, its lease live, and
// returns its record.
func holdKey(t *testing.T, r *rig, key string) idempotent.Record {
	t.Helper()
	now := r.clk.Now()
	rec := idempotent.Record{
		ID: "pay#" + sha256Hex("s\x00"+key), Status: idempotent.StatusInProgress,
		Expiration:      time.Unix(now.Add(time.Hour).Unix(), 0),
		LeaseExpiration: time.UnixMilli(now.Add(30 * time.Second).UnixMilli()),
		Owner:           "someone-else",
	}
	if _, ok, err := r.mem.Acquire(context.Background(), rec, now); err != nil || !ok {
		t.Fatalf("holdKey: %v, %v", ok, err)
	}
	return rec
}

// completeOnGet completes the holder's record when the waiter polls.
type completeOnGet struct {
	*scriptStore
	holder idempotent.Record
}

func (s *completeOnGet) Get(ctx context.Context, key string) (*idempotent.Record, error) {
	done := s.holder
	done.Status, done.Data = idempotent.StatusCompleted, []byte("7")
	if err := s.Store.Complete(ctx, done); err != nil {
		return nil, err
	}
	return s.scriptStore.Get(ctx, key)
}

func assertEvent(t *testing.T, got, want idempotent.Report) {
	t.Helper()
	if !got.LeaseEnd.Equal(want.LeaseEnd) {
		t.Errorf("LeaseEnd = %v, want %v", got.LeaseEnd, want.LeaseEnd)
	}
	got.LeaseEnd, want.LeaseEnd = time.Time{}, time.Time{}
	if got != want {
		t.Fatalf("event =\n%+v\nwant\n%+v", got, want)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestObserverUnguardedPanic(t *testing.T) {
	r := newRig()
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic swallowed")
			}
		}()
		_, _ = r.do(context.Background(), "", func(context.Context) (int, error) { panic("x") })
	}()
	if e := r.rec.only(t); e.Outcome != idempotent.OutcomePanicked || e.Record != "" || e.HandlerTime != runCost {
		t.Fatalf("event = %+v", e)
	}
}

// cancelAfterAcquire cancels a context once Acquire has answered.
type cancelAfterAcquire struct {
	idempotent.Store
	cancel context.CancelFunc
}

func (s *cancelAfterAcquire) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	defer s.cancel()
	return s.Store.Acquire(ctx, rec, now)
}
