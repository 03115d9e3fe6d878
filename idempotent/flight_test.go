package idempotent_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// elsewhere is store as another process sees it: the same records, another
// Store value, so no in-process coalescing with calls on store.
func elsewhere(store idempotent.Store) idempotent.Store {
	return &struct{ idempotent.Store }{store}
}

// outcomes counts the outcomes calls report.
type outcomes struct {
	mu sync.Mutex
	n  map[idempotent.Outcome]int
}

func (o *outcomes) option() idempotent.Option {
	return idempotent.WithObserver(idempotent.Observer{Call: func(_ context.Context, e idempotent.Report) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.n == nil {
			o.n = map[idempotent.Outcome]int{}
		}
		o.n[e.Outcome]++
	}})
}

func (o *outcomes) get(oc idempotent.Outcome) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[oc]
}

// waitForWaiters returns once n calls wait in memory on a flight of store.
func waitForWaiters(t *testing.T, store idempotent.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for idempotent.FlightWaiters(store) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want %d", idempotent.FlightWaiters(store), n)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

const dupes = 16

// TestCoalesceDo: 16 concurrent duplicates through Do make one acquire, no
// get, one complete; the function runs once; every caller gets the same
// answer in memory of its own.
func TestCoalesceDo(t *testing.T) {
	for _, wait := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprintf("wait=%v", wait), func(t *testing.T) {
			var obs outcomes
			opts := []idempotent.Option{obs.option()}
			if wait > 0 {
				opts = append(opts, idempotent.WithWait(wait))
			}
			store := newCounting(idempotent.NewMemoryStore())
			var runs atomic.Int64
			gate := make(chan struct{})
			answers := make([][]byte, dupes)
			errs := make([]error, dupes)
			var wg sync.WaitGroup
			for i := range dupes {
				wg.Go(func() {
					// A guard per call: every guard over one store coalesces.
					answers[i], errs[i] = idempotent.Do(context.Background(), idempotent.New(store, opts...), "charge", "order-1", func(context.Context) ([]byte, error) {
						runs.Add(1)
						<-gate
						return []byte(`{"charged":42}`), nil
					})
				})
			}
			waitForWaiters(t, store, dupes-1)
			close(gate)
			wg.Wait()
			for i := range dupes {
				if errs[i] != nil || string(answers[i]) != `{"charged":42}` {
					t.Fatalf("call %d = %q, %v", i, answers[i], errs[i])
				}
			}
			answers[0][0] = 'X' // each caller's memory is its own
			if string(answers[1]) != `{"charged":42}` {
				t.Fatal("callers share result memory")
			}
			if runs.Load() != 1 || store.acquire.Load() != 1 || store.get.Load() != 0 || store.complete.Load() != 1 || store.release.Load() != 0 {
				t.Fatalf("runs %d, acquire %d, get %d, complete %d, release %d; want 1, 1, 0, 1, 0",
					runs.Load(), store.acquire.Load(), store.get.Load(), store.complete.Load(), store.release.Load())
			}
			if obs.get(idempotent.OutcomeCompleted) != 1 || obs.get(idempotent.OutcomeCoalesced) != dupes-1 {
				t.Fatalf("outcomes %v", obs.n)
			}
		})
	}
}

