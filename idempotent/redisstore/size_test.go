package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

// jsonData is size bytes of JSON-like text (compresses about 5:1).
func jsonData(size int) []byte {
	b := make([]byte, 0, size+64)
	for i := 0; len(b) < size; i++ {
		b = fmt.Appendf(b, `{"line":%d,"sku":"SKU-%05d","status":"SHIPPED"},`, i, i*7919%100000)
	}
	return b[:size]
}

// noise is size bytes that do not compress.
func noise(size int, seed uint64) []byte {
	b := make([]byte, size)
	x := seed | 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// TestLargeResults completes records with results up to Lambda's 6 MB
// response limit, compressible and not, and replays them byte for byte
// through Acquire and through the core. It logs what the server holds.
func TestLargeResults(t *testing.T) {
	const mb6 = 6 << 20
	client := testredis.Client(t)
	tests := []struct {
		name string
		data []byte
		opts []func(*redisstore.Options)
		// maxStored bounds the stored data: compressed when it pays.
		maxStored int
	}{
		{name: "6 MB JSON", data: jsonData(mb6), maxStored: mb6 / 3},
		{name: "6 MB noise", data: noise(mb6, 7), maxStored: mb6},
		{name: "6 MB JSON, compression off", data: jsonData(mb6), opts: []func(*redisstore.Options){func(o *redisstore.Options) { o.CompressThreshold = -1 }}, maxStored: mb6},
		{name: "511 B JSON stays plain", data: jsonData(511), maxStored: 511},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := redisstore.New(client, append([]func(*redisstore.Options){redisstore.WithKeyPrefix(testredis.Prefix(t))}, tt.opts...)...)
			if _, ok, err := store.Acquire(t.Context(), held("owner-1"), now); err != nil || !ok {
				t.Fatalf("Acquire = %v, %v", ok, err)
			}
			if err := store.Complete(t.Context(), done(held("owner-1"), tt.data, now.Add(time.Hour))); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			info, err := store.Inspect(t.Context(), testKey)
			if err != nil || info == nil {
				t.Fatalf("Inspect = %+v, %v", info, err)
			}
			stored := int64(info.StoredBytes)
			mem := client.MemoryUsage(t.Context(), store.Key(testKey)).Val()
			t.Logf("result %d B: data %d B, MEMORY USAGE %d B", len(tt.data), stored, mem)
			if stored > int64(tt.maxStored) || stored == 0 {
				t.Fatalf("stored %d B, want 1..%d", stored, tt.maxStored)
			}
			existing, ok, err := store.Acquire(t.Context(), held("owner-2"), now)
			if err != nil || ok || existing == nil {
				t.Fatalf("replay Acquire = %v, %v, %v", existing, ok, err)
			}
			if !bytes.Equal(existing.Data, tt.data) {
				t.Fatalf("replayed %d B, differs from the %d B stored", len(existing.Data), len(tt.data))
			}
		})
	}
	t.Run("through Do", func(t *testing.T) {
		store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(t)))
		// Letters only, so that the JSON-encoded result is the string plus
		// its quotes: 6 MB in all, compressing to about 60 %.
		letters := noise(mb6-2, 11)
		for i, c := range letters {
			letters[i] = 'a' + c%26
		}
		data := string(letters)
		runs := 0
		fn := func(context.Context) (string, error) { runs++; return data, nil }
		for i := range 2 {
			out, err := idempotent.Do(t.Context(), idempotent.New(store, idempotent.WithName("orders")), "charge", "big", fn)
			if err != nil || out != data {
				t.Fatalf("Do #%d = %d B, %v", i, len(out), err)
			}
		}
		if runs != 1 {
			t.Fatalf("runs = %d, want 1", runs)
		}
	})
}

// BenchmarkStore measures a new key (Acquire + Complete) and a replay
// (Acquire finding the completed record) through the core against the local
// redis-server, reporting round trips per operation.
//
//	cd idempotent/redisstore && go test -run '^$' -bench . -benchmem
func BenchmarkStore(b *testing.B) {
	client, calls := testredis.CountingClient(b)
	for _, size := range []int{200, 20 << 10, 6 << 20} {
		data := string(jsonData(size))
		fn := func(context.Context) (string, error) { return data, nil }
		store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(b)))
		opts := []idempotent.Option{idempotent.WithName("bench")}
		name := strconv.Itoa(size) + "B"
		if _, err := idempotent.Do(b.Context(), idempotent.New(store, opts...), "charge", "replayed", fn); err != nil {
			b.Fatal(err)
		}
		b.Run("new/"+name, func(b *testing.B) {
			calls.Reset()
			i := 0
			for b.Loop() {
				i++
				if _, err := idempotent.Do(b.Context(), idempotent.New(store, opts...), "charge", "new-"+strconv.Itoa(i), fn); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(calls.Total())/float64(i), "calls/op")
		})
		b.Run("replay/"+name, func(b *testing.B) {
			calls.Reset()
			i := 0
			for b.Loop() {
				i++
				if _, err := idempotent.Do(b.Context(), idempotent.New(store, opts...), "charge", "replayed", fn); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(calls.Total())/float64(i), "calls/op")
		})
		client.FlushDB(b.Context()) // the 6 MB rows fill memory quickly
	}
}

