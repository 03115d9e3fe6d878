package idempotent_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// handler counts its runs and returns a receipt carrying the run number.
type handler struct {
	runs  atomic.Int64
	block chan struct{} // when set, each run waits for it to close
	start chan struct{} // when set, each run signals it started
	err   error
}

func (h *handler) handle(ctx context.Context, o order) (receipt, error) {
	n := h.runs.Add(1)
	if h.start != nil {
		h.start <- struct{}{}
	}
	if h.block != nil {
		<-h.block
	}
	if h.err != nil {
		return receipt{}, h.err
	}
	return receipt{OrderID: o.ID, Run: n}, nil
}

func TestWrapNewThenReplay(t *testing.T) {
	clk := newClock()
	store := newCounting(idempotent.NewMemoryStore())
	h := &handler{}
	wrapped := idempotent.Wrap(idempotent.New(store, idempotent.WithClock(clk.Now)), h.handle, idempotent.WithKeyPath("id"))

	first, err := wrapped(context.Background(), order{ID: "o-1", Amount: 5})
	if err != nil {
		t.Fatal(err)
	}
	if got := store.calls(); got != 2 || store.acquire.Load() != 1 || store.complete.Load() != 1 {
		t.Fatalf("new key: %d store calls (acquire %d, complete %d), want 2 = acquire + complete", got, store.acquire.Load(), store.complete.Load())
	}
	store.reset()
	second, err := wrapped(context.Background(), order{ID: "o-1", Amount: 5})
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Fatalf("replay = %+v, want the first result %+v", second, first)
	}
	if h.runs.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", h.runs.Load())
	}
	if got := store.calls(); got != 1 {
		t.Fatalf("replay: %d store calls, want 1 (the conditional write that returns the record)", got)
	}
	// Another key runs.
	if _, err := wrapped(context.Background(), order{ID: "o-2"}); err != nil {
		t.Fatal(err)
	}
	if h.runs.Load() != 2 {
		t.Fatalf("second key: handler ran %d times in all, want 2", h.runs.Load())
	}
}

