package redisstore_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent/internal/zdata"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

// mixedJSON is size bytes of JSON with random ids and amounts in it, which
// compresses about 2:1 — less than jsonData's repetitive lines (about 5:1).
func mixedJSON(size int) []byte {
	rng := rand.New(rand.NewPCG(uint64(size), 3))
	b := make([]byte, 0, size+128)
	for i := 0; len(b) < size; i++ {
		b = fmt.Appendf(b, `{"id":"%016x%016x","amount":%d,"currency":"EUR","at":"2026-12-%02dT%02d:%02d:%02dZ"},`,
			rng.Uint64(), rng.Uint64(), rng.IntN(1_000_000), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60))
	}
	return b[:size]
}

// BenchmarkCompression weighs compressing results on Redis: for results of
// 512 B to 1 MB of two kinds of JSON, stored plain (compression off) and
// zstd (threshold 512, the default of dynamostore), a new key (Acquire +
// Complete) and a replay (Acquire finding the completed record), reporting
// the client's CPU per operation, the server's (serverMeter), the bytes one
// record takes in the server (MEMORY USAGE) and the bytes on the wire per
// operation, both ways (INFO stats, total_net_input_bytes +
// total_net_output_bytes).
//
//	cd idempotent/redisstore && go test -run '^$' -bench Compression -benchtime 2000x
func BenchmarkCompression(b *testing.B) {
	client, calls := testredis.CountingClient(b)
	kinds := []struct {
		name string
		gen  func(int) []byte
	}{{"json", jsonData}, {"mixed-json", mixedJSON}}
	modes := []struct {
		name      string
		threshold int
	}{{"plain", -1}, {"zstd", 512}}
	for _, kind := range kinds {
		for _, size := range []int{512, 2 << 10, 8 << 10, 20 << 10, 100 << 10, 1 << 20} {
			data := kind.gen(size)
			for _, mode := range modes {
				store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(b)),
					func(o *redisstore.Options) { o.CompressThreshold = mode.threshold })
				name := kind.name + "/" + strconv.Itoa(size) + "B/" + mode.name
				if _, _, err := store.Acquire(b.Context(), held("owner-1"), now); err != nil {
					b.Fatal(err)
				}
				if err := store.Complete(b.Context(), done(held("owner-1"), data, now.Add(time.Hour))); err != nil {
					b.Fatal(err)
				}
				stored := client.MemoryUsage(b.Context(), store.Key(testKey)).Val()
				runs := 0
				b.Run("new/"+name, func(b *testing.B) {
					runs++
					net, srv, cpu := startNet(b, client), startServerMeter(b, client, calls), startCPU()
					for i := 0; i < b.N; i++ {
						rec := held("owner-1")
						rec.ID = "new#" + strconv.Itoa(runs) + "#" + strconv.Itoa(i)
						if _, ok, err := store.Acquire(b.Context(), rec, now); err != nil || !ok {
							b.Fatal(ok, err)
						}
						if err := store.Complete(b.Context(), done(rec, data, now.Add(time.Hour))); err != nil {
							b.Fatal(err)
						}
					}
					cpu.report(b, b.N)
					srv.report(b, b.N)
					net.report(b, b.N)
					b.ReportMetric(float64(stored), "stored-B")
				})
				b.Run("replay/"+name, func(b *testing.B) {
					net, srv, cpu := startNet(b, client), startServerMeter(b, client, calls), startCPU()
					for i := 0; i < b.N; i++ {
						existing, ok, err := store.Acquire(b.Context(), held("owner-2"), now)
						if err != nil || ok || len(existing.Data) != size {
							b.Fatal(ok, err)
						}
					}
					cpu.report(b, b.N)
					srv.report(b, b.N)
					net.report(b, b.N)
				})
				client.FlushDB(b.Context())
			}
		}
	}
}

// netMeter measures the bytes the server read and wrote over a loop.
type netMeter struct {
	client *redis.Client
	start  int64
}