// TestCoalesceWrap: the same through one handler from Wrap (a Managed
// Instances environment running 16 invocations at once).
func TestCoalesceWrap(t *testing.T) {
	store := newCounting(idempotent.NewMemoryStore())
	var runs atomic.Int64
	gate := make(chan struct{})
	h := idempotent.Wrap(idempotent.New(store), func(_ context.Context, o order) (receipt, error) {
		n := runs.Add(1)
		<-gate
		return receipt{OrderID: o.ID, Run: n}, nil
	}, idempotent.WithKeyPath("id"))
	answers := make([]receipt, dupes)
	errs := make([]error, dupes)
	var wg sync.WaitGroup
	for i := range dupes {
		wg.Go(func() { answers[i], errs[i] = h(context.Background(), order{ID: "o-1", Amount: 5}) })
	}
	waitForWaiters(t, store, dupes-1)
	close(gate)
	wg.Wait()
	for i := range dupes {
		if errs[i] != nil || answers[i] != (receipt{OrderID: "o-1", Run: 1}) {
			t.Fatalf("call %d = %+v, %v", i, answers[i], errs[i])
		}
	}
	if runs.Load() != 1 || store.acquire.Load() != 1 || store.get.Load() != 0 || store.complete.Load() != 1 {
		t.Fatalf("runs %d, acquire %d, get %d, complete %d; want 1, 1, 0, 1", runs.Load(), store.acquire.Load(), store.get.Load(), store.complete.Load())
	}
}

// runLeaderThen starts dupes calls of one key; the first run does first
// (after every other call waits), later runs return "second".
func runLeaderThen(t *testing.T, store *countingStore, first func() (string, error)) ([]string, []error, int64) {
	t.Helper()
	var runs atomic.Int64
	g := idempotent.New(store)
	gate := make(chan struct{})
	answers := make([]string, dupes)
	errs := make([]error, dupes)
	var wg sync.WaitGroup
	for i := range dupes {
		wg.Go(func() {
			defer func() {
				if p := recover(); p != nil {
					errs[i] = fmt.Errorf("panic: %v", p)
				}
			}()
			answers[i], errs[i] = idempotent.Do(context.Background(), g, "step", "k", func(context.Context) (string, error) {
				if runs.Add(1) == 1 {
					<-gate
					return first()
				}
				return "second", nil
			})
		})
	}
	waitForWaiters(t, store, dupes-1)
	close(gate)
	wg.Wait()
	return answers, errs, runs.Load()
}

// TestCoalesceFailedLeader: a first run that fails (error or panic) is
// never the waiters' answer; exactly one of them runs next and the rest
// replay its result.
func TestCoalesceFailedLeader(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first func() (string, error)
		want  string
	}{
		{"error", func() (string, error) { return "", errBoom }, errBoom.Error()},
		{"panic", func() (string, error) { panic("leader") }, "panic: leader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newCounting(idempotent.NewMemoryStore())
			answers, errs, runs := runLeaderThen(t, store, tc.first)
			failed, second := 0, 0
			for i := range dupes {
				switch {
				case errs[i] != nil && errs[i].Error() == tc.want:
					failed++
				case errs[i] == nil && answers[i] == "second":
					second++
				default:
					t.Fatalf("call %d = %q, %v", i, answers[i], errs[i])
				}
			}
			if failed != 1 || second != dupes-1 || runs != 2 {
				t.Fatalf("failed %d, second %d, runs %d; want 1, %d, 2", failed, second, runs, dupes-1)
			}
			if store.acquire.Load() != 2 || store.release.Load() != 1 || store.complete.Load() != 1 || store.get.Load() != 0 {
				t.Fatalf("acquire %d, release %d, complete %d, get %d; want 2, 1, 1, 0",
					store.acquire.Load(), store.release.Load(), store.complete.Load(), store.get.Load())
			}
		})
	}
}

// TestCoalescePayloadMismatch: a waiter with another payload gets
// ErrPayloadMismatch at once, without a store call; same-payload waiters
// replay.
func TestCoalescePayloadMismatch(t *testing.T) {
	store := newCounting(idempotent.NewMemoryStore())
	g := idempotent.New(store)
	started, gate := make(chan struct{}), make(chan struct{})
	leader := make(chan error, 1)
	go func() {
		_, err := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) (int, error) {
			close(started)
			<-gate
			return 1, nil
		}, idempotent.WithFingerprint("amount=5"))
		leader <- err
	}()
	<-started
	before := store.calls()
	_, err := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) (int, error) {
		t.Error("mismatched waiter ran")
		return 2, nil
	}, idempotent.WithFingerprint("amount=6"))
	if !errors.Is(err, idempotent.ErrPayloadMismatch) || store.calls() != before {
		t.Fatalf("mismatched waiter: %v, %d store calls; want ErrPayloadMismatch, none", err, store.calls()-before)
	}
	same := make(chan int, 1)
	go func() {
		v, _ := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) (int, error) { return 3, nil }, idempotent.WithFingerprint("amount=5"))
		same <- v
	}()
	waitForWaiters(t, store, 1)
	close(gate)
	if err := <-leader; err != nil {
		t.Fatal(err)
	}
	if v := <-same; v != 1 {
		t.Fatalf("same-payload waiter = %d, want 1", v)
	}
}

