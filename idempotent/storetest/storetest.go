package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// Run runs the contract suite against the stores newStore makes. newStore is
// called once per subtest and must return a store with no records (a fresh
// table, say); it may use t for cleanup. Subtests run sequentially.
func Run(t *testing.T, newStore func(t *testing.T) idempotent.Store) {
	t.Helper()
	s := &suite{newStore: newStore}
	t.Run("AcquireEmpty", s.acquireEmpty)
	t.Run("AcquireConflictReturnsExisting", s.acquireConflict)
	t.Run("AcquireOverExisting", s.acquireOver)
	t.Run("RetriedWrites", s.retriedWrites)
	t.Run("Complete", s.complete)
	t.Run("Release", s.release)
	t.Run("GetMissing", s.getMissing)
	t.Run("ConcurrentAcquire", s.concurrentAcquire)
	t.Run("KeysIndependent", s.keysIndependent)
	t.Run("LargeResults", s.largeResults)
	t.Run("ListInspectDelete", s.listInspectDelete)
}

type suite struct {
	newStore func(t *testing.T) idempotent.Store
}

// now is the suite's fixed clock: a time with a millisecond part, so second
// and millisecond boundaries differ.
var now = time.Unix(1_700_000_000, 456_000_000).UTC()

// sec and ms are now truncated to the precision of Expiration and
// LeaseExpiration.
var (
	sec = now.Truncate(time.Second)
	ms  = now.Truncate(time.Millisecond)
)

const (
	keyA = "storetest-fn#9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	keyB = "storetest-fn#60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
	keyC = "other-fn#fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13"
	fp   = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
)

// inProgress is a record as the core writes it on Acquire at now: expiring in
// an hour, its lease ending in 30 s.
func inProgress(key, owner string) idempotent.Record {
	return idempotent.Record{
		ID:              key,
		Status:          idempotent.StatusInProgress,
		Expiration:      sec.Add(time.Hour),
		LeaseExpiration: ms.Add(30 * time.Second),
		Owner:           owner,
		Fingerprint:     fp,
	}
}

// completed is rec after a successful Complete with data, expiring at exp.
func completed(rec idempotent.Record, data []byte, exp time.Time) idempotent.Record {
	rec.Status = idempotent.StatusCompleted
	rec.Data = data
	rec.Expiration = exp
	rec.LeaseExpiration = time.Time{}
	return rec
}

// seed writes rec into the empty store s (acquiring it at a time long before
// now) and, if want is completed, completes it. It returns what the store
// should now hold.
func seed(t *testing.T, s idempotent.Store, want idempotent.Record) idempotent.Record {
	t.Helper()
	in := want
	in.Status = idempotent.StatusInProgress
	if want.Status == idempotent.StatusCompleted {
		in.LeaseExpiration = ms.Add(-time.Hour)
		in.Data = nil
	}
	existing, ok, err := s.Acquire(t.Context(), in, now.Add(-24*time.Hour))
	if err != nil || !ok {
		t.Fatalf("seed: Acquire(%s) = %v, %v, %v; want acquired", want.ID, existing, ok, err)
	}
	if want.Status == idempotent.StatusCompleted {
		if err := s.Complete(t.Context(), want); err != nil {
			t.Fatalf("seed: Complete(%s) = %v", want.ID, err)
		}
	}
	return want
}

// equal reports how got differs from want, or "" when every field matches
// at the contract's precision (a nil and an empty Data are equal).
func diff(got *idempotent.Record, want idempotent.Record) string {
	if got == nil {
		return "got nil record"
	}
	var d []string
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("Key %q, want %q", got.ID, want.ID))
	}
	if got.Status != want.Status {
		d = append(d, fmt.Sprintf("Status %q, want %q", got.Status, want.Status))
	}
	if got.Expiration.Unix() != want.Expiration.Unix() {
		d = append(d, fmt.Sprintf("Expiration %d s, want %d s", got.Expiration.Unix(), want.Expiration.Unix()))
	}
	if got.LeaseExpiration.IsZero() != want.LeaseExpiration.IsZero() ||
		got.LeaseExpiration.UnixMilli() != want.LeaseExpiration.UnixMilli() {
		d = append(d, fmt.Sprintf("LeaseExpiration %v, want %v", got.LeaseExpiration, want.LeaseExpiration))
	}
	if got.Owner != want.Owner {
		d = append(d, fmt.Sprintf("Owner %q, want %q", got.Owner, want.Owner))
	}
	if got.Fingerprint != want.Fingerprint {
		d = append(d, fmt.Sprintf("Fingerprint %q, want %q", got.Fingerprint, want.Fingerprint))
	}
	if !bytes.Equal(got.Data, want.Data) {
		d = append(d, fmt.Sprintf("Data %q, want %q", trim(got.Data), trim(want.Data)))
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

func trim(b []byte) []byte {
	if len(b) > 64 {
		return append(b[:64:64], "..."...)
	}
	return b
}

// expect fails t unless the store holds exactly want for want.Key.
func expect(t *testing.T, s idempotent.Store, want idempotent.Record) {
	t.Helper()
	got, err := s.Get(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("Get(%s) error: %v", want.ID, err)
	}
	if d := diff(got, want); d != "" {
		t.Fatalf("Get(%s): %s", want.ID, d)
	}
}

// expectNone fails t unless the store holds no record for key.
func expectNone(t *testing.T, s idempotent.Store, key string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%s) error: %v", key, err)
	}
	if got != nil {
		t.Fatalf("Get(%s) = %+v, want no record", key, got)
	}
}

