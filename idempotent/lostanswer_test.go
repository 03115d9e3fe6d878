package idempotent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// retriedStore simulates a network that loses the answer of a write that
// succeeded, and a client (the AWS SDK's retryer) that sends the write
// again: the second write meets the record the first one wrote.
type retriedStore struct {
	idempotent.Store
	lose map[string]bool // operations whose first answer is lost: "acquire", "complete"
}

func (s *retriedStore) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	existing, acquired, err := s.Store.Acquire(ctx, rec, now)
	if err != nil || !acquired || !s.lose["acquire"] {
		return existing, acquired, err
	}
	delete(s.lose, "acquire")
	return s.Store.Acquire(ctx, rec, now) // the retry
}

func (s *retriedStore) Complete(ctx context.Context, rec idempotent.Record) error {
	err := s.Store.Complete(ctx, rec)
	if err != nil || !s.lose["complete"] {
		return err
	}
	delete(s.lose, "complete")
	return s.Store.Complete(ctx, rec) // the retry
}

// TestAcquireAnswerLost: when the acquire write landed but its answer was
// lost and the retried write found the caller's own record, the call owns
// the key: it runs once and completes, instead of failing with ErrInProgress
// against itself until its own lease ends (found by the chaos workload's
// drop fault). The store recognises the repeated write (a store contract,
// see storetest); the core relies on it.
func TestAcquireAnswerLost(t *testing.T) {
	clk := newClock()
	store := &retriedStore{Store: idempotent.NewMemoryStore(), lose: map[string]bool{"acquire": true}}
	runs := 0
	fn := func(context.Context) (string, error) { runs++; return "paid", nil }
	got, err := idempotent.Do(context.Background(), idempotent.New(store, idempotent.WithClock(clk.Now)), "step", "k", fn)
	if err != nil {
		t.Fatalf("Do = %v, want the run's result", err)
	}
	if got != "paid" || runs != 1 {
		t.Fatalf("Do = %q after %d runs, want %q after 1", got, runs, "paid")
	}
	again, err := idempotent.Do(context.Background(), idempotent.New(store, idempotent.WithClock(clk.Now)), "step", "k", fn)
	if err != nil || again != "paid" || runs != 1 {
		t.Fatalf("replay = %q, %v after %d runs, want %q after 1", again, err, runs, "paid")
	}
}

// TestCompleteAnswerLost: when the complete write landed but its answer was
// lost and the retried write failed its condition (the record is already
// completed), the run did complete: the caller gets its result, not
// ErrLeaseLost (found by the chaos workload's drop fault). As above, the
// store recognises the repeated write.
func TestCompleteAnswerLost(t *testing.T) {
	clk := newClock()
	store := &retriedStore{Store: idempotent.NewMemoryStore(), lose: map[string]bool{"complete": true}}
	runs := 0
	fn := func(context.Context) (string, error) { runs++; return "paid", nil }
	got, err := idempotent.Do(context.Background(), idempotent.New(store, idempotent.WithClock(clk.Now)), "step", "k", fn)
	if err != nil {
		t.Fatalf("Do = %v, want the run's result", err)
	}
	if got != "paid" || runs != 1 {
		t.Fatalf("Do = %q after %d runs, want %q after 1", got, runs, "paid")
	}
}

// TestLateCompletionStillLosesLease: a run whose lease was taken over still
// gets ErrLeaseLost and overwrites nothing, with the lost-answer check in
// place.
func TestLateCompletionStillLosesLease(t *testing.T) {
	clk := newClock()
	store := idempotent.NewMemoryStore()
	started, release := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := idempotent.Do(context.Background(), idempotent.New(store, idempotent.WithClock(clk.Now), idempotent.WithLease(time.Second)), "step", "k", func(context.Context) (string, error) {
			close(started)
			<-release
			return "late", nil
		})
		errc <- err
	}()
	<-started
	clk.Advance(2 * time.Second)
	got, err := idempotent.Do(context.Background(), idempotent.New(store, idempotent.WithClock(clk.Now)), "step", "k", func(context.Context) (string, error) { return "winner", nil })
	if err != nil || got != "winner" {
		t.Fatalf("takeover = %q, %v, want winner", got, err)
	}
	close(release)
	if err := <-errc; !errors.Is(err, idempotent.ErrLeaseLost) {
		t.Fatalf("late run = %v, want ErrLeaseLost", err)
	}
	again, err := idempotent.Do(context.Background(), idempotent.New(store, idempotent.WithClock(clk.Now)), "step", "k", func(context.Context) (string, error) { return "third", nil })
	if err != nil || again != "winner" {
		t.Fatalf("replay = %q, %v, want winner", again, err)
	}
}