// TestCoalesceWaiterCancelled: a waiter whose context ends returns the
// error a WithWait timeout gives; the others are not affected.
func TestCoalesceWaiterCancelled(t *testing.T) {
	store := newCounting(idempotent.NewMemoryStore())
	started, gate := make(chan struct{}), make(chan struct{})
	leader := make(chan error, 1)
	fn := func(context.Context) (int, error) { close(started); <-gate; return 7, nil }
	g := idempotent.New(store)
	go func() { _, err := idempotent.Do(context.Background(), g, "step", "k", fn); leader <- err }()
	<-started
	other := make(chan int, 1)
	go func() {
		v, _ := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) (int, error) { return 0, nil })
		other <- v
	}()
	ctx, cancel := context.WithCancel(context.Background())
	var obs outcomes
	cancelled := make(chan error, 1)
	go func() {
		_, err := idempotent.Do(ctx, idempotent.New(store, obs.option()), "step", "k", func(context.Context) (int, error) { return 0, nil })
		cancelled <- err
	}()
	waitForWaiters(t, store, 2)
	cancel()
	if err := <-cancelled; !errors.Is(err, idempotent.ErrInProgress) || obs.get(idempotent.OutcomeWaitTimedOut) != 1 {
		t.Fatalf("cancelled waiter: %v, outcomes %v; want ErrInProgress, wait_timed_out", err, obs.n)
	}
	close(gate)
	if err := <-leader; err != nil {
		t.Fatal(err)
	}
	if v := <-other; v != 7 {
		t.Fatalf("other waiter = %d, want 7", v)
	}
	if store.acquire.Load() != 1 || store.get.Load() != 0 {
		t.Fatalf("acquire %d, get %d; want 1, 0", store.acquire.Load(), store.get.Load())
	}
}

// TestCoalesceScope: two keys, or two stores, do not coalesce: both runs
// are under way at once.
func TestCoalesceScope(t *testing.T) {
	shared := idempotent.NewMemoryStore()
	for _, tc := range []struct {
		name   string
		stores [2]idempotent.Store
		keys   [2]string
	}{
		{"two keys", [2]idempotent.Store{shared, shared}, [2]string{"a", "b"}},
		{"two stores", [2]idempotent.Store{idempotent.NewMemoryStore(), idempotent.NewMemoryStore()}, [2]string{"a", "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var both sync.WaitGroup
			both.Add(2)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Go(func() {
					_, errs[i] = idempotent.Do(ctx, idempotent.New(tc.stores[i]), "scope", tc.keys[i], func(ctx context.Context) (int, error) {
						both.Done()
						met := make(chan struct{})
						go func() { both.Wait(); close(met) }()
						select {
						case <-met:
							return i, nil
						case <-ctx.Done():
							return 0, errors.New("the other call never ran: coalesced")
						}
					})
				})
			}
			wg.Wait()
			if errs[0] != nil || errs[1] != nil {
				t.Fatal(errs)
			}
		})
	}
}

