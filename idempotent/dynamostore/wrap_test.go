package dynamostore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

type chargeReq struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

type chargeRes struct {
	Charge string `json:"charge"`
	Run    int64  `json:"run"`
}

// The physical floor of the contract, counted at the SDK for the whole
// wrapper: new key = 2 calls, replay = 2 on dynalite and 1 on a server that
// returns the old item, local-cache replay = 0.
func TestWrapRoundTrips(t *testing.T) {
	tests := []struct {
		name       string
		oldItem    bool
		wantReplay int
	}{
		{"dynalite", false, 2},
		{"server returning the old item", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []testdynamo.Option
			if tt.oldItem {
				opts = append(opts, testdynamo.WithOldItemOnConditionFailure())
			}
			client, counter := testdynamo.CountingClient(t, opts...)
			store := dynamostore.New(client, testdynamo.NewTable(t, client))
			var runs atomic.Int64
			h := func(_ context.Context, r chargeReq) (chargeRes, error) {
				return chargeRes{Charge: "ch_" + r.ID, Run: runs.Add(1)}, nil
			}
			w := idempotent.Wrap(idempotent.New(store, idempotent.WithLocalCache(8)), h, idempotent.WithKeyPath("id"))
			cold := idempotent.Wrap(idempotent.New(store), h, idempotent.WithKeyPath("id"))
			ctx := context.Background()

			counter.Reset()
			first, err := w(ctx, chargeReq{ID: "c-1", Amount: 3})
			if err != nil {
				t.Fatal(err)
			}
			if got := counter.Counts(); counter.Total() != 2 || got["PutItem"] != 1 || got["UpdateItem"] != 1 {
				t.Fatalf("new key: calls %v, want PutItem + UpdateItem", got)
			}
			counter.Reset()
			replay, err := cold(ctx, chargeReq{ID: "c-1", Amount: 3})
			if err != nil || replay != first {
				t.Fatalf("replay = %+v, %v; want %+v", replay, err, first)
			}
			if counter.Total() != tt.wantReplay {
				t.Fatalf("replay: calls %v, want %d", counter.Counts(), tt.wantReplay)
			}
			counter.Reset()
			if cached, err := w(ctx, chargeReq{ID: "c-1", Amount: 3}); err != nil || cached != first {
				t.Fatalf("cached replay = %+v, %v", cached, err)
			}
			if counter.Total() != 0 {
				t.Fatalf("local-cache replay: calls %v, want none", counter.Counts())
			}
			if runs.Load() != 1 {
				t.Fatalf("handler ran %d times, want 1", runs.Load())
			}
		})
	}
}

// 32 containers, each with its own wrapper and local cache, share one table
// and one key: the handler runs once, everyone gets its result.
func TestWrapConcurrentContainers(t *testing.T) {
	client := testdynamo.Client(t)
	table := testdynamo.NewTable(t, client)
	var runs atomic.Int64
	h := func(_ context.Context, r chargeReq) (chargeRes, error) {
		return chargeRes{Charge: "ch_" + r.ID, Run: runs.Add(1)}, nil
	}
	const n = 32
	results := make([]chargeRes, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		g := idempotent.New(dynamostore.New(client, table), idempotent.WithLocalCache(4), idempotent.WithWait(time.Minute))
		w := idempotent.Wrap(g, h, idempotent.WithKeyPath("id"))
		wg.Go(func() {
			<-start
			results[i], errs[i] = w(context.Background(), chargeReq{ID: "c-1"})
		})
	}
	close(start)
	wg.Wait()
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", runs.Load())
	}
	for i := range n {
		if errs[i] != nil || results[i] != results[0] {
			t.Fatalf("container %d: %+v, %v; want %+v", i, results[i], errs[i], results[0])
		}
	}
}

// The state machine on the real server: error releases, lease takeover
// fences the late run, payload mismatch, expiry.
func TestWrapStateMachineOnServer(t *testing.T) {
	client := testdynamo.Client(t)
	store := dynamostore.New(client, testdynamo.NewTable(t, client))
	var mu sync.Mutex
	now := time.Now().Truncate(time.Second)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	var runs atomic.Int64
	fail := atomic.Bool{}
	hold := make(chan struct{})
	started := make(chan struct{}, 1)
	h := func(_ context.Context, r chargeReq) (chargeRes, error) {
		n := runs.Add(1)
		if r.ID == "slow" && n == 1 {
			started <- struct{}{}
			<-hold
		}
		if fail.Load() {
			return chargeRes{}, context.DeadlineExceeded
		}
		return chargeRes{Charge: "ch_" + r.ID, Run: n}, nil
	}
	guardOpts := []idempotent.Option{idempotent.WithClock(clock), idempotent.WithLease(10 * time.Second), idempotent.WithTTL(time.Hour)}
	wrapOpts := []idempotent.WrapOption{idempotent.WithKeyPath("id"), idempotent.WithPayloadPath("amount")}
	w := idempotent.Wrap(idempotent.New(store, guardOpts...), h, wrapOpts...)
	// Another process over the same table: the slow run happens there, so
	// its duplicates here meet it in the table, not in memory.
	other := idempotent.Wrap(idempotent.New(elsewhere(store), guardOpts...), h, wrapOpts...)
	ctx := context.Background()

	fail.Store(true)
	if _, err := w(ctx, chargeReq{ID: "a", Amount: 1}); err == nil {
		t.Fatal("failing run returned no error")
	}
	fail.Store(false)
	first, err := w(ctx, chargeReq{ID: "a", Amount: 1})
	if err != nil || first.Run != 2 {
		t.Fatalf("retry after a released error = %+v, %v; want run 2", first, err)
	}
	if _, err := w(ctx, chargeReq{ID: "a", Amount: 2}); !errors.Is(err, idempotent.ErrPayloadMismatch) {
		t.Fatalf("other amount: %v, want ErrPayloadMismatch", err)
	}

	late := make(chan error, 1)
	runs.Store(0)
	go func() { _, err := other(ctx, chargeReq{ID: "slow"}); late <- err }()
	<-started
	if _, err := w(ctx, chargeReq{ID: "slow"}); !errors.Is(err, idempotent.ErrInProgress) {
		t.Fatalf("duplicate during the lease: %v, want ErrInProgress", err)
	}
	advance(10 * time.Second)
	winner, err := w(ctx, chargeReq{ID: "slow"})
	if err != nil {
		t.Fatalf("takeover after the lease: %v", err)
	}
	close(hold)
	if err := <-late; !errors.Is(err, idempotent.ErrLeaseLost) {
		t.Fatalf("late run: %v, want ErrLeaseLost", err)
	}
	if again, err := w(ctx, chargeReq{ID: "slow"}); err != nil || again != winner {
		t.Fatalf("replay after takeover = %+v, %v; want the winner %+v", again, err, winner)
	}

	advance(time.Hour)
	if again, err := w(ctx, chargeReq{ID: "a", Amount: 1}); err != nil || again == first {
		t.Fatalf("after the TTL = %+v, %v; want a new run", again, err)
	}
}