func (s *suite) acquireEmpty(t *testing.T) {
	tests := []struct {
		name string
		rec  idempotent.Record
	}{
		{"with fingerprint", inProgress(keyA, "owner-1")},
		{"without fingerprint", func() idempotent.Record {
			r := inProgress(keyA, "owner-1")
			r.Fingerprint = ""
			return r
		}()},
		{"lease with milliseconds", func() idempotent.Record {
			r := inProgress(keyA, "owner-1")
			r.LeaseExpiration = ms.Add(999 * time.Millisecond)
			return r
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.newStore(t)
			existing, ok, err := st.Acquire(t.Context(), tt.rec, now)
			if err != nil || !ok || existing != nil {
				t.Fatalf("Acquire on empty store = %v, %v, %v; want nil, true, nil", existing, ok, err)
			}
			expect(t, st, tt.rec)
		})
	}
}

func binary() []byte {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func (s *suite) acquireConflict(t *testing.T) {
	tests := []struct {
		name     string
		existing idempotent.Record
	}{
		{"in progress", inProgress(keyA, "owner-1")},
		{"in progress without fingerprint", func() idempotent.Record {
			r := inProgress(keyA, "owner-1")
			r.Fingerprint = ""
			return r
		}()},
		{"completed with JSON", completed(inProgress(keyA, "owner-1"), []byte(`{"statusCode":200,"body":"ok"}`), sec.Add(2*time.Hour))},
		{"completed with empty data", completed(inProgress(keyA, "owner-1"), []byte{}, sec.Add(2*time.Hour))},
		{"completed with binary data", completed(inProgress(keyA, "owner-1"), binary(), sec.Add(2*time.Hour))},
		{"completed with 64 KiB", completed(inProgress(keyA, "owner-1"), bytes.Repeat([]byte("0123456789abcdef"), 4096), sec.Add(2*time.Hour))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.newStore(t)
			want := seed(t, st, tt.existing)
			existing, ok, err := st.Acquire(t.Context(), inProgress(keyA, "owner-2"), now)
			if err != nil || ok {
				t.Fatalf("Acquire over a live record = %v, %v, %v; want not acquired, no error", existing, ok, err)
			}
			if d := diff(existing, want); d != "" {
				t.Fatalf("Acquire returned existing: %s", d)
			}
			expect(t, st, want)
		})
	}
}