// TestCoalesceLeaderOutlivesLease: a leader still running when its lease
// ends is no longer the key's holder: a waiter takes the key over and runs;
// the late leader is fenced with ErrLeaseLost.
func TestCoalesceLeaderOutlivesLease(t *testing.T) {
	store := newCounting(idempotent.NewMemoryStore())
	started, gate := make(chan struct{}), make(chan struct{})
	leader := make(chan error, 1)
	g := idempotent.New(store, idempotent.WithLease(200*time.Millisecond))
	go func() {
		_, err := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) (string, error) {
			close(started)
			<-gate
			return "late", nil
		})
		leader <- err
	}()
	<-started
	got, err := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) (string, error) { return "takeover", nil })
	if err != nil || got != "takeover" {
		t.Fatalf("waiter = %q, %v; want takeover", got, err)
	}
	close(gate)
	if err := <-leader; !errors.Is(err, idempotent.ErrLeaseLost) {
		t.Fatalf("late leader: %v, want ErrLeaseLost", err)
	}
}

// TestCoalesceLeaderWaitsForAnotherProcess: the key is held by another
// process; with WithWait only the leader polls the store, and the waiters
// get the result it finds.
func TestCoalesceLeaderWaitsForAnotherProcess(t *testing.T) {
	mem := idempotent.NewMemoryStore()
	store := newCounting(mem)
	var obs outcomes
	fn := func(context.Context) (string, error) { return "mine", nil }
	other := elsewhere(mem)
	g := idempotent.New(store, idempotent.WithWait(time.Minute), obs.option())
	started, gate := make(chan struct{}), make(chan struct{})
	otherDone := make(chan error, 1)
	go func() {
		_, err := idempotent.Do(context.Background(), idempotent.New(other), "step", "k", func(context.Context) (string, error) {
			close(started)
			<-gate
			return "theirs", nil
		})
		otherDone <- err
	}()
	<-started
	answers := make([]string, dupes)
	errs := make([]error, dupes)
	var wg sync.WaitGroup
	for i := range dupes {
		wg.Go(func() {
			answers[i], errs[i] = idempotent.Do(context.Background(), g, "step", "k", fn)
		})
	}
	waitForWaiters(t, store, dupes-1)
	close(gate)
	wg.Wait()
	if err := <-otherDone; err != nil {
		t.Fatal(err)
	}
	for i := range dupes {
		if errs[i] != nil || answers[i] != "theirs" {
			t.Fatalf("call %d = %q, %v", i, answers[i], errs[i])
		}
	}
	if store.acquire.Load() != 1 || store.complete.Load() != 0 {
		t.Fatalf("acquire %d, complete %d; want 1, 0 (only the leader asks the store)", store.acquire.Load(), store.complete.Load())
	}
	if obs.get(idempotent.OutcomeWaitReplayed) != 1 || obs.get(idempotent.OutcomeCoalesced) != dupes-1 {
		t.Fatalf("outcomes %v", obs.n)
	}
}

// TestCoalesceReentrant: a guarded function that calls Do on its own
// record (directly, or in a goroutine given its context, or from a nested
// run of another record) does not wait for its own flight: it reaches the
// store and gets ErrInProgress at once, as before coalescing.
func TestCoalesceReentrant(t *testing.T) {
	for _, tc := range []struct {
		name  string
		inner func(ctx context.Context, g *idempotent.Guard) error
	}{
		{"direct", func(ctx context.Context, g *idempotent.Guard) error {
			_, err := idempotent.Do(ctx, g, "step", "k", func(context.Context) (int, error) { return 2, nil })
			return err
		}},
		{"goroutine", func(ctx context.Context, g *idempotent.Guard) error {
			errc := make(chan error, 1)
			go func() {
				_, err := idempotent.Do(ctx, g, "step", "k", func(context.Context) (int, error) { return 2, nil })
				errc <- err
			}()
			return <-errc
		}},
		{"nested run", func(ctx context.Context, g *idempotent.Guard) error {
			_, err := idempotent.Do(ctx, g, "other-step", "k", func(ctx context.Context) (int, error) {
				_, err := idempotent.Do(ctx, g, "step", "k", func(context.Context) (int, error) { return 2, nil })
				return 3, err
			})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newCounting(idempotent.NewMemoryStore())
			g := idempotent.New(store)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var innerErr error
			got, err := idempotent.Do(ctx, g, "step", "k", func(ctx context.Context) (int, error) {
				innerErr = tc.inner(ctx, g)
				return 1, nil
			})
			if err != nil || got != 1 {
				t.Fatalf("outer = %d, %v", got, err)
			}
			if !errors.Is(innerErr, idempotent.ErrInProgress) || ctx.Err() != nil {
				t.Fatalf("inner call on the run's own record: %v (context %v); want ErrInProgress at once", innerErr, ctx.Err())
			}
		})
	}
}

