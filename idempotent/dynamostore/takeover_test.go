package dynamostore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// An acquire that replaces an in-progress record whose lease ended returns
// that record, in one PutItem, so the core reports the lease takeover; one
// that replaces an expired completed record (or nothing) returns nil.
func TestAcquireReportsTakeover(t *testing.T) {
	client, counter := testdynamo.CountingClient(t)
	store := dynamostore.New(client, testdynamo.NewTable(t, client))
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	crashed := idempotent.Record{
		ID: "fn#a", Status: idempotent.StatusInProgress, Owner: "crashed-run",
		Expiration: now.Add(time.Hour), LeaseExpiration: now.Add(30 * time.Second),
	}
	if _, ok, err := store.Acquire(ctx, crashed, now); err != nil || !ok {
		t.Fatalf("seed: %v, %v", ok, err)
	}
	later := now.Add(time.Minute)
	next := crashed
	next.Owner, next.LeaseExpiration = "next-run", later.Add(30*time.Second)
	counter.Reset()
	replaced, ok, err := store.Acquire(ctx, next, later)
	if err != nil || !ok {
		t.Fatalf("takeover: %v, %v", ok, err)
	}
	if replaced == nil || replaced.Owner != "crashed-run" || replaced.Status != idempotent.StatusInProgress || !replaced.LeaseExpiration.Equal(crashed.LeaseExpiration) {
		t.Fatalf("takeover returned %+v, want the crashed run's record", replaced)
	}
	if got := counter.Counts(); counter.Total() != 1 || got["PutItem"] != 1 {
		t.Fatalf("takeover: calls %v, want one PutItem", got)
	}
	if err := store.Complete(ctx, idempotent.Record{ID: "fn#a", Status: idempotent.StatusCompleted, Owner: "next-run", Expiration: later.Add(time.Second), Data: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	// The completed record expires; a new acquire replaces it: no takeover.
	last := later.Add(time.Hour)
	again := next
	again.Owner, again.Expiration, again.LeaseExpiration = "third-run", last.Add(time.Hour), last.Add(30*time.Second)
	replaced, ok, err = store.Acquire(ctx, again, last)
	if err != nil || !ok || replaced != nil {
		t.Fatalf("over an expired completed record: %+v, %v, %v; want nil, true, nil", replaced, ok, err)
	}
	fresh := again
	fresh.ID = "fn#b"
	if replaced, ok, err = store.Acquire(ctx, fresh, last); err != nil || !ok || replaced != nil {
		t.Fatalf("new key: %+v, %v, %v; want nil, true, nil", replaced, ok, err)
	}
}

// Through the wrapper, on the server: the retry after a crash is reported as
// a takeover.
func TestWrapReportsTakeover(t *testing.T) {
	client, _ := testdynamo.CountingClient(t)
	store := dynamostore.New(client, testdynamo.NewTable(t, client))
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	var events []idempotent.Report
	obs := idempotent.WithObserver(idempotent.Observer{Call: func(_ context.Context, e idempotent.Report) { events = append(events, e) }})
	ctx := context.Background()
	// A run that crashed: it acquired and never finished.
	crashed := idempotent.Record{
		ID: "pay#" + sha256Hex("s\x00k"), Status: idempotent.StatusInProgress, Owner: "crashed-run",
		Expiration: now.Add(time.Hour), LeaseExpiration: now.Add(30 * time.Second),
	}
	if _, ok, err := store.Acquire(ctx, crashed, now); err != nil || !ok {
		t.Fatalf("seed: %v, %v", ok, err)
	}
	now = now.Add(time.Minute)
	v, err := idempotent.Do(ctx, idempotent.New(store,
		idempotent.WithName("pay"), idempotent.WithClock(clock), obs), "s", "k", func(context.Context) (int, error) { return 7, nil })
	if err != nil || v != 7 {
		t.Fatalf("Do = %v, %v", v, err)
	}
	if len(events) != 1 || !events[0].Takeover || events[0].Outcome != idempotent.OutcomeCompleted || events[0].Record != crashed.ID {
		t.Fatalf("events = %+v, want one completed takeover", events)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