func (s *suite) acquireOver(t *testing.T) {
	withTimes := func(r idempotent.Record, exp, lease time.Time) idempotent.Record {
		r.Expiration, r.LeaseExpiration = exp, lease
		return r
	}
	old := inProgress(keyA, "owner-1")
	done := func(exp time.Time) idempotent.Record { return completed(old, []byte("result"), exp) }
	tests := []struct {
		name     string
		existing idempotent.Record
		free     bool
	}{
		{"completed, expired a second ago", done(sec.Add(-time.Second)), true},
		{"completed, expiring this second", done(sec), true},
		{"completed, expiring next second", done(sec.Add(time.Second)), false},
		{"completed, live", done(sec.Add(time.Hour)), false},
		{"in progress, lease ended a millisecond ago", withTimes(old, sec.Add(time.Hour), ms.Add(-time.Millisecond)), true},
		{"in progress, lease ending this millisecond", withTimes(old, sec.Add(time.Hour), ms), true},
		{"in progress, lease ending next millisecond", withTimes(old, sec.Add(time.Hour), ms.Add(time.Millisecond)), false},
		{"in progress, lease live, expiring this second", withTimes(old, sec, ms.Add(time.Minute)), true},
		{"in progress, lease live, expiring next second", withTimes(old, sec.Add(time.Second), ms.Add(time.Minute)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.existing.Free(now); got != tt.free {
				t.Fatalf("suite bug: Record.Free = %v, want %v", got, tt.free)
			}
			st := s.newStore(t)
			want := seed(t, st, tt.existing)
			next := inProgress(keyA, "owner-2")
			existing, ok, err := st.Acquire(t.Context(), next, now)
			if err != nil {
				t.Fatalf("Acquire error: %v", err)
			}
			if tt.free {
				if !ok {
					t.Fatalf("Acquire over a free record = %+v, %v; want success", existing, ok)
				}
				// A store may report the in-progress record it replaced (a
				// lease takeover), and nothing else.
				if existing != nil {
					if want.Status != idempotent.StatusInProgress {
						t.Fatalf("Acquire over a %s record returned %+v; want nil", want.Status, existing)
					}
					if d := diff(existing, want); d != "" {
						t.Fatalf("Acquire returned the replaced record: %s", d)
					}
				}
				expect(t, st, next)
				return
			}
			if ok {
				t.Fatal("Acquire over a live record succeeded")
			}
			if d := diff(existing, want); d != "" {
				t.Fatalf("Acquire returned existing: %s", d)
			}
			expect(t, st, want)
		})
	}
}

// retriedWrites: a client that retries a write whose answer was lost sends
// it again after it landed. The owner token is unique to one acquisition, so
// a store recognises its own landed write: a repeated Acquire by the owner
// of the running lease is acquired, a repeated Complete by the owner of the
// completed record succeeds; neither changes the record.
func (s *suite) retriedWrites(t *testing.T) {
	t.Run("Acquire repeated by its owner", func(t *testing.T) {
		st := s.newStore(t)
		rec := inProgress(keyA, "owner-1")
		if _, ok, err := st.Acquire(t.Context(), rec, now); err != nil || !ok {
			t.Fatalf("Acquire = %v, %v; want acquired", ok, err)
		}
		existing, ok, err := st.Acquire(t.Context(), rec, now.Add(time.Second))
		if err != nil || !ok || existing != nil {
			t.Fatalf("repeated Acquire = %+v, %v, %v; want nil, true, nil", existing, ok, err)
		}
		expect(t, st, rec)
	})
	t.Run("Complete repeated by its owner", func(t *testing.T) {
		st := s.newStore(t)
		held := seed(t, st, inProgress(keyA, "owner-1"))
		done := completed(held, []byte(`{"ok":true}`), sec.Add(6*time.Hour))
		if err := st.Complete(t.Context(), done); err != nil {
			t.Fatalf("Complete = %v", err)
		}
		if err := st.Complete(t.Context(), done); err != nil {
			t.Fatalf("repeated Complete = %v, want nil", err)
		}
		expect(t, st, done)
	})
}

