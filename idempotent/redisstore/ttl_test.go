package redisstore_test

import (
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

// TestKeyTTL checks the time to live each write gives the key, measured
// against the caller's clock (here years away from the server's): an
// in-progress key lives until max(expiration, lease end) plus an hour (so a
// takeover after a crash is still seen as one), never less than its lease; a
// completed key until its new expiration. PTTL only falls between
// the write and the read, so each check allows it to have fallen by up to
// slack (the time two local commands take, by a wide margin) and never to
// exceed the expected value.
func TestKeyTTL(t *testing.T) {
	const slack = time.Minute
	client := testredis.Client(t)
	prefix := testredis.Prefix(t)
	store := redisstore.New(client, redisstore.WithKeyPrefix(prefix))
	key := store.Key(testKey)

	check := func(t *testing.T, want time.Duration) {
		t.Helper()
		got, err := client.PTTL(t.Context(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got > want || got <= want-slack {
			t.Fatalf("PTTL = %v, want %v (less at most %v)", got, want, slack)
		}
	}
	leaseBeyond := held("owner-1")
	leaseBeyond.LeaseExpiration = now.Add(2 * time.Hour).Truncate(time.Millisecond)

	tests := []struct {
		name string
		rec  idempotent.Record
		want time.Duration // after Acquire at now
		// completeAt is how long after the acquire Complete runs on the
		// caller's clock, with expiration now + completeAt + 6 h; wantDone
		// is the PTTL then. The server sees (almost) no time pass, and it is
		// its elapsed time that the key's life is measured in.
		completeAt time.Duration
		wantDone   time.Duration
	}{
		{name: "expiration after the lease", rec: held("owner-1"), want: 2*time.Hour - 250*time.Millisecond,
			completeAt: 0, wantDone: 6*time.Hour - 250*time.Millisecond},
		{name: "lease after the expiration", rec: leaseBeyond, want: 3 * time.Hour,
			completeAt: 0, wantDone: 6*time.Hour - 250*time.Millisecond},
		{name: "completed later on the caller's clock", rec: held("owner-1"), want: 2*time.Hour - 250*time.Millisecond,
			completeAt: 10 * time.Minute, wantDone: 6*time.Hour + 10*time.Minute - 250*time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client.Del(t.Context(), key)
			if _, ok, err := store.Acquire(t.Context(), tt.rec, now); err != nil || !ok {
				t.Fatalf("Acquire = %v, %v", ok, err)
			}
			check(t, tt.want)
			if err := store.Complete(t.Context(), done(tt.rec, []byte("ok"), now.Add(tt.completeAt+6*time.Hour))); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			check(t, tt.wantDone)
		})
	}

	t.Run("key without a time to live keeps none", func(t *testing.T) {
		client.Del(t.Context(), key)
		if _, ok, err := store.Acquire(t.Context(), held("owner-1"), now); err != nil || !ok {
			t.Fatalf("Acquire = %v, %v", ok, err)
		}
		client.Persist(t.Context(), key)
		if err := store.Complete(t.Context(), done(held("owner-1"), []byte("ok"), now.Add(6*time.Hour))); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		if got := client.PTTL(t.Context(), key).Val(); got != -1 {
			t.Fatalf("PTTL = %v, want -1 (none)", got)
		}
	})

	t.Run("a record dead at now, and an hour before, lives a millisecond", func(t *testing.T) {
		client.Del(t.Context(), key)
		rec := held("owner-1")
		rec.Expiration, rec.LeaseExpiration = now.Add(-2*time.Hour), now.Add(-2*time.Hour)
		if _, ok, err := store.Acquire(t.Context(), rec, now); err != nil || !ok {
			t.Fatalf("Acquire = %v, %v", ok, err)
		}
		if got := client.PTTL(t.Context(), key).Val(); got > time.Millisecond {
			t.Fatalf("PTTL = %v, want at most 1ms (or gone)", got)
		}
	})
}

// TestKeyLayout: the record of id lives in one string at prefix{id} (layout
// 1: a header line, then the data), so every script touches one key, in the
// slot of the id alone.
func TestKeyLayout(t *testing.T) {
	client := testredis.Client(t)
	store := redisstore.New(client, redisstore.WithKeyPrefix("app1:idem:"))
	if got, want := store.Key(testKey), "app1:idem:{"+testKey+"}"; got != want {
		t.Fatalf("Key = %q, want %q", got, want)
	}
	if got, want := redisstore.New(client).Key("x"), redisstore.DefaultKeyPrefix+"{x}"; got != want {
		t.Fatalf("default Key = %q, want %q", got, want)
	}
	t.Cleanup(func() { client.Del(t.Context(), store.Key(testKey)) })
	if _, ok, err := store.Acquire(t.Context(), held("owner-1"), now); err != nil || !ok {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	check := func(want string) {
		t.Helper()
		got, err := client.Get(t.Context(), store.Key(testKey)).Result()
		if err != nil || got != want {
			t.Fatalf("the key holds %q, %v; want %q", got, err, want)
		}
	}
	check("1I 1800003600 1800000030250 owner-1 fp -\n")
	if err := store.Complete(t.Context(), done(held("owner-1"), []byte(`{"id":1}`), now.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	check("1C 1800003600  owner-1 fp \n" + `{"id":1}`)
}

// TestKeyTTLBeyondADuration: a record whose expiration lies further away
// than a time.Duration reaches (292 years; go-redis takes the time to live
// as one) gets the longest time to live there is, not an overflowed one
// (which would be no time to live at all, or a negative one).
func TestKeyTTLBeyondADuration(t *testing.T) {
	client := testredis.Client(t)
	store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
	rec := held("owner-1")
	rec.Expiration = now.AddDate(400, 0, 0).Truncate(time.Second)
	if _, ok, err := store.Acquire(t.Context(), rec, now); err != nil || !ok {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	// PTTL in milliseconds: 400 years do not fit a time.Duration.
	got, err := client.Do(t.Context(), "PTTL", store.Key(testKey)).Int64()
	if err != nil {
		t.Fatal(err)
	}
	// The record is in progress: its key lives an hour past its expiration.
	if want := rec.Expiration.Unix()*1000 - now.UnixMilli() + 3_600_000; got > want || got < want-60_000 {
		t.Fatalf("PTTL = %d ms, want about %d ms (400 years: the whole time to live, not clamped)", got, want)
	}
}
