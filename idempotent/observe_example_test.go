package idempotent_test

import (
	"context"
	"fmt"

	"github.com/idemlambda/idemlambda/idempotent"
)

func ExampleWithObserver() {
	counts := map[idempotent.Outcome]int{}
	obs := idempotent.WithObserver(idempotent.Observer{
		Call: func(_ context.Context, e idempotent.Report) {
			counts[e.Outcome]++
			if e.Takeover {
				fmt.Println("lease takeover on", e.Record)
			}
		},
	})
	store := idempotent.NewMemoryStore()
	charge := func(_ context.Context, orderID string) (string, error) { return "ch_" + orderID, nil }
	h := idempotent.Wrap(idempotent.New(store, obs), charge)
	for _, id := range []string{"o-1", "o-1", "o-2"} {
		_, _ = h(context.Background(), id)
	}
	fmt.Println(idempotent.OutcomeCompleted, counts[idempotent.OutcomeCompleted])
	fmt.Println(idempotent.OutcomeReplayed, counts[idempotent.OutcomeReplayed])
	// Output:
	// completed 2
	// replayed 1
}

func ExampleWithReplayHook() {
	store := idempotent.NewMemoryStore()
	charge := func(_ context.Context, orderID string) (string, error) { return "ch_" + orderID, nil }
	h := idempotent.Wrap(idempotent.New(store), charge, idempotent.WithReplayHook(func(_ context.Context, r idempotent.Replay, v string) string {
		return v + " (" + r.Outcome.String() + ")"
	}))
	first, _ := h(context.Background(), "o-1")
	again, _ := h(context.Background(), "o-1")
	fmt.Println(first)
	fmt.Println(again)
	// Output:
	// ch_o-1
	// ch_o-1 (replayed)
}
