package storetest

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// listInspectDelete checks the optional Lister and Deleter interfaces: List
// pages through the records of one name only (chunks and other names left
// out), Inspect reports the stored form, and Delete is conditional on the
// record it was given and removes a chunked record whole. A store that
// implements neither skips it.
func (s *suite) listInspectDelete(t *testing.T) {
	st := s.newStore(t)
	l, okL := st.(idempotent.Lister)
	d, okD := st.(idempotent.Deleter)
	if !okL && !okD {
		t.Skip("store implements neither idempotent.Lister nor idempotent.Deleter")
	}
	if !okL || !okD {
		t.Fatalf("store %T implements only one of Lister and Deleter", st)
	}
	ctx := t.Context()
	big := make([]byte, 1200<<10) // incompressible 1.2 MB: chunked in DynamoDB
	for i := range big {
		big[i] = byte(rand.Uint32())
	}
	a := seed(t, st, completed(inProgress(keyA, "owner-a"), big, sec.Add(time.Hour)))
	b := seed(t, st, inProgress(keyB, "owner-b"))
	seed(t, st, completed(inProgress(keyC, "owner-c"), []byte(`{"other":1}`), sec.Add(time.Hour)))

	var ids []string
	cursor, pages := "", 0
	for {
		page, err := l.List(ctx, idempotent.ListQuery{Name: "storetest-fn", Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, r := range page.Records {
			if r.Record.Data != nil {
				t.Errorf("List returned data for %s", r.Record.ID)
			}
			ids = append(ids, r.Record.ID)
		}
		if pages++; page.Next == "" || pages > 100_000 {
			break
		}
		cursor = page.Next
	}
	slices.Sort(ids)
	if want := []string{keyB, keyA}; !slices.Equal(ids, want) {
		t.Fatalf("List(storetest-fn) ids = %v, want %v", ids, want)
	}

	info, err := l.Inspect(ctx, keyA)
	if err != nil || info == nil {
		t.Fatalf("Inspect(%s) = %v, %v", keyA, info, err)
	}
	want := a
	want.Data = nil
	if diffs := diff(&info.Record, want); diffs != "" {
		t.Fatalf("Inspect(%s): %s", keyA, diffs)
	}
	if info.StoredBytes <= 0 {
		t.Errorf("Inspect(%s).StoredBytes = %d, want > 0", keyA, info.StoredBytes)
	}
	if none, err := l.Inspect(ctx, keyA+"0"); err != nil || none != nil {
		t.Fatalf("Inspect(missing) = %v, %v; want nil, nil", none, err)
	}

	// A record that changed since it was read is not deleted.
	stale := b
	stale.Owner = "someone-else"
	if err := d.Delete(ctx, stale); !errors.Is(err, idempotent.ErrRecordChanged) {
		t.Fatalf("Delete(stale) = %v, want ErrRecordChanged", err)
	}
	expect(t, st, b)
	if err := d.Delete(ctx, b); err != nil {
		t.Fatalf("Delete(%s) = %v", keyB, err)
	}
	expectNone(t, st, keyB)
	if err := d.Delete(ctx, b); !errors.Is(err, idempotent.ErrRecordChanged) {
		t.Fatalf("Delete(gone) = %v, want ErrRecordChanged", err)
	}
	if err := d.Delete(ctx, info.Record); err != nil {
		t.Fatalf("Delete(%s) = %v", keyA, err)
	}
	expectNone(t, st, keyA)
	// The key is free again: a new run acquires it.
	if _, ok, err := st.Acquire(ctx, inProgress(keyA, "owner-new"), now); err != nil || !ok {
		t.Fatalf("Acquire after Delete = %v, %v", ok, err)
	}
	page, err := l.List(ctx, idempotent.ListQuery{Name: "storetest-fn"})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(page.Records) != 1 || page.Records[0].Record.Owner != "owner-new" {
		t.Fatalf("List after Delete = %+v; want only the new run (no chunks left as records)", page.Records)
	}
}