func startNet(b *testing.B, client *redis.Client) netMeter {
	return netMeter{client: client, start: netBytes(b, client)}
}

// report adds wire-B/op: the bytes both ways per operation (less the two
// INFO calls of the meter, which are a few KB over the whole loop).
func (m netMeter) report(b *testing.B, n int) {
	b.ReportMetric(float64(netBytes(b, m.client)-m.start)/float64(n), "wire-B/op")
}

func netBytes(b *testing.B, client *redis.Client) int64 {
	b.Helper()
	info, err := client.Info(b.Context(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum int64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if ok && (k == "total_net_input_bytes" || k == "total_net_output_bytes") {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatalf("INFO stats: %s: %v", k, err)
			}
			sum += n
		}
	}
	return sum
}

// BenchmarkZstd is the client CPU compression adds, alone: zdata.Encode
// (Complete) and zdata.Decode (a replay) of the results BenchmarkCompression
// stores, with the ratio they reach.
//
//	cd idempotent/redisstore && go test -run '^$' -bench Zstd
func BenchmarkZstd(b *testing.B) {
	for _, kind := range []struct {
		name string
		gen  func(int) []byte
	}{{"json", jsonData}, {"mixed-json", mixedJSON}} {
		for _, size := range []int{512, 2 << 10, 8 << 10, 20 << 10, 100 << 10, 1 << 20} {
			data := kind.gen(size)
			z, format, err := zdata.Encode(data, 0)
			if err != nil || format != zdata.Zstd {
				b.Fatalf("Encode = %q, %v", format, err)
			}
			name := kind.name + "/" + strconv.Itoa(size) + "B"
			b.Run("encode/"+name, func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, _, err := zdata.Encode(data, 0); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(size)/float64(len(z)), "ratio")
			})
			b.Run("decode/"+name, func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, err := zdata.Decode(z, zdata.Zstd); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestCompressionSettingsInteroperate: whatever a store's CompressThreshold,
// it reads the records of stores with another one — compressed records by a
// store that does not compress, plain ones by one that does — since each
// record's header says how its data is stored.
func TestCompressionSettingsInteroperate(t *testing.T) {
	client := testredis.Client(t)
	prefix := testredis.Prefix(t)
	data := jsonData(20 << 10)
	off := func(o *redisstore.Options) { o.CompressThreshold = -1 }
	for _, tt := range []struct {
		name           string
		writer, reader []func(*redisstore.Options)
		format         string
	}{
		{"compressed, read without compression", nil, []func(*redisstore.Options){off}, "zstd"},
		{"plain, read with compression", []func(*redisstore.Options){off}, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := redisstore.New(client, append([]func(*redisstore.Options){redisstore.WithKeyPrefix(prefix)}, tt.writer...)...)
			r := redisstore.New(client, append([]func(*redisstore.Options){redisstore.WithKeyPrefix(prefix)}, tt.reader...)...)
			client.Del(t.Context(), w.Key(testKey))
			if _, ok, err := w.Acquire(t.Context(), held("owner-1"), now); err != nil || !ok {
				t.Fatalf("Acquire = %v, %v", ok, err)
			}
			if err := w.Complete(t.Context(), done(held("owner-1"), data, now.Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
			v := client.Get(t.Context(), w.Key(testKey)).Val()
			if header, _, _ := strings.Cut(v, "\n"); !strings.HasSuffix(header, " "+tt.format) {
				t.Fatalf("stored header %q, want format %q", header, tt.format)
			}
			got, err := r.Get(t.Context(), testKey)
			if err != nil || got == nil || string(got.Data) != string(data) {
				t.Fatalf("Get = %v; want the %d B result", err, len(data))
			}
			existing, ok, err := r.Acquire(t.Context(), held("owner-2"), now)
			if err != nil || ok || existing == nil || string(existing.Data) != string(data) {
				t.Fatalf("replay = %v, %v; want the %d B result", ok, err, len(data))
			}
		})
	}
}
