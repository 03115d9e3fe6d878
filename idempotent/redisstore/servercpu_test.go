package redisstore_test

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

// BenchmarkServerCPU reports what each operation of the store costs the
// server: the microseconds of server CPU of every command it sends (INFO
// commandstats, reset before each case; plain commands and EVALSHA alike),
// per operation, next to the plain commands of the floor (SET NX GET, SET,
// GET); and the commands per operation. The client's time is not in it.
//
//	cd idempotent/redisstore && go test -run '^$' -bench ServerCPU -benchtime 5000x
func BenchmarkServerCPU(b *testing.B) {
	client, calls := testredis.CountingClient(b)
	store := redisstore.New(client, redisstore.WithKeyPrefix(testredis.Prefix(b)))
	ctx := b.Context()
	data := jsonData(200)
	big := jsonData(20 << 10)
	must := func(err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	rec := func(key, owner string) idempotent.Record {
		r := held(owner)
		r.ID = key
		return r
	}
	// Teach the server every script and seed the records the cases read.
	for _, k := range []string{"replayed", "replayed-20k"} {
		_, _, err := store.Acquire(ctx, rec(k, "owner-1"), now)
		must(err)
		d := data
		if k == "replayed-20k" {
			d = big
		}
		must(store.Complete(ctx, done(rec(k, "owner-1"), d, now.Add(time.Hour))))
	}
	_, _, err := store.Acquire(ctx, rec("running", "owner-1"), now)
	must(err)
	_, err = store.Get(ctx, "replayed")
	must(err)
	_ = store.Release(ctx, "nothing", "owner-1")
	must(client.Set(ctx, "floor:{floor-set-0}", data, time.Hour).Err())

	key := func(c string, i int) string { return c + "-" + strconv.Itoa(i) }
	acquire := func(k, owner string, at time.Time) error {
		_, _, err := store.Acquire(ctx, rec(k, owner), at)
		return err
	}
	// Each case's setup writes, before the server's counters are reset, the
	// records its n operations need.
	cases := []struct {
		name  string
		setup func(c string, n int)
		op    func(c string, i int) error
	}{
		{name: "acquire-new", op: func(c string, i int) error {
			_, ok, err := store.Acquire(ctx, rec(key(c, i), "owner-1"), now)
			if err == nil && !ok {
				b.Fatal("not acquired")
			}
			return err
		}},
		{name: "complete",
			setup: func(c string, n int) {
				for i := range n {
					must(acquire(key(c, i), "owner-1", now))
				}
			},
			op: func(c string, i int) error {
				return store.Complete(ctx, done(rec(key(c, i), "owner-1"), data, now.Add(time.Hour)))
			}},
		{name: "acquire-replay-200B", op: func(string, int) error {
			return acquire("replayed", "owner-2", now)
		}},
		{name: "acquire-replay-20KB", op: func(string, int) error {
			return acquire("replayed-20k", "owner-2", now)
		}},
		{name: "acquire-in-progress", op: func(string, int) error {
			return acquire("running", "owner-2", now)
		}},
		{name: "acquire-takeover",
			setup: func(c string, n int) {
				for i := range n {
					must(acquire(key(c, i), "owner-1", now))
				}
			},
			op: func(c string, i int) error {
				// The lease of owner-1 has ended: a takeover.
				return acquire(key(c, i), "owner-2", now.Add(time.Minute))
			}},
		{name: "release",
			setup: func(c string, n int) {
				for i := range n {
					must(acquire(key(c, i), "owner-1", now))
				}
			},
			op: func(c string, i int) error {
				return store.Release(ctx, key(c, i), "owner-1")
			}},
		{name: "get", op: func(string, int) error {
			_, err := store.Get(ctx, "replayed")
			return err
		}},
		{name: "floor-set-nx-get", op: func(c string, i int) error {
			err := client.SetArgs(ctx, "floor:{"+key(c, i)+"}", "INPROGRESS", redis.SetArgs{Mode: "NX", Get: true, TTL: time.Hour}).Err()
			if err == redis.Nil {
				err = nil
			}
			return err
		}},
		{name: "floor-set", op: func(c string, i int) error {
			return client.Set(ctx, "floor:{"+key(c, i)+"}", data, time.Hour).Err()
		}},
		{name: "floor-get", op: func(string, int) error {
			return client.Get(ctx, "floor:{floor-set-0}").Err()
		}},
	}
	runs := 0
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			runs++
			tag := c.name + "-" + strconv.Itoa(runs)
			if c.setup != nil {
				c.setup(tag, b.N)
			}
			m := startServerMeter(b, client, calls)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := c.op(tag, i); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			m.report(b, b.N)
		})
	}
	client.FlushDB(ctx)
}

// serverMeter measures the server's time over a benchmark's loop, two ways:
//
//   - server-µs/op: the microseconds the server spent executing the
//     commands the client sent, from INFO commandstats. A script's commands
//     are in its EVALSHA's time and also counted under their own names, so
//     a command name is counted only for the share of its calls the client
//     sent itself (calls tells them); that share is exact where a command is
//     sent only by the client or only by scripts, and a mean where it is
//     both (a takeover's SET).
//   - server-cpu-µs/op: the server process's CPU time (INFO cpu, user and
//     system), which also holds reading, parsing and answering each command:
//     what a round trip costs the server beyond the command.
//
// cmds/op is the commands the client sent per operation.
type serverMeter struct {
	client *redis.Client
	calls  *testredis.Counter
	cpu    float64
}

func startServerMeter(b *testing.B, client *redis.Client, calls *testredis.Counter) serverMeter {
	b.Helper()
	if err := client.ConfigResetStat(b.Context()).Err(); err != nil {
		b.Fatal(err)
	}
	m := serverMeter{client: client, calls: calls, cpu: serverCPU(b, client)}
	calls.Reset()
	return m
}

func (m serverMeter) report(b *testing.B, n int) {
	b.Helper()
	cpu := serverCPU(b, m.client)
	served, usec := commandStats(b, m.client)
	var total float64
	var cmds int
	for name, u := range usec {
		c := m.calls.Count(name)
		if c == 0 || served[name] == 0 || name == "INFO" || strings.HasPrefix(name, "CONFIG") { // the meter's own
			continue
		}
		cmds += c
		total += u * min(1, float64(c)/float64(served[name]))
	}
	if cmds < n {
		b.Fatalf("the client sent %d commands (%s) for %d operations", cmds, m.calls, n)
	}
	b.ReportMetric(total/float64(n), "server-µs/op")
	b.ReportMetric((cpu-m.cpu)*1e6/float64(n), "server-cpu-µs/op")
	b.ReportMetric(float64(cmds)/float64(n), "cmds/op")
}

// commandStats reads INFO commandstats: the calls and microseconds of each
// command, by name (upper case, a subcommand's as "CONFIG|RESETSTAT").
func commandStats(b *testing.B, client *redis.Client) (map[string]int64, map[string]float64) {
	b.Helper()
	info, err := client.Info(b.Context(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	calls, usec := map[string]int64{}, map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, line, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "cmdstat_"), ":")
		if !ok {
			continue
		}
		name = strings.ToUpper(name)
		for _, kv := range strings.Split(line, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				calls[name], _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				usec[name], _ = strconv.ParseFloat(v, 64)
			}
		}
	}
	return calls, usec
}

// serverCPU reads the server's CPU time in seconds (INFO cpu: used_cpu_user
// + used_cpu_sys).
func serverCPU(b *testing.B, client *redis.Client) float64 {
	b.Helper()
	info, err := client.Info(b.Context(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu: %s: %v", k, err)
			}
			sum += f
		}
	}
	return sum
}
