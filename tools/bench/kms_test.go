package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/idemkms"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/internal/benchdata"
	"github.com/idemlambda/idemlambda/internal/dynamocost"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
	"github.com/idemlambda/idemlambda/tools/internal/redisserver"
)

// These tests need the local-kms of kms/ctl.sh: kms/ctl.sh run --
// dynalite/ctl.sh run -- go test ./tools/bench (make test runs every test so).

// nopMeter stands in for the counting proxy: the encrypted side's rows are
// checked for their KMS calls here, not their DynamoDB calls.
type nopMeter struct{}

func (nopMeter) SetKey(string, ...string) {}
func (nopMeter) Reset()                   {}
func (nopMeter) Stats() dynamocost.Stats  { return dynamocost.Stats{} }

// TestKMSSideMakesNoKMSCallWhenWarm runs the encrypted side's rows as make
// bench does (runRow, new and replay, 200 B and 20 KB, 1 and 8 workers) on
// dynalite and local-kms: after the one GenerateDataKey of its warm-up, the
// measured rounds make no KMS call, and the row reports 0. The table holds
// the sealed form of the results (compressed before sealing at 20 KB).
func TestKMSSideMakesNoKMSCallWhenWarm(t *testing.T) {
	ctx := t.Context()
	client := testdynamo.Client(t)
	table := testdynamo.NewTable(t, client)
	o, err := newOursKMS(ctx, client, table, "warm")
	if err != nil {
		t.Fatal(err)
	}
	if n := o.kms.n.Load(); n != 1 {
		t.Fatalf("warm-up: %d KMS calls, want 1 (GenerateDataKey)", n)
	}
	dur, rounds := *flagDur, *flagRound
	*flagDur, *flagRound = 100*time.Millisecond, 2
	t.Cleanup(func() { *flagDur, *flagRound = dur, rounds })
	for _, scenario := range []string{"new", "replay"} {
		for _, workers := range []int{1, 8} {
			for _, size := range []int{200, 20480} {
				payload := benchdata.JSON(size, 1)
				rows := runRow(ctx, nopMeter{}, []impl{o}, "t", scenario, workers, size, payload, "")
				r := rows[0]
				if r.Impl != "idemlambda-kms" || r.Error != "" || r.Ops < workers*2 || r.KMSCalls == nil || *r.KMSCalls != 0 {
					t.Fatalf("%s w=%d %d B: %s (kms_calls set: %v); want ops without error and 0 KMS calls", scenario, workers, size, summary(r), r.KMSCalls != nil)
				}
			}
		}
	}
	// What the table holds, read without idemkms.
	raw := dynamostore.New(client, table)
	for size, format := range map[int]byte{200: 1, 20480: 2} {
		key := "replay-t-1-" + strconv.Itoa(size) + "-0"
		rec, err := raw.Get(ctx, idempotent.RecordID("bench", strconv.Quote(key)))
		if err != nil || rec == nil || rec.Status != idempotent.StatusCompleted {
			t.Fatalf("raw Get %s: %+v %v", key, rec, err)
		}
		if !bytes.HasPrefix(rec.Data, []byte{'I', 'K', format}) || bytes.Contains(rec.Data, []byte(`"orderId"`)) {
			t.Fatalf("%d B result stored as %q..., want the sealed form, format %d", size, rec.Data[:3], format)
		}
	}
}

// kmsCalls is a KMS client that counts GenerateDataKey and Decrypt apart.
type kmsCalls struct {
	idemkms.KMSAPI
	generate, decrypt int
}

func (c *kmsCalls) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, o ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	c.generate++
	return c.KMSAPI.GenerateDataKey(ctx, in, o...)
}

func (c *kmsCalls) Decrypt(ctx context.Context, in *kms.DecryptInput, o ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	c.decrypt++
	return c.KMSAPI.Decrypt(ctx, in, o...)
}

// rawStore is a store under idemkms with what a table reader can do: read the
// stored result of a record and copy a record to another id.
type rawStore struct {
	name   string
	store  idempotent.Store
	stored func(t *testing.T, id string) []byte
	copy   func(t *testing.T, from, to string)
}

func redisRaw(t *testing.T) rawStore {
	rs, err := redisserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	st := redisstore.New(rc)
	return rawStore{
		name:  "redis",
		store: st,
		stored: func(t *testing.T, id string) []byte {
			// One string per record: a header line, then the stored bytes.
			b, err := rc.Get(t.Context(), st.Key(id)).Bytes()
			if err != nil {
				t.Fatalf("GET %s: %v", st.Key(id), err)
			}
			_, data, ok := bytes.Cut(b, []byte("\n"))
			if !ok {
				t.Fatalf("GET %s: no header line in %q", st.Key(id), b)
			}
			return data
		},
		copy: func(t *testing.T, from, to string) { // as a dump restored under another key
			if ok, err := rc.Copy(t.Context(), st.Key(from), st.Key(to), 0, false).Result(); err != nil || ok != 1 {
				t.Fatalf("COPY: %v %v", ok, err)
			}
		},
	}
}

