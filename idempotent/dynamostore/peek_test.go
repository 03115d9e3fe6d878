package dynamostore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
)

// TestReadFirstReplayIsOneRequest: with read-first, a replay is one
// eventually consistent GetItem on the wire, and a new key one GetItem more
// than write-first.
func TestReadFirstReplayIsOneRequest(t *testing.T) {
	store, _, _, meter := metered(t)
	ctx := context.Background()
	do := func(key string, opts ...idempotent.Option) string {
		t.Helper()
		out, err := idempotent.Do(ctx, idempotent.New(store, opts...), "step", key, func(context.Context) (string, error) { return "result-" + key, nil })
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	rf := idempotent.WithReadFirst()
	do("k", rf)
	if got := meter.Stats().Calls; got["GetItem"] != 1 || got["PutItem"] != 1 || got["UpdateItem"] != 1 || meter.Stats().Total() != 3 {
		t.Errorf("new key with read-first: calls %v, want GetItem, PutItem, UpdateItem once each", got)
	}
	meter.Reset()
	if out := do("k", rf); out != "result-k" {
		t.Errorf("replay = %q", out)
	}
	st := meter.Stats()
	if st.Total() != 1 || st.Calls["GetItem"] != 1 || st.WriteUnits != 0 || st.ReadUnits != 0.5 {
		t.Errorf("replay with read-first: calls %v, %d write units, %.1f read units; want one eventually consistent GetItem (0.5 units) and no write", st.Calls, st.WriteUnits, st.ReadUnits)
	}
	meter.Reset()
	do("k")
	if st := meter.Stats(); st.Calls["PutItem"] != 1 || st.WriteUnits == 0 {
		t.Errorf("replay write-first: calls %v, %d write units; want the failed conditional PutItem", st.Calls, st.WriteUnits)
	}
}

// TestPeekBatch: ten completed records and one absent key are read in one
// BatchGetItem.
func TestPeekBatch(t *testing.T) {
	store, _, _, meter := metered(t)
	ctx := context.Background()
	g := idempotent.New(store)
	var ids []string
	for i := range 10 {
		key := fmt.Sprint("m-", i)
		if _, err := idempotent.Do(ctx, g, "step", key, func(context.Context) (int, error) { return i, nil }); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, g.RecordID("step", key))
	}
	absent := g.RecordID("step", "never")
	meter.Reset()
	recs, err := store.PeekBatch(ctx, append(append(ids, absent), ids[0]))
	if err != nil {
		t.Fatal(err)
	}
	if st := meter.Stats(); st.Total() != 1 || st.Calls["BatchGetItem"] != 1 || st.ReadUnits != 5.5 {
		t.Errorf("calls %v, %.1f read units; want one BatchGetItem of 11 distinct keys, eventually consistent (5.5 units)", st.Calls, st.ReadUnits)
	}
	for i, id := range ids {
		r, ok := recs[id]
		if !ok || r == nil || r.Status != idempotent.StatusCompleted || string(r.Data) != fmt.Sprint(i) {
			t.Errorf("record %d: %+v (present %v)", i, r, ok)
		}
	}
	if r, ok := recs[absent]; !ok || r != nil {
		t.Errorf("absent key: %+v (present %v), want a nil entry", r, ok)
	}
}