// incomparableStore is a Store of a type that cannot be a map key.
type incomparableStore struct {
	idempotent.Store
	_ []int
}

// TestCoalesceIncomparableStore: a store value that cannot be a map key
// does not coalesce (and does not panic): duplicates go to the store.
func TestCoalesceIncomparableStore(t *testing.T) {
	mem := idempotent.NewMemoryStore()
	g := idempotent.New(incomparableStore{Store: mem})
	started, gate := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) (int, error) { close(started); <-gate; return 1, nil })
		first <- err
	}()
	<-started
	_, err := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) (int, error) { return 2, nil })
	close(gate)
	if !errors.Is(err, idempotent.ErrInProgress) {
		t.Fatalf("duplicate = %v, want ErrInProgress from the store", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

// TestCoalesceLocalCache: waiters fill their own guard's local cache with
// the leader's record, so a later duplicate replays without a store call.
func TestCoalesceLocalCache(t *testing.T) {
	store := newCounting(idempotent.NewMemoryStore())
	leaderG := idempotent.New(store)
	waiterG := idempotent.New(store, idempotent.WithLocalCache(8))
	started, gate := make(chan struct{}), make(chan struct{})
	leader := make(chan error, 1)
	go func() {
		_, err := idempotent.Do(context.Background(), leaderG, "step", "k", func(context.Context) (int, error) { close(started); <-gate; return 5, nil })
		leader <- err
	}()
	<-started
	waiter := make(chan int, 1)
	go func() {
		v, _ := idempotent.Do(context.Background(), waiterG, "step", "k", func(context.Context) (int, error) { return 6, nil })
		waiter <- v
	}()
	waitForWaiters(t, store, 1)
	close(gate)
	if err := <-leader; err != nil {
		t.Fatal(err)
	}
	if v := <-waiter; v != 5 {
		t.Fatalf("waiter = %d, want 5", v)
	}
	before := store.calls()
	v, err := idempotent.Do(context.Background(), waiterG, "step", "k", func(context.Context) (int, error) { return 7, nil })
	if err != nil || v != 5 || store.calls() != before {
		t.Fatalf("later duplicate = %d, %v with %d store calls; want 5 from the local cache", v, err, store.calls()-before)
	}
}

// BenchmarkCoalesce16 runs 16 concurrent duplicates of a new key per op
// and reports the store calls they make (acquire+get+complete+release per
// op: 2 when every duplicate coalesces).
func BenchmarkCoalesce16(b *testing.B) {
	store := newCounting(idempotent.NewMemoryStore())
	g := idempotent.New(store)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		key := fmt.Sprint(i)
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for range dupes {
			wg.Go(func() {
				if _, err := idempotent.Do(context.Background(), g, "step", key, func(context.Context) (int, error) { <-gate; return 1, nil }); err != nil {
					b.Error(err)
				}
			})
		}
		for idempotent.FlightWaiters(store) < dupes-1 {
			runtime.Gosched()
		}
		close(gate)
		wg.Wait()
	}
	b.ReportMetric(float64(store.calls())/float64(b.N), "storecalls/op")
	b.ReportMetric(float64(store.get.Load())/float64(b.N), "gets/op")
}
