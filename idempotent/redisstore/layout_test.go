package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/zdata"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

// legacyHash writes rec as the hash layout that came before layout 1 (one
// field per attribute, as the previous release wrote it), with the key's
// time to live.
func legacyHash(t *testing.T, client *redis.Client, key string, rec idempotent.Record) {
	t.Helper()
	f := map[string]any{
		"status":     string(rec.Status),
		"expiration": rec.Expiration.Unix(),
		"owner":      rec.Owner,
	}
	if rec.Fingerprint != "" {
		f["validation"] = rec.Fingerprint
	}
	if rec.Status == idempotent.StatusInProgress {
		f["in_progress_expiration"] = rec.LeaseExpiration.UnixMilli()
	} else {
		f["data"] = rec.Data
	}
	if err := client.HSet(t.Context(), key, f).Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.Expire(t.Context(), key, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestLegacyLayout: records the hash layout wrote are still read — Get,
// Inspect, a replay, a conflict, a takeover reported with the replaced
// record, an expired record acquired over, an admin Delete — and a write over
// one stores layout 1. Complete and Release are fenced off on them (only the
// process that acquired a record completes or releases it, and it wrote the
// record in its own layout).
func TestLegacyLayout(t *testing.T) {
	client := testredis.Client(t)
	completed := done(held("owner-1"), []byte(`{"charge":"ch_1"}`), now.Add(time.Hour))

	t.Run("completed: Get, Inspect, replay, Delete", func(t *testing.T) {
		store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
		legacyHash(t, client, store.Key(testKey), completed)
		got, err := store.Get(t.Context(), testKey)
		if err != nil || got == nil || got.Status != idempotent.StatusCompleted || string(got.Data) != `{"charge":"ch_1"}` ||
			got.Owner != "owner-1" || got.Fingerprint != "fp" || !got.Expiration.Equal(completed.Expiration) {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		info, err := store.Inspect(t.Context(), testKey)
		if err != nil || info == nil || info.StoredBytes != len(`{"charge":"ch_1"}`) || info.Record.Status != idempotent.StatusCompleted {
			t.Fatalf("Inspect = %+v, %v", info, err)
		}
		existing, ok, err := store.Acquire(t.Context(), held("owner-2"), now)
		if err != nil || ok || existing == nil || string(existing.Data) != `{"charge":"ch_1"}` {
			t.Fatalf("replay Acquire = %+v, %v, %v; want the stored result", existing, ok, err)
		}
		if err := store.Complete(t.Context(), done(held("owner-1"), []byte("x"), now.Add(time.Hour))); !errors.Is(err, idempotent.ErrLeaseLost) {
			t.Fatalf("Complete = %v, want ErrLeaseLost", err)
		}
		if err := store.Delete(t.Context(), *got); err != nil {
			t.Fatalf("Delete = %v", err)
		}
		if n := client.Exists(t.Context(), store.Key(testKey)).Val(); n != 0 {
			t.Fatal("Delete left the key")
		}
	})

	t.Run("in progress: conflict, then takeover", func(t *testing.T) {
		store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
		old := held("owner-1")
		legacyHash(t, client, store.Key(testKey), old)
		existing, ok, err := store.Acquire(t.Context(), held("owner-2"), now)
		if err != nil || ok || existing == nil || existing.Owner != "owner-1" || !existing.LeaseExpiration.Equal(old.LeaseExpiration) {
			t.Fatalf("Acquire during the lease = %+v, %v, %v; want the held record", existing, ok, err)
		}
		if err := store.Release(t.Context(), testKey, "owner-1"); !errors.Is(err, idempotent.ErrLeaseLost) {
			t.Fatalf("Release = %v, want ErrLeaseLost", err)
		}
		existing, ok, err = store.Acquire(t.Context(), held("owner-2"), old.LeaseExpiration)
		if err != nil || !ok || existing == nil || existing.Owner != "owner-1" || existing.Status != idempotent.StatusInProgress ||
			existing.Fingerprint != "fp" || !existing.LeaseExpiration.Equal(old.LeaseExpiration) {
			t.Fatalf("Acquire after the lease = %+v, %v, %v; want acquired, reporting the replaced record", existing, ok, err)
		}
		if typ := client.Type(t.Context(), store.Key(testKey)).Val(); typ != "string" {
			t.Fatalf("the key is a %s after the takeover, want a string (layout 1)", typ)
		}
		if err := store.Complete(t.Context(), done(held("owner-2"), []byte("ok"), now.Add(time.Hour))); err != nil {
			t.Fatalf("Complete by the new owner = %v", err)
		}
	})

	t.Run("completed, expired: acquired over", func(t *testing.T) {
		store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
		legacyHash(t, client, store.Key(testKey), done(held("owner-1"), []byte("old"), now))
		existing, ok, err := store.Acquire(t.Context(), held("owner-2"), now)
		if err != nil || !ok || existing != nil {
			t.Fatalf("Acquire = %+v, %v, %v; want acquired, no takeover", existing, ok, err)
		}
		got, err := store.Get(t.Context(), testKey)
		if err != nil || got == nil || got.Owner != "owner-2" {
			t.Fatalf("Get = %+v, %v", got, err)
		}
	})
}

// TestCorruptStrings: a string at a record's key that is not a layout-1
// record is reported as corrupt by Get and Acquire, never taken over, and
// fences Complete and Release off; the key is left as it was. (The foreign
// types and the damaged hashes are TestCorruptRecords'.)
func TestCorruptStrings(t *testing.T) {
	client := testredis.Client(t)
	for _, tt := range []struct{ name, v string }{
		{"another version", "2I 1800003600 1800000030250 o fp -\n"},
		{"no newline", "1C 1800003600  o fp "},
		{"unknown status", "1X 1800003600  o fp \nx"},
		{"non-numeric expiration", "1C soon  o fp \nx"},
		{"in progress without lease", "1I 1800003600  o fp -\n"},
		{"completed without data", "1C 1800003600  o fp -\n"},
		{"data after no data", "1I 1800003600 1800000030250 o fp -\nx"},
		{"unknown format", "1C 1800003600  o fp gzip\nx"},
		{"zstd format, data not zstd", "1C 1800003600  o fp zstd\nx"},
		{"a malformed escape", "1C 1800003600  o%4 fp \nx"},
		{"five header fields", "1C 1800003600  o fp\nx"},
		// Expired by its fields, but not a record: still never taken over.
		{"expired, unknown status", "1X 1  o fp \nx"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
			key := store.Key(testKey)
			if err := client.Set(t.Context(), key, tt.v, 0).Err(); err != nil {
				t.Fatal(err)
			}
			if rec, err := store.Get(t.Context(), testKey); !errors.Is(err, idempotent.ErrCorruptRecord) {
				t.Fatalf("Get = %+v, %v; want ErrCorruptRecord", rec, err)
			}
			if rec, ok, err := store.Acquire(t.Context(), held("owner-1"), now); ok || !errors.Is(err, idempotent.ErrCorruptRecord) {
				t.Fatalf("Acquire = %+v, %v, %v; want ErrCorruptRecord, not acquired", rec, ok, err)
			}
			if err := store.Complete(t.Context(), done(held("p"), []byte("y"), now)); !errors.Is(err, idempotent.ErrLeaseLost) {
				t.Fatalf("Complete = %v; want ErrLeaseLost", err)
			}
			if err := store.Release(t.Context(), testKey, "p"); !errors.Is(err, idempotent.ErrLeaseLost) {
				t.Fatalf("Release = %v; want ErrLeaseLost", err)
			}
			if got := client.Get(t.Context(), key).Val(); got != tt.v {
				t.Fatalf("the key changed to %q", got)
			}
		})
	}
}

// TestEscapedFields: owners, fingerprints and formats are header fields, so
// spaces, newlines, '%' and bytes that are not text are escaped and read back
// exactly; the fence compares them exactly too.
func TestEscapedFields(t *testing.T) {
	store, _ := newStore(t)
	rec := held("own er\n%41\x00é")
	rec.Fingerprint = "f p\r\n"
	if _, ok, err := store.Acquire(t.Context(), rec, now); err != nil || !ok {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	got, err := store.Get(t.Context(), testKey)
	if err != nil || got == nil || got.Owner != rec.Owner || got.Fingerprint != rec.Fingerprint {
		t.Fatalf("Get = %+v, %v; want owner %q, fingerprint %q", got, err, rec.Owner, rec.Fingerprint)
	}
	if err := store.Release(t.Context(), testKey, "own er\n%41\x00"); !errors.Is(err, idempotent.ErrLeaseLost) {
		t.Fatalf("Release by another owner = %v, want ErrLeaseLost", err)
	}
	if err := store.Release(t.Context(), testKey, "own erA\x00é"); !errors.Is(err, idempotent.ErrLeaseLost) {
		t.Fatalf("Release by an owner that escapes alike = %v, want ErrLeaseLost", err)
	}
	if err := store.Complete(t.Context(), done(rec, []byte("ok"), now.Add(time.Hour))); err != nil {
		t.Fatalf("Complete = %v", err)
	}
	got, err = store.Get(t.Context(), testKey)
	if err != nil || got == nil || got.Owner != rec.Owner || got.Fingerprint != rec.Fingerprint || string(got.Data) != "ok" {
		t.Fatalf("Get after Complete = %+v, %v", got, err)
	}
}

// TestCompleteKeepsFingerprint: Complete keeps the stored fingerprint, as
// the Store contract has it (the core completes with the one it acquired
// with; another caller of the Store may not), and a resend of such a Complete
// is still recognised.
func TestCompleteKeepsFingerprint(t *testing.T) {
	client := testredis.Client(t)
	lossy := &resent{Client: client}
	store := redisstore.New(lossy, redisstore.WithKeyPrefix(testredis.Prefix(t)))
	if _, ok, err := store.Acquire(t.Context(), held("owner-1"), now); err != nil || !ok {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	rec := done(held("owner-1"), []byte(`{"a":1}`), now.Add(time.Hour))
	rec.Fingerprint = "other"
	lossy.on.Store(true)
	if err := store.Complete(t.Context(), rec); err != nil {
		t.Fatalf("resent Complete = %v", err)
	}
	got, err := store.Get(t.Context(), testKey)
	if err != nil || got == nil || got.Fingerprint != "fp" || string(got.Data) != `{"a":1}` || got.Status != idempotent.StatusCompleted {
		t.Fatalf("Get = %+v, %v; want completed, fingerprint fp", got, err)
	}
}

// TestShortTTLTakeover: with a TTL no longer than the lease, the in-progress
// record expires at its lease end; a crashed run's key must still be there
// once the server's time has passed that point, so the retry that takes it
// over is reported as a takeover (it used to find no key and run as a new
// one). The lease here is 300 ms and the expiration 750 ms away; the server's
// time and the caller's clock both move past them.
func TestShortTTLTakeover(t *testing.T) {
	store, _ := newStore(t)
	clk := &clock{t: now}
	var events []idempotent.Report
	opts := []idempotent.Option{
		idempotent.WithName("orders"), idempotent.WithClock(clk.Now), idempotent.WithTTL(time.Second),
		idempotent.WithObserver(idempotent.Observer{Call: func(_ context.Context, e idempotent.Report) { events = append(events, e) }}),
	}
	g := idempotent.New(store, opts...)
	boom := errors.New("boom")
	fail := func(context.Context) (string, error) { return "", boom }
	if _, err := idempotent.Do(t.Context(), g, "charge", "k1", fail); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	// A crashed run: expiration = lease end (a TTL shorter than the lease),
	// the lease 300 ms.
	crashed := held("crashed")
	crashed.ID = events[0].Record
	crashed.LeaseExpiration = now.Add(300 * time.Millisecond).Truncate(time.Millisecond)
	crashed.Expiration = time.Unix(crashed.LeaseExpiration.Unix()+1, 0) // its second, rounded up: 750 ms from now
	if _, ok, err := store.Acquire(t.Context(), crashed, now); err != nil || !ok {
		t.Fatalf("seed Acquire = %v, %v", ok, err)
	}
	time.Sleep(900 * time.Millisecond) // the server's time passes max(expiration, lease end)
	clk.t = now.Add(900 * time.Millisecond)
	ok := func(context.Context) (string, error) { return "paid", nil }
	if _, err := idempotent.Do(t.Context(), g, "charge", "k1", ok); err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || !events[1].Takeover {
		t.Fatalf("events = %+v; want the second run reported as a takeover", events)
	}
}

// TestLayoutBytes pins the bytes of layout 1, whichever path writes them —
// an acquire's own SET NX GET (a new key), the acquire script (over a free
// record), Complete's script — so that records written by this version and
// by the ones before and after it are the same bytes and every version reads
// the others' (the golden strings are what the script-only version wrote).
func TestLayoutBytes(t *testing.T) {
	client := testredis.Client(t)
	store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
	big := jsonData(20 << 10)
	zstd, format, err := zdata.Encode(big, redisstore.DefaultCompressThreshold)
	if err != nil || format != "zstd" {
		t.Fatalf("zdata.Encode = %q, %v", format, err)
	}
	escaped := held("own er\n%")
	escaped.Fingerprint = "f p"
	withData := held("owner-1")
	withData.Status, withData.LeaseExpiration, withData.Data = idempotent.StatusCompleted, time.Time{}, []byte(`{"id":1}`)
	check := func(t *testing.T, id, want string) {
		t.Helper()
		got, err := client.Get(t.Context(), store.Key(id)).Result()
		if err != nil || got != want {
			t.Fatalf("the key holds %q, %v; want %q", got, err, want)
		}
	}
	for _, tt := range []struct {
		name string
		rec  idempotent.Record
		want string
	}{
		{"in progress", held("owner-1"), "1I 1800003600 1800000030250 owner-1 fp -\n"},
		{"escaped owner and fingerprint", escaped, "1I 1800003600 1800000030250 own%20er%0A%25 f%20p -\n"},
		{"acquired completed, with data", withData, "1C 1800003600  owner-1 fp \n" + `{"id":1}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.rec
			rec.ID = "new"
			if _, ok, err := store.Acquire(t.Context(), rec, now); err != nil || !ok {
				t.Fatalf("Acquire of a new key = %v, %v", ok, err)
			}
			check(t, rec.ID, tt.want)
			// Over an expired record: the script writes.
			rec.ID = "over"
			old := done(held("someone"), []byte("old"), now.Add(-time.Hour))
			old.ID = rec.ID
			if _, ok, err := store.Acquire(t.Context(), old, now.Add(-2*time.Hour)); err != nil || !ok {
				t.Fatalf("seed = %v, %v", ok, err)
			}
			if _, ok, err := store.Acquire(t.Context(), rec, now); err != nil || !ok {
				t.Fatalf("Acquire over an expired record = %v, %v", ok, err)
			}
			check(t, rec.ID, tt.want)
			client.Del(t.Context(), store.Key("new"), store.Key("over"))
		})
	}
	t.Run("completed, plain and zstd", func(t *testing.T) {
		for _, c := range []struct {
			data []byte
			want string
		}{
			{[]byte(`{"id":1}`), "1C 1800003600  owner-1 fp \n" + `{"id":1}`},
			{big, "1C 1800003600  owner-1 fp zstd\n" + string(zstd)},
		} {
			if _, ok, err := store.Acquire(t.Context(), held("owner-1"), now); err != nil || !ok {
				t.Fatalf("Acquire = %v, %v", ok, err)
			}
			if err := store.Complete(t.Context(), done(held("owner-1"), c.data, now.Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
			check(t, testKey, c.want)
			client.Del(t.Context(), store.Key(testKey))
		}
	})
}
