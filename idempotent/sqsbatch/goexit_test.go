package sqsbatch_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/sqsbatch"
)

// TestGoexitIsAFailure: a record whose function ends its goroutine with
// runtime.Goexit (t.FailNow in a test double, a library that calls it) never
// completed, so it is a batch item failure, never acknowledged — and so is
// a later record of its lane, which never started — while the batch still
// returns (issue 10, defect 5). Its key is released: the redelivery runs.
func TestGoexitIsAFailure(t *testing.T) {
	msgs := []events.SQSMessage{
		msg("m1", "o-1", ""),
		msg("m2", "o-2", "goexit"),
		msg("m3", "o-3", ""),
		msg("m4", "o-2", ""), // same key as m2: same lane, after it
		msg("m5", "o-5", ""),
	}
	for _, n := range []int{2, 4} {
		store := idempotent.NewMemoryStore()
		rec := newRecorder()
		var reports []idempotent.BatchReport // the handler's goroutine reports, after the lanes
		obs := idempotent.WithObserver(idempotent.Observer{Batch: func(_ context.Context, e idempotent.BatchReport) { reports = append(reports, e) }})
		h := sqsbatch.Wrap(guardOf(store, obs), rec.handle, base(sqsbatch.WithBodyKey("orderId"), sqsbatch.WithConcurrency(n))...)
		resp, err := h(context.Background(), batch(msgs...))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := failed(resp), []string{"m2", "m4"}; !slices.Equal(got, want) {
			t.Fatalf("concurrency %d: failures %q, want %q", n, got, want)
		}
		// The report counts what BatchItemFailures lists (issue 18, item 9).
		if want := (idempotent.BatchReport{Source: "sqs", Records: 5, Failures: 2}); len(reports) != 1 || reports[0] != want {
			t.Fatalf("concurrency %d: batch reports %+v, want one %+v", n, reports, want)
		}
		rec.fix("m2")
		resp, err = h(context.Background(), batch(msgs[1]))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("concurrency %d: redelivery = %v, %v; want it to run and complete", n, resp, err)
		}
	}
}