// BenchmarkStoreOps measures the store alone, without the core's JSON
// encoding: Acquire + Complete of a new key, and the replaying Acquire of a
// completed one, for results of 200 B, 20 KB and 6 MB (JSON text). It
// reports the client's CPU per operation (this process's user and system
// time; the server is a process of its own), which the round trips' waiting
// does not blur as it does ns/op.
func BenchmarkStoreOps(b *testing.B) {
	client := testredis.Client(b)
	for _, size := range []int{200, 20 << 10, 6 << 20} {
		data := jsonData(size)
		store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(b)))
		name := strconv.Itoa(size) + "B"
		if _, _, err := store.Acquire(b.Context(), held("owner-1"), now); err != nil {
			b.Fatal(err)
		}
		if err := store.Complete(b.Context(), done(held("owner-1"), data, now.Add(time.Hour))); err != nil {
			b.Fatal(err)
		}
		runs := 0
		b.Run("new/"+name, func(b *testing.B) {
			runs++ // -count and b.Loop's rounds run this again: new keys each time
			i := 0
			cpu := startCPU()
			for b.Loop() {
				i++
				rec := held("owner-1")
				rec.ID = "bench#" + strconv.Itoa(runs) + "#" + strconv.Itoa(i)
				if _, ok, err := store.Acquire(b.Context(), rec, now); err != nil || !ok {
					b.Fatal(ok, err)
				}
				if err := store.Complete(b.Context(), done(rec, data, now.Add(time.Hour))); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b, i)
		})
		b.Run("replay/"+name, func(b *testing.B) {
			i := 0
			cpu := startCPU()
			for b.Loop() {
				i++
				existing, ok, err := store.Acquire(b.Context(), held("owner-2"), now)
				if err != nil || ok || len(existing.Data) != size {
					b.Fatal(ok, err)
				}
			}
			cpu.report(b, i)
		})
		client.FlushDB(b.Context())
	}
}

// cpuMeter measures the process's CPU time over a benchmark's loop.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuMeter {
	t, ok := processCPU()
	return cpuMeter{start: t, ok: ok}
}

// report adds the metric client-µs/op: the CPU time since startCPU over n
// operations (none where the platform does not tell).
func (m cpuMeter) report(b *testing.B, n int) {
	t, ok := processCPU()
	if !m.ok || !ok || n == 0 {
		return
	}
	b.ReportMetric(float64(t-m.start)/float64(time.Microsecond)/float64(n), "client-µs/op")
}

// BenchmarkFloor is the bare floor the store is measured against: the fewest
// plain commands that claim a key and store a result, with no script, no
// fencing, no encoding. New: SET NX GET (claim; returns the old value) and
// SET (the result); replay: SET NX GET finding the result. Same sizes,
// client and client-µs/op as BenchmarkStoreOps.
func BenchmarkFloor(b *testing.B) {
	client := testredis.Client(b)
	for _, size := range []int{200, 20 << 10, 6 << 20} {
		data := jsonData(size)
		prefix := testredis.Prefix(b)
		name := strconv.Itoa(size) + "B"
		replayed := prefix + "{replayed}"
		if err := client.Set(b.Context(), replayed, data, time.Hour).Err(); err != nil {
			b.Fatal(err)
		}
		claim := func(key string) (string, error) {
			return client.SetArgs(b.Context(), key, "INPROGRESS", redis.SetArgs{Mode: "NX", Get: true, TTL: time.Hour}).Result()
		}
		b.Run("new/"+name, func(b *testing.B) {
			i := 0
			cpu := startCPU()
			for b.Loop() {
				i++
				key := prefix + "{" + strconv.Itoa(i) + "}"
				if _, err := claim(key); !errors.Is(err, redis.Nil) {
					b.Fatal(err)
				}
				if err := client.Set(b.Context(), key, data, time.Hour).Err(); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b, i)
		})
		b.Run("replay/"+name, func(b *testing.B) {
			i := 0
			cpu := startCPU()
			for b.Loop() {
				i++
				if v, err := claim(replayed); err != nil || len(v) != size {
					b.Fatal(err)
				}
			}
			cpu.report(b, i)
		})
		client.FlushDB(b.Context())
	}
}