func (s *suite) complete(t *testing.T) {
	exp := sec.Add(6 * time.Hour)
	data := []byte(`{"ok":true}`)
	tests := []struct {
		name string
		// setup prepares the store and returns the record to complete and
		// what the store holds before Complete (nil: nothing).
		setup   func(t *testing.T, st idempotent.Store) (idempotent.Record, *idempotent.Record)
		wantErr error
	}{
		{
			name: "by owner",
			setup: func(t *testing.T, st idempotent.Store) (idempotent.Record, *idempotent.Record) {
				held := seed(t, st, inProgress(keyA, "owner-1"))
				return completed(held, data, exp), &held
			},
		},
		{
			name: "by owner with empty data",
			setup: func(t *testing.T, st idempotent.Store) (idempotent.Record, *idempotent.Record) {
				held := seed(t, st, inProgress(keyA, "owner-1"))
				return completed(held, []byte{}, exp), &held
			},
		},
		{
			name: "by owner after its lease ended, nobody took over",
			setup: func(t *testing.T, st idempotent.Store) (idempotent.Record, *idempotent.Record) {
				r := inProgress(keyA, "owner-1")
				r.LeaseExpiration = ms.Add(-time.Minute)
				held := seed(t, st, r)
				return completed(held, data, exp), &held
			},
		},
		{
			name: "by another owner",
			setup: func(t *testing.T, st idempotent.Store) (idempotent.Record, *idempotent.Record) {
				held := seed(t, st, inProgress(keyA, "owner-1"))
				return completed(inProgress(keyA, "owner-2"), data, exp), &held
			},
			wantErr: idempotent.ErrLeaseLost,
		},
		{
			name: "after another owner took over",
			setup: func(t *testing.T, st idempotent.Store) (idempotent.Record, *idempotent.Record) {
				r := inProgress(keyA, "owner-1")
				r.LeaseExpiration = ms.Add(-time.Millisecond)
				seed(t, st, r)
				taker := inProgress(keyA, "owner-2")
				if _, ok, err := st.Acquire(t.Context(), taker, now); err != nil || !ok {
					t.Fatalf("take over: %v, %v", ok, err)
				}
				return completed(r, data, exp), &taker
			},
			wantErr: idempotent.ErrLeaseLost,
		},
		{
			name: "on a record completed by another owner",
			setup: func(t *testing.T, st idempotent.Store) (idempotent.Record, *idempotent.Record) {
				held := seed(t, st, completed(inProgress(keyA, "owner-1"), []byte("first"), sec.Add(time.Hour)))
				return completed(inProgress(keyA, "owner-2"), []byte("second"), exp), &held
			},
			wantErr: idempotent.ErrLeaseLost,
		},
		{
			name: "on a missing record",
			setup: func(t *testing.T, st idempotent.Store) (idempotent.Record, *idempotent.Record) {
				return completed(inProgress(keyA, "owner-1"), data, exp), nil
			},
			wantErr: idempotent.ErrLeaseLost,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.newStore(t)
			rec, before := tt.setup(t, st)
			err := st.Complete(t.Context(), rec)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Complete error: %v", err)
				}
				expect(t, st, rec)
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Complete error = %v, want %v", err, tt.wantErr)
			}
			if before == nil {
				expectNone(t, st, rec.ID)
			} else {
				expect(t, st, *before)
			}
		})
	}
}

