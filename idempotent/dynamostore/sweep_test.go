package dynamostore_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// TestSweep checks on the local server that Sweep deletes records (and the
// chunks of a large result) dead for longer than the grace period, pages,
// reports progress, and leaves live and recently dead records alone.
func TestSweep(t *testing.T) {
	client := testdynamo.Client(t)
	table := testdynamo.NewTable(t, client)
	s := dynamostore.New(client, table)
	now := time.Unix(1_800_000_000, 0)
	put := func(key string, exp time.Time, data []byte) {
		t.Helper()
		rec := idempotent.Record{ID: key, Status: idempotent.StatusInProgress, Owner: "o-" + key,
			Expiration: exp, LeaseExpiration: exp}
		if _, ok, err := s.Acquire(context.Background(), rec, exp.Add(-time.Hour)); err != nil || !ok {
			t.Fatal(ok, err)
		}
		rec.Data = data
		if err := s.Complete(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 900<<10)
	_, _ = rand.Read(big) // incompressible: 3 chunk items
	put("fn#old-big", now.Add(-2*time.Hour), big)
	put("fn#old", now.Add(-2*time.Hour), []byte("x"))
	put("fn#recent", now.Add(-time.Minute), []byte("x"))
	put("fn#live", now.Add(time.Hour), []byte("x"))

	var reports []dynamostore.SweepProgress
	p, err := s.Sweep(t.Context(), dynamostore.SweepOptions{Now: now, Grace: 10 * time.Minute, PageSize: 2,
		Progress: func(p dynamostore.SweepProgress) { reports = append(reports, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if p.Deleted != 5 || p.Pages < 3 || len(reports) != p.Pages {
		t.Fatalf("Sweep = %+v with %d reports; want 5 deleted (2 records, 3 chunks) over several pages", p, len(reports))
	}
	for key, want := range map[string]bool{"fn#old-big": false, "fn#old": false, "fn#recent": true, "fn#live": true} {
		got, err := s.Get(t.Context(), key)
		if err != nil || (got != nil) != want {
			t.Errorf("after Sweep, Get(%s) = %v, %v; want present %v", key, got, err, want)
		}
	}
	if p2, err := s.Sweep(t.Context(), dynamostore.SweepOptions{Now: now, Grace: 10 * time.Minute}); err != nil || p2.Deleted != 0 {
		t.Fatalf("second Sweep = %+v, %v; want nothing deleted", p2, err)
	}
}