func TestLocalCacheReplayMakesNoStoreCall(t *testing.T) {
	store := newCounting(idempotent.NewMemoryStore())
	h := &handler{}
	wrapped := idempotent.Wrap(idempotent.New(store, idempotent.WithLocalCache(16)), h.handle, idempotent.WithKeyPath("id"))
	first, err := wrapped(context.Background(), order{ID: "o-1"})
	if err != nil {
		t.Fatal(err)
	}
	store.reset()
	for range 3 {
		got, err := wrapped(context.Background(), order{ID: "o-1"})
		if err != nil || got != first {
			t.Fatalf("cached replay = %+v, %v; want %+v", got, err, first)
		}
	}
	if store.calls() != 0 {
		t.Fatalf("local-cache replay made %d store calls, want 0", store.calls())
	}
	// A replay from the store also fills the cache of another container.
	other := idempotent.Wrap(idempotent.New(store, idempotent.WithLocalCache(16)), h.handle, idempotent.WithKeyPath("id"))
	if _, err := other(context.Background(), order{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	store.reset()
	if _, err := other(context.Background(), order{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	if store.calls() != 0 || h.runs.Load() != 1 {
		t.Fatalf("second container: %d store calls, %d runs; want 0 and 1", store.calls(), h.runs.Load())
	}
}

func TestLocalCacheNeverHoldsInProgressOrExpired(t *testing.T) {
	clk := newClock()
	store := newCounting(idempotent.NewMemoryStore())
	h := &handler{block: make(chan struct{}), start: make(chan struct{}, 1)}
	opts := []any{idempotent.WithKeyPath("id"), idempotent.WithLocalCache(16), idempotent.WithClock(clk.Now), idempotent.WithTTL(time.Minute)}
	wrapped := wrapWith(store, h.handle, opts...)
	other := wrapWith(elsewhere(store), h.handle, opts...) // another container

	done := make(chan error, 1)
	go func() { _, err := other(context.Background(), order{ID: "o-1"}); done <- err }()
	<-h.start
	// While another container runs it, a duplicate here must reach the store.
	store.reset()
	_, err := wrapped(context.Background(), order{ID: "o-1"})
	if !errors.Is(err, idempotent.ErrInProgress) || store.acquire.Load() != 1 {
		t.Fatalf("duplicate while in progress: err %v, acquire calls %d; want ErrInProgress from the store", err, store.acquire.Load())
	}
	close(h.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// After the TTL the cached record is dead: the handler runs again.
	clk.Advance(time.Minute)
	h.block, h.start = nil, nil
	if _, err := wrapped(context.Background(), order{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	if h.runs.Load() != 2 {
		t.Fatalf("after TTL: %d runs, want 2", h.runs.Load())
	}
}

func TestInProgressDuplicate(t *testing.T) {
	clk := newClock()
	store := idempotent.NewMemoryStore()
	h := &handler{block: make(chan struct{}), start: make(chan struct{}, 1)}
	wrapped := idempotent.Wrap(idempotent.New(store, idempotent.WithClock(clk.Now), idempotent.WithLease(30*time.Second)), h.handle, idempotent.WithKeyPath("id"))
	other := idempotent.Wrap(idempotent.New(elsewhere(store), idempotent.WithClock(clk.Now), idempotent.WithLease(30*time.Second)), h.handle, idempotent.WithKeyPath("id")) // another container

	done := make(chan error, 1)
	go func() { _, err := other(context.Background(), order{ID: "o-1"}); done <- err }()
	<-h.start
	_, err := wrapped(context.Background(), order{ID: "o-1"})
	var ip *idempotent.InProgressError
	if !errors.Is(err, idempotent.ErrInProgress) || !errors.As(err, &ip) {
		t.Fatalf("err = %v, want an *InProgressError", err)
	}
	if want := clk.Now().Add(30 * time.Second); !ip.LeaseExpiration.Equal(want) {
		t.Fatalf("lease ends %v, want %v", ip.LeaseExpiration, want)
	}
	if got := ip.RetryAfter(clk.Now().Add(500 * time.Millisecond)); got != 30*time.Second {
		t.Fatalf("RetryAfter = %v, want 30s (29.5 s rounded up)", got)
	}
	close(h.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if h.runs.Load() != 1 {
		t.Fatalf("runs = %d, want 1", h.runs.Load())
	}
}

func TestLeaseDefaultsToContextDeadline(t *testing.T) {
	clk := newClock()
	store := idempotent.NewMemoryStore()
	var lease time.Time
	fn := func(ctx context.Context) (int, error) {
		key, _ := idempotent.RecordIDFromContext(ctx)
		rec, err := store.Get(ctx, key)
		if err != nil || rec == nil {
			return 0, fmt.Errorf("record during run: %v %v", rec, err)
		}
		lease = rec.LeaseExpiration
		return 1, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := idempotent.Do(ctx, idempotent.New(store, idempotent.WithClock(clk.Now)), "step", "k", fn); err != nil {
		t.Fatal(err)
	}
	// time.Until(deadline) is a little under an hour by the time it is read.
	if d := lease.Sub(clk.Now()); d > time.Hour || d < 59*time.Minute {
		t.Fatalf("lease with a 1 h deadline = now + %v, want about 1 h", d)
	}
	if _, err := idempotent.Do(context.Background(), idempotent.New(store, idempotent.WithClock(clk.Now)), "step", "k2", fn); err != nil {
		t.Fatal(err)
	}
	if d := lease.Sub(clk.Now()); d != idempotent.DefaultLease {
		t.Fatalf("lease without deadline = now + %v, want %v", d, idempotent.DefaultLease)
	}
}

func TestLeaseTakeoverAndLateCompletion(t *testing.T) {
	clk := newClock()
	store := idempotent.NewMemoryStore()
	slow := &handler{block: make(chan struct{}), start: make(chan struct{}, 1)}
	fast := &handler{}
	opts := []any{idempotent.WithKeyPath("id"), idempotent.WithClock(clk.Now), idempotent.WithLease(10 * time.Second)}
	slowWrapped := wrapWith(store, slow.handle, opts...)
	fastWrapped := wrapWith(store, fast.handle, opts...)

	done := make(chan error, 1)
	go func() { _, err := slowWrapped(context.Background(), order{ID: "o-1"}); done <- err }()
	<-slow.start
	clk.Advance(10 * time.Second) // the slow run's lease ends now (<= now)
	winner, err := fastWrapped(context.Background(), order{ID: "o-1"})
	if err != nil {
		t.Fatalf("takeover after lease end: %v", err)
	}
	close(slow.block)
	if err := <-done; !errors.Is(err, idempotent.ErrLeaseLost) {
		t.Fatalf("late completion: err = %v, want ErrLeaseLost", err)
	}
	// Nothing was overwritten: a retry replays the winner's result.
	got, err := fastWrapped(context.Background(), order{ID: "o-1"})
	if err != nil || got != winner {
		t.Fatalf("replay after takeover = %+v, %v; want the winner's %+v", got, err, winner)
	}
}

func TestRecordExpiry(t *testing.T) {
	clk := newClock()
	h := &handler{}
	wrapped := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithClock(clk.Now), idempotent.WithTTL(time.Hour)), h.handle, idempotent.WithKeyPath("id"))
	for _, step := range []struct {
		name    string
		advance time.Duration
		runs    int64
	}{
		{"first", 0, 1},
		{"inside TTL", time.Hour - time.Second, 1},
		{"at expiration", time.Second, 2},
	} {
		t.Run(step.name, func(t *testing.T) {
			clk.Advance(step.advance)
			if _, err := wrapped(context.Background(), order{ID: "o-1"}); err != nil {
				t.Fatal(err)
			}
			if h.runs.Load() != step.runs {
				t.Fatalf("runs = %d, want %d", h.runs.Load(), step.runs)
			}
		})
	}
}

func TestPayloadMismatch(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("local cache %v", cached), func(t *testing.T) {
			h := &handler{}
			opts := []any{idempotent.WithKeyPath("id"), idempotent.WithPayloadPath("amount")}
			if cached {
				opts = append(opts, idempotent.WithLocalCache(8))
			}
			wrapped := wrapWith(idempotent.NewMemoryStore(), h.handle, opts...)
			if _, err := wrapped(context.Background(), order{ID: "o-1", Amount: 5}); err != nil {
				t.Fatal(err)
			}
			_, err := wrapped(context.Background(), order{ID: "o-1", Amount: 6})
			if !errors.Is(err, idempotent.ErrPayloadMismatch) {
				t.Fatalf("err = %v, want ErrPayloadMismatch", err)
			}
			if _, err := wrapped(context.Background(), order{ID: "o-1", Amount: 5}); err != nil {
				t.Fatalf("same payload after a mismatch: %v", err)
			}
			if h.runs.Load() != 1 {
				t.Fatalf("runs = %d, want 1", h.runs.Load())
			}
		})
	}
}

func TestErrorReleasesKey(t *testing.T) {
	store := newCounting(idempotent.NewMemoryStore())
	h := &handler{err: errBoom}
	wrapped := idempotent.Wrap(idempotent.New(store), h.handle, idempotent.WithKeyPath("id"))
	if _, err := wrapped(context.Background(), order{ID: "o-1"}); !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want the handler's error", err)
	}
	if store.release.Load() != 1 || store.complete.Load() != 0 {
		t.Fatalf("release %d, complete %d; want 1 and 0", store.release.Load(), store.complete.Load())
	}
	h.err = nil
	if _, err := wrapped(context.Background(), order{ID: "o-1"}); err != nil {
		t.Fatalf("retry after error: %v", err)
	}
	if h.runs.Load() != 2 {
		t.Fatalf("runs = %d, want 2 (the retry runs again)", h.runs.Load())
	}
}

func TestReleaseFailureIsJoined(t *testing.T) {
	store := newCounting(idempotent.NewMemoryStore())
	storeDown := errors.New("connection reset")
	fn := func(context.Context) (int, error) {
		store.fail.Store(&storeDown)
		return 0, errBoom
	}
	_, err := idempotent.Do(context.Background(), idempotent.New(store), "step", "k", fn)
	var se *idempotent.StoreError
	if !errors.Is(err, errBoom) || !errors.As(err, &se) || se.Op != "release" || !errors.Is(err, storeDown) {
		t.Fatalf("err = %v, want the handler's error joined with a release *StoreError", err)
	}
}

func TestPanicReleasesAndRepanics(t *testing.T) {
	store := newCounting(idempotent.NewMemoryStore())
	fn := func(context.Context) (int, error) { panic("kaboom") }
	func() {
		defer func() {
			if p := recover(); p != "kaboom" {
				t.Fatalf("recovered %v, want the handler's panic value", p)
			}
		}()
		_, _ = idempotent.Do(context.Background(), idempotent.New(store), "step", "k", fn)
		t.Fatal("Do returned after a panic")
	}()
	if store.release.Load() != 1 {
		t.Fatalf("release calls = %d, want 1", store.release.Load())
	}
	got, err := idempotent.Do(context.Background(), idempotent.New(store), "step", "k", func(context.Context) (int, error) { return 7, nil })
	if err != nil || got != 7 {
		t.Fatalf("retry after panic = %d, %v; want 7 (runs again)", got, err)
	}
}

func TestMissingKey(t *testing.T) {
	tests := []struct {
		name    string
		opts    []any
		event   order
		wantErr error
		runs    int64
	}{
		{"path yields empty string: unguarded", []any{idempotent.WithKeyPath("id")}, order{}, nil, 2},
		{"path yields nothing: unguarded", []any{idempotent.WithKeyPath("missing")}, order{ID: "x"}, nil, 2},
		{"required", []any{idempotent.WithKeyPath("id"), idempotent.WithRequireKey()}, order{}, idempotent.ErrNoKey, 0},
		{"key func empty, required", []any{idempotent.WithKeyFunc(func(o order) (string, error) { return o.ID, nil }), idempotent.WithRequireKey()}, order{}, idempotent.ErrNoKey, 0},
		{"key func error", []any{idempotent.WithKeyFunc(func(order) (string, error) { return "", errBoom })}, order{ID: "x"}, idempotent.ErrNoKey, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := idempotent.NewMemoryStore()
			h := &handler{}
			wrapped := wrapWith(store, h.handle, tt.opts...)
			for range 2 {
				_, err := wrapped(context.Background(), tt.event)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			}
			if h.runs.Load() != tt.runs {
				t.Fatalf("runs = %d, want %d", h.runs.Load(), tt.runs)
			}
			if store.Len() != 0 {
				t.Fatalf("a missing key left %d records; it must never be hashed into a shared record", store.Len())
			}
		})
	}
}

func TestKeyMaterial(t *testing.T) {
	type ev struct {
		ID   any    `json:"id"`
		Note string `json:"note"`
	}
	h := func(_ context.Context, e ev) (string, error) { return e.Note, nil }
	tests := []struct {
		name       string
		opts       []any
		a, b       ev
		sameRecord bool
	}{
		{"whole event differs", nil, ev{"1", "a"}, ev{"1", "b"}, false},
		{"whole event equal", nil, ev{"1", "a"}, ev{"1", "a"}, true},
		{"path equal", []any{idempotent.WithKeyPath("id")}, ev{"1", "a"}, ev{"1", "b"}, true},
		{"string vs number", []any{idempotent.WithKeyPath("id")}, ev{"1", "a"}, ev{1, "b"}, false},
		{"large integers keep precision", []any{idempotent.WithKeyPath("id")}, ev{int64(9007199254740993), "a"}, ev{int64(9007199254740992), "b"}, false},
		{"multi-select", []any{idempotent.WithKeyPath("[id, note]")}, ev{"1", "a"}, ev{"1", "b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wrapped := wrapWith(idempotent.NewMemoryStore(), h, tt.opts...)
			first, err := wrapped(context.Background(), tt.a)
			if err != nil {
				t.Fatal(err)
			}
			second, err := wrapped(context.Background(), tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if (first == second) != tt.sameRecord {
				t.Fatalf("first %q second %q: same record = %v, want %v", first, second, first == second, tt.sameRecord)
			}
		})
	}
}

func TestStoreFailureFailsClosed(t *testing.T) {
	down := errors.New("dial tcp: connection refused")
	for _, op := range []string{"acquire", "complete"} {
		t.Run(op, func(t *testing.T) {
			store := newCounting(idempotent.NewMemoryStore())
			h := &handler{}
			fn := func(ctx context.Context, o order) (receipt, error) {
				if op == "complete" {
					store.fail.Store(&down)
				}
				return h.handle(ctx, o)
			}
			if op == "acquire" {
				store.fail.Store(&down)
			}
			_, err := idempotent.Wrap(idempotent.New(store), fn, idempotent.WithKeyPath("id"))(context.Background(), order{ID: "o-1"})
			var se *idempotent.StoreError
			if !errors.As(err, &se) || se.Op != op || !errors.Is(err, down) {
				t.Fatalf("err = %v, want *StoreError{Op: %q}", err, op)
			}
			if want := map[string]int64{"acquire": 0, "complete": 1}[op]; h.runs.Load() != want {
				t.Fatalf("runs = %d, want %d", h.runs.Load(), want)
			}
		})
	}
}

func TestCorruptStoredResult(t *testing.T) {
	store := idempotent.NewMemoryStore()
	if _, err := idempotent.Do(context.Background(), idempotent.New(store), "step", "k", func(context.Context) (string, error) { return "text", nil }); err != nil {
		t.Fatal(err)
	}
	ran := false
	_, err := idempotent.Do(context.Background(), idempotent.New(store), "step", "k", func(context.Context) (int, error) { ran = true; return 1, nil })
	if !errors.Is(err, idempotent.ErrCorruptRecord) || ran {
		t.Fatalf("err = %v, ran = %v; want ErrCorruptRecord without running", err, ran)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		opts []any
	}{
		{"bad key path", []any{idempotent.WithKeyPath("a[")}},
		{"empty key path", []any{idempotent.WithKeyPath("")}},
		{"bad payload path", []any{idempotent.WithPayloadPath("{")}},
		{"key func of another type", []any{idempotent.WithKeyFunc(func(string) (string, error) { return "", nil })}},
		{"key path and key func", []any{idempotent.WithKeyPath("id"), idempotent.WithKeyFunc(func(order) (string, error) { return "", nil })}},
		{"short TTL", []any{idempotent.WithTTL(time.Millisecond)}},
		{"zero lease", []any{idempotent.WithLease(0)}},
		{"zero cache", []any{idempotent.WithLocalCache(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &handler{}
			_, err := wrapWith(idempotent.NewMemoryStore(), h.handle, tt.opts...)(context.Background(), order{ID: "o-1"})
			var ce *idempotent.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *ConfigError", err)
			}
			if h.runs.Load() != 0 {
				t.Fatal("handler ran despite a configuration error")
			}
		})
	}
}

func TestDisabledByEnvironment(t *testing.T) {
	t.Setenv(idempotent.DisabledEnv, "true")
	h := &handler{}
	wrapped := idempotent.Wrap(idempotent.New(nil), h.handle, idempotent.WithKeyPath("id"))
	for range 2 {
		if _, err := wrapped(context.Background(), order{ID: "o-1"}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for range 2 {
		if _, err := idempotent.Do(context.Background(), idempotent.New(nil), "step", "k", func(context.Context) (int, error) { n++; return n, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if h.runs.Load() != 2 || n != 2 {
		t.Fatalf("runs = %d and %d, want 2 and 2 (bypassed)", h.runs.Load(), n)
	}
}

func TestRecordIDFromContextAndNamespace(t *testing.T) {
	t.Setenv(idempotent.FunctionNameEnv, "payments")
	var keys []string
	fn := func(ctx context.Context) (int, error) {
		k, ok := idempotent.RecordIDFromContext(ctx)
		if !ok {
			return 0, errors.New("no key in context")
		}
		keys = append(keys, k)
		return 1, nil
	}
	store := idempotent.NewMemoryStore()
	if _, err := idempotent.Do(context.Background(), idempotent.New(store), "step", "k", fn); err != nil {
		t.Fatal(err)
	}
	if _, err := idempotent.Do(context.Background(), idempotent.New(store, idempotent.WithName("refunds")), "step", "k", fn); err != nil {
		t.Fatal(err)
	}
	// sha256("step" + NUL + "k"): the step scopes the key
	const h = "a50fb5886e31a1702e18594ab41eafb4f49e5c4393dd1d21c55d064ccc052be4"
	if len(keys) != 2 || keys[0] != "payments#"+h || keys[1] != "refunds#"+h {
		t.Fatalf("record keys = %q, want payments#<sha256> and refunds#<sha256>", keys)
	}
	if _, ok := idempotent.RecordIDFromContext(context.Background()); ok {
		t.Fatal("RecordIDFromContext outside a guarded run reported a key")
	}
}

// polling is a Store that reports the first Get: the sign that a duplicate
// is waiting (polling) rather than failing at once.
type polling struct {
	idempotent.Store
	once   sync.Once
	polled chan struct{}
	gets   atomic.Int64
}

func newPolling() *polling {
	return &polling{Store: idempotent.NewMemoryStore(), polled: make(chan struct{})}
}

func (p *polling) Get(ctx context.Context, key string) (*idempotent.Record, error) {
	p.gets.Add(1)
	p.once.Do(func() { close(p.polled) })
	return p.Store.Get(ctx, key)
}

func TestWaitForRunningDuplicate(t *testing.T) {
	store := newPolling()
	started := make(chan struct{})
	release := make(chan struct{})
	var runs atomic.Int64
	fn := func(context.Context) (int64, error) {
		n := runs.Add(1)
		if n == 1 {
			close(started)
			<-release
		}
		return n, nil
	}
	first := make(chan int64, 1)
	go func() {
		v, _ := idempotent.Do(context.Background(), idempotent.New(elsewhere(store)), "step", "k", fn)
		first <- v
	}()
	<-started
	type answer struct {
		v   int64
		err error
	}
	waiter := make(chan answer, 1)
	go func() {
		v, err := idempotent.Do(context.Background(), idempotent.New(store, idempotent.WithWait(time.Minute)), "step", "k", fn)
		waiter <- answer{v, err}
	}()
	// The first run finishes only once the duplicate is polling, so the
	// duplicate's answer can only come from waiting.
	select {
	case <-store.polled:
	case a := <-waiter:
		t.Fatalf("the duplicate answered %d, %v without waiting", a.v, a.err)
	}
	close(release)
	a := <-waiter
	if a.err != nil {
		t.Fatalf("waiting duplicate: %v", a.err)
	}
	if v := <-first; a.v != v || runs.Load() != 1 {
		t.Fatalf("waiter got %d, first %d, runs %d; want the first result and one run", a.v, v, runs.Load())
	}
}

func TestWaitGivesUp(t *testing.T) {
	store := newPolling()
	hold := make(chan struct{})
	started := make(chan struct{})
	go func() {
		_, _ = idempotent.Do(context.Background(), idempotent.New(elsewhere(store)), "step", "k", func(context.Context) (int, error) { close(started); <-hold; return 1, nil })
	}()
	<-started
	defer close(hold)
	_, err := idempotent.Do(context.Background(), idempotent.New(store, idempotent.WithWait(60*time.Millisecond)), "step", "k", func(context.Context) (int, error) { return 2, nil })
	if !errors.Is(err, idempotent.ErrInProgress) {
		t.Fatalf("err = %v, want ErrInProgress after the wait budget", err)
	}
	if store.gets.Load() == 0 {
		t.Fatal("the duplicate gave up without polling")
	}
	// A context that ends during the wait (here, as soon as the acquire
	// has found the key held) ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = idempotent.Do(ctx, idempotent.New(&cancelAfterAcquire{Store: store, cancel: cancel}, idempotent.WithWait(time.Hour)), "step", "k", func(context.Context) (int, error) { return 2, nil })
	if !errors.Is(err, idempotent.ErrInProgress) {
		t.Fatalf("cancelled wait: err = %v, want ErrInProgress", err)
	}
}

func TestWaitThenRunAfterRelease(t *testing.T) {
	store := newPolling()
	started := make(chan struct{})
	fail := make(chan struct{})
	go func() {
		_, _ = idempotent.Do(context.Background(), idempotent.New(elsewhere(store)), "step", "k", func(context.Context) (int, error) { close(started); <-fail; return 0, errBoom })
	}()
	<-started
	res := make(chan int, 1)
	go func() {
		v, err := idempotent.Do(context.Background(), idempotent.New(store, idempotent.WithWait(time.Minute)), "step", "k", func(context.Context) (int, error) { return 42, nil })
		if err != nil {
			v = -1
		}
		res <- v
	}()
	select {
	case <-store.polled:
	case v := <-res:
		t.Fatalf("the duplicate answered %d without waiting", v)
	}
	close(fail)
	if v := <-res; v != 42 {
		t.Fatalf("waiter after release = %d, want 42 (it runs itself)", v)
	}
}

// 32 containers, each with its own wrapper and local cache, one key: the
// handler runs once and every caller gets the same result.
func TestConcurrentContainersOneKey(t *testing.T) {
	store := idempotent.NewMemoryStore()
	var runs atomic.Int64
	h := func(_ context.Context, o order) (receipt, error) {
		return receipt{OrderID: o.ID, Run: runs.Add(1)}, nil
	}
	const n = 48
	results := make([]receipt, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	startLine := make(chan struct{})
	for i := range n {
		wrapped := idempotent.Wrap(idempotent.New(store, idempotent.WithLocalCache(4), idempotent.WithWait(time.Minute)), h, idempotent.WithKeyPath("id"))
		wg.Go(func() {
			<-startLine
			results[i], errs[i] = wrapped(context.Background(), order{ID: "o-1"})
		})
	}
	close(startLine)
	wg.Wait()
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", runs.Load())
	}
	for i := range n {
		if errs[i] != nil || results[i] != results[0] {
			t.Fatalf("caller %d: %+v, %v; want %+v", i, results[i], errs[i], results[0])
		}
	}
}

func TestRawResultsAreStoredAsIs(t *testing.T) {
	store := idempotent.NewMemoryStore()
	want := []byte{0, 1, 2, 0xff, '"'}
	fn := func(ctx context.Context) ([]byte, error) { return want, nil }
	var key string
	if _, err := idempotent.Do(context.Background(), idempotent.New(store), "step", "k", func(ctx context.Context) ([]byte, error) {
		key, _ = idempotent.RecordIDFromContext(ctx)
		return fn(ctx)
	}); err != nil {
		t.Fatal(err)
	}
	rec, err := store.Get(context.Background(), key)
	if err != nil || rec == nil || string(rec.Data) != string(want) {
		t.Fatalf("stored data = %v, %v; want the raw bytes %v", rec, err, want)
	}
	got, err := idempotent.Do(context.Background(), idempotent.New(store, idempotent.WithLocalCache(2)), "step", "k", fn)
	if err != nil || string(got) != string(want) {
		t.Fatalf("replay = %v, %v", got, err)
	}
	got[0] = 'X' // the caller owns its copy
	again, _ := idempotent.Do(context.Background(), idempotent.New(store), "step", "k", fn)
	if again[0] != 0 {
		t.Fatal("a replayed slice aliases the stored record")
	}
}

func TestNewReportsOptionErrors(t *testing.T) {
	if err := idempotent.New(idempotent.NewMemoryStore(), idempotent.WithTTL(time.Hour), idempotent.WithLocalCache(4)).Err(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	g := idempotent.New(idempotent.NewMemoryStore(), idempotent.WithTTL(0), idempotent.WithName(""))
	var ce *idempotent.ConfigError
	if !errors.As(g.Err(), &ce) || ce.Option != "WithTTL" {
		t.Fatalf("err = %v, want a *ConfigError for WithTTL first", g.Err())
	}
	ran := false
	_, err := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) (int, error) { ran = true; return 1, nil })
	if !errors.As(err, &ce) || ran {
		t.Fatalf("Do through a misconfigured guard: ran %v, err %v; want a *ConfigError without running", ran, err)
	}
	var nilGuard *idempotent.Guard
	if _, err := idempotent.Do(context.Background(), nilGuard, "step", "k", func(context.Context) (int, error) { ran = true; return 1, nil }); !errors.As(err, &ce) || ran {
		t.Fatalf("Do through a nil guard: ran %v, err %v; want a *ConfigError without running", ran, err)
	}
}

// A caller that reuses its result buffer after the run must not change what
// the local cache replays (found in review).
func TestCachedRawResultIsACopy(t *testing.T) {
	g := idempotent.New(idempotent.NewMemoryStore(), idempotent.WithLocalCache(4))
	buf := []byte("paid-100")
	if _, err := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) ([]byte, error) { return buf, nil }); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXX")
	got, err := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) ([]byte, error) { return nil, errBoom })
	if err != nil || string(got) != "paid-100" {
		t.Fatalf("cached replay = %q, %v; want the stored %q", got, err, "paid-100")
	}
}

// vanishing answers the first n conflicts as "the record vanished before it
// could be read" (existing == nil), as a store does when a record is deleted
// or expires between its conditional write and its read.
type vanishing struct {
	idempotent.Store
	n, acquires int
}

func (v *vanishing) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	v.acquires++
	if v.acquires <= v.n {
		return nil, false, nil
	}
	return v.Store.Acquire(ctx, rec, now)
}

// Contract §3.4: a record that vanished meanwhile sends the call back to the
// acquire, at most twice; then it fails closed without running.
func TestVanishedRecordRetriesAcquireAtMostTwice(t *testing.T) {
	tests := []struct {
		name     string
		vanish   int
		acquires int
		runs     int
		storeErr bool
	}{
		{"vanishes once", 1, 2, 1, false},
		{"vanishes twice", 2, 3, 1, false},
		{"keeps vanishing", 100, 3, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &vanishing{Store: idempotent.NewMemoryStore(), n: tt.vanish}
			runs := 0
			_, err := idempotent.Do(context.Background(), idempotent.New(store), "step", "k", func(context.Context) (int, error) { runs++; return 1, nil })
			var se *idempotent.StoreError
			if errors.As(err, &se) != tt.storeErr || (!tt.storeErr && err != nil) {
				t.Fatalf("err = %v, want a *StoreError: %v", err, tt.storeErr)
			}
			if store.acquires != tt.acquires || runs != tt.runs {
				t.Fatalf("acquires %d, runs %d; want %d and %d", store.acquires, runs, tt.acquires, tt.runs)
			}
		})
	}
}