func memoryRaw() rawStore {
	m := idempotent.NewMemoryStore()
	get := func(t *testing.T, id string) *idempotent.Record {
		rec, err := m.Get(t.Context(), id)
		if err != nil || rec == nil {
			t.Fatalf("Get %s: %v %v", id, rec, err)
		}
		return rec
	}
	return rawStore{
		name:   "memory",
		store:  m,
		stored: func(t *testing.T, id string) []byte { return get(t, id).Data },
		copy: func(t *testing.T, from, to string) {
			src := get(t, from)
			now := time.Now()
			rec := idempotent.Record{ID: to, Status: idempotent.StatusInProgress, Owner: "copier",
				Expiration: src.Expiration, LeaseExpiration: now.Add(time.Minute)}
			if _, ok, err := m.Acquire(t.Context(), rec, now); err != nil || !ok {
				t.Fatalf("copy: acquired=%v %v", ok, err)
			}
			rec.Status, rec.LeaseExpiration, rec.Data = idempotent.StatusCompleted, time.Time{}, src.Data
			if err := m.Complete(t.Context(), rec); err != nil {
				t.Fatalf("copy: %v", err)
			}
		},
	}
}

// TestIdemkmsOverStores runs idemkms over the Redis store (a real
// redis-server) and the memory store, through the real local-kms: the store
// holds only the sealed result; a cold container replays it with one
// Decrypt; a record copied to another id fails closed (a
// *CorruptRecordError from idemkms, the handler does not run).
func TestIdemkmsOverStores(t *testing.T) {
	kc, err := localKMSClient()
	if err != nil {
		t.Fatal(err)
	}
	for _, mk := range []func(*testing.T) rawStore{redisRaw, func(*testing.T) rawStore { return memoryRaw() }} {
		for _, size := range []int{200, 20480} {
			raw := mk(t)
			t.Run(raw.name+"/"+strconv.Itoa(size), func(t *testing.T) {
				ctx := t.Context()
				result := json.RawMessage(benchdata.JSON(size, 3))
				runs := 0
				fn := func(context.Context) (json.RawMessage, error) { runs++; return result, nil }
				warm, err := idemkms.Wrap(raw.store, &kmsCalls{KMSAPI: kc}, benchKMSKey)
				if err != nil {
					t.Fatal(err)
				}
				if v, err := idempotent.Do(ctx, idempotent.New(warm), "pay", "a", fn); err != nil || !bytes.Equal(v, result) || runs != 1 {
					t.Fatalf("first: %d bytes, runs=%d, %v", len(v), runs, err)
				}
				idA, idB := idempotent.New(idempotent.NewMemoryStore()).RecordID("pay", "a"), idempotent.New(idempotent.NewMemoryStore()).RecordID("pay", "b")
				if d := raw.stored(t, idA); !bytes.HasPrefix(d, []byte("IK")) || bytes.Contains(d, []byte(`"orderId"`)) {
					t.Fatalf("%s holds %q..., want the sealed form", raw.name, d[:min(len(d), 8)])
				}
				calls := &kmsCalls{KMSAPI: kc}
				cold, err := idemkms.Wrap(raw.store, calls, benchKMSKey)
				if err != nil {
					t.Fatal(err)
				}
				if v, err := idempotent.Do(ctx, idempotent.New(cold), "pay", "a", fn); err != nil || !bytes.Equal(v, result) || runs != 1 {
					t.Fatalf("cold replay: %d bytes, runs=%d, %v", len(v), runs, err)
				}
				if calls.generate != 0 || calls.decrypt != 1 {
					t.Fatalf("cold replay: %d GenerateDataKey, %d Decrypt; want 0, 1", calls.generate, calls.decrypt)
				}
				raw.copy(t, idA, idB)
				for name, s := range map[string]idempotent.Store{"warm": warm, "cold": cold} {
					v, err := idempotent.Do(ctx, idempotent.New(s), "pay", "b", fn)
					var ce *idempotent.CorruptRecordError
					if runs != 1 || v != nil || !errors.As(err, &ce) || ce.RecordID != idB || !strings.Contains(err.Error(), "idemkms") {
						t.Fatalf("%s, copied record: %d bytes, runs=%d, err=%v; want idemkms's *CorruptRecordError for %s and no run", name, len(v), runs, err, idB)
					}
				}
			})
		}
	}
}