func (s *suite) release(t *testing.T) {
	tests := []struct {
		name     string
		existing *idempotent.Record
		owner    string
		wantErr  error
	}{
		{name: "by owner", existing: ptr(inProgress(keyA, "owner-1")), owner: "owner-1"},
		{name: "by owner after its lease ended", existing: ptr(func() idempotent.Record {
			r := inProgress(keyA, "owner-1")
			r.LeaseExpiration = ms.Add(-time.Minute)
			return r
		}()), owner: "owner-1"},
		{name: "by another owner", existing: ptr(inProgress(keyA, "owner-1")), owner: "owner-2", wantErr: idempotent.ErrLeaseLost},
		{name: "with an empty owner", existing: ptr(inProgress(keyA, "owner-1")), owner: "", wantErr: idempotent.ErrLeaseLost},
		{name: "on a completed record by its owner", existing: ptr(completed(inProgress(keyA, "owner-1"), []byte("r"), sec.Add(time.Hour))), owner: "owner-1", wantErr: idempotent.ErrLeaseLost},
		{name: "on a missing record", owner: "owner-1", wantErr: idempotent.ErrLeaseLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.newStore(t)
			if tt.existing != nil {
				seed(t, st, *tt.existing)
			}
			err := st.Release(t.Context(), keyA, tt.owner)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Release error: %v", err)
				}
				expectNone(t, st, keyA)
				// The key is free again.
				if _, ok, err := st.Acquire(t.Context(), inProgress(keyA, "owner-3"), now); err != nil || !ok {
					t.Fatalf("Acquire after Release = %v, %v; want acquired", ok, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Release error = %v, want %v", err, tt.wantErr)
			}
			if tt.existing == nil {
				expectNone(t, st, keyA)
			} else {
				expect(t, st, *tt.existing)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func (s *suite) getMissing(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, st idempotent.Store)
	}{
		{"empty store", func(*testing.T, idempotent.Store) {}},
		{"other keys present", func(t *testing.T, st idempotent.Store) {
			seed(t, st, inProgress(keyB, "owner-1"))
			seed(t, st, completed(inProgress(keyC, "owner-1"), []byte("x"), sec.Add(time.Hour)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.newStore(t)
			tt.setup(t, st)
			expectNone(t, st, keyA)
		})
	}
}

func (s *suite) concurrentAcquire(t *testing.T) {
	const n = 32
	tests := []struct {
		name     string
		existing *idempotent.Record
	}{
		{name: "empty"},
		{name: "over an ended lease", existing: ptr(func() idempotent.Record {
			r := inProgress(keyA, "owner-old")
			r.LeaseExpiration = ms.Add(-time.Second)
			return r
		}())},
		{name: "over an expired completed record", existing: ptr(completed(inProgress(keyA, "owner-old"), []byte("old"), sec.Add(-time.Second)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.newStore(t)
			if tt.existing != nil {
				seed(t, st, *tt.existing)
			}
			type result struct {
				owner    string
				existing *idempotent.Record
				ok       bool
				err      error
			}
			results := make([]result, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					owner := fmt.Sprintf("owner-%02d", i)
					existing, ok, err := st.Acquire(t.Context(), inProgress(keyA, owner), now)
					results[i] = result{owner, existing, ok, err}
				})
			}
			close(start)
			wg.Wait()

			var winners []string
			for _, r := range results {
				if r.err != nil {
					t.Fatalf("Acquire(%s) error: %v", r.owner, r.err)
				}
				if r.ok {
					winners = append(winners, r.owner)
				}
			}
			if len(winners) != 1 {
				t.Fatalf("%d Acquires succeeded (%v), want exactly 1", len(winners), winners)
			}
			winner := inProgress(keyA, winners[0])
			for _, r := range results {
				if r.ok {
					continue
				}
				// Nothing releases the key, so every loser sees the winner.
				if d := diff(r.existing, winner); d != "" {
					t.Fatalf("Acquire(%s) returned existing: %s", r.owner, d)
				}
			}
			expect(t, st, winner)
		})
	}
}

func (s *suite) keysIndependent(t *testing.T) {
	st := s.newStore(t)
	a, b, c := inProgress(keyA, "owner-a"), inProgress(keyB, "owner-b"), inProgress(keyC, "owner-c")
	for _, r := range []idempotent.Record{a, b, c} {
		if existing, ok, err := st.Acquire(t.Context(), r, now); err != nil || !ok {
			t.Fatalf("Acquire(%s) = %v, %v, %v; want acquired", r.ID, existing, ok, err)
		}
	}
	steps := []struct {
		name string
		do   func(t *testing.T) error
		want []idempotent.Record // records expected afterwards
		gone []string            // keys expected absent afterwards
	}{
		{
			name: "complete A",
			do: func(t *testing.T) error {
				return st.Complete(t.Context(), completed(a, []byte("a"), sec.Add(time.Hour)))
			},
			want: []idempotent.Record{completed(a, []byte("a"), sec.Add(time.Hour)), b, c},
		},
		{
			name: "release B",
			do:   func(t *testing.T) error { return st.Release(t.Context(), keyB, "owner-b") },
			want: []idempotent.Record{completed(a, []byte("a"), sec.Add(time.Hour)), c},
			gone: []string{keyB},
		},
		{
			name: "A's owner cannot release C",
			do: func(t *testing.T) error {
				if err := st.Release(t.Context(), keyC, "owner-a"); !errors.Is(err, idempotent.ErrLeaseLost) {
					return fmt.Errorf("Release(C, owner-a) = %v, want ErrLeaseLost", err)
				}
				return nil
			},
			want: []idempotent.Record{completed(a, []byte("a"), sec.Add(time.Hour)), c},
			gone: []string{keyB},
		},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if err := step.do(t); err != nil {
				t.Fatal(err)
			}
			for _, r := range step.want {
				expect(t, st, r)
			}
			for _, k := range step.gone {
				expectNone(t, st, k)
			}
		})
	}
}

// largeResults completes records with results of the sizes a Lambda function
// returns — compressible and not, up to beyond one DynamoDB item (§6) — and
// reads them back byte for byte, through Get and through a conflicting
// Acquire (the replay path).
func (s *suite) largeResults(t *testing.T) {
	text := make([]byte, 0, 40<<10)
	for i := 0; len(text) < 40<<10; i++ {
		text = fmt.Appendf(text, `{"line":%d,"sku":"SKU-%05d","status":"SHIPPED"},`, i, i*7919%100000)
	}
	noise := make([]byte, 900<<10)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range noise {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		noise[i] = byte(x)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{name: "40 KB text", data: text},
		{name: "900 KB noise", data: noise},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.newStore(t)
			held := seed(t, st, inProgress(keyA, "owner-1"))
			done := completed(held, tt.data, sec.Add(time.Hour))
			if err := st.Complete(t.Context(), done); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			expect(t, st, done)
			existing, ok, err := st.Acquire(t.Context(), inProgress(keyA, "owner-2"), now)
			if err != nil || ok || existing == nil {
				t.Fatalf("Acquire = %v, %v, %v; want the completed record", existing, ok, err)
			}
			if d := diff(existing, done); d != "" {
				t.Fatalf("replayed record differs: %s", d)
			}
		})
	}
}
