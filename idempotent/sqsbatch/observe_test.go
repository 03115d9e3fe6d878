package sqsbatch_test

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/sqsbatch"
)

// The guard's observers see one BatchReport per batch and
// the core's Report of every record.
func TestObserverBatchEvent(t *testing.T) {
	for _, n := range []int{1, 4} {
		var mu sync.Mutex
		var batches []idempotent.BatchReport
		outcomes := map[idempotent.Outcome]int{}
		obs := idempotent.WithObserver(idempotent.Observer{
			Call: func(_ context.Context, e idempotent.Report) {
				mu.Lock()
				defer mu.Unlock()
				outcomes[e.Outcome]++
			},
			Batch: func(_ context.Context, e idempotent.BatchReport) {
				mu.Lock()
				defer mu.Unlock()
				batches = append(batches, e)
			},
		})
		store := idempotent.NewMemoryStore()
		rec := newRecorder()
		h := sqsbatch.Wrap(idempotent.New(store, idempotent.WithLogger(quiet), obs), rec.handle, sqsbatch.WithConcurrency(n))
		if _, err := h(context.Background(), batch(msg("m1", "o-1", ""), msg("m2", "o-2", ""))); err != nil {
			t.Fatal(err)
		}
		batches, outcomes = nil, map[idempotent.Outcome]int{}
		resp, err := h(context.Background(), batch(
			msg("m1", "o-1", ""), msg("m2", "o-2", ""), // replays
			msg("m3", "o-3", ""),
			msg("m4", "o-4", "fail"),
			msg("m5", "o-5", "panic"),
			events.SQSMessage{MessageId: "m6", Body: "{}", EventSourceARN: standardARN}, // ok, runs
		))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.BatchItemFailures) != 2 {
			t.Fatalf("failures %v", resp.BatchItemFailures)
		}
		want := idempotent.BatchReport{Source: "sqs", Records: 6, Failures: 2, Replays: 2}
		if len(batches) != 1 || batches[0] != want {
			t.Fatalf("concurrency %d: batch events %+v, want [%+v]", n, batches, want)
		}
		wantOutcomes := map[idempotent.Outcome]int{idempotent.OutcomeReplayed: 2, idempotent.OutcomeCompleted: 2, idempotent.OutcomeFailed: 1, idempotent.OutcomePanicked: 1}
		for o, c := range wantOutcomes {
			if outcomes[o] != c {
				t.Fatalf("concurrency %d: outcomes %v, want %v", n, outcomes, wantOutcomes)
			}
		}
	}
}
