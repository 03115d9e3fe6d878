package main

// Where the time goes on the local server (issue 15): the same invocations
// as BenchmarkTax, sent to a real dynalite that this test binary starts,
// reporting the CPU time per invocation of the server process (read from
// /proc/<pid>/stat, user + system) next to that of this process. The gap
// between idemlambda and the floor on `make bench` is the sum of the two:
// with 2 cores and 8 workers both processes compete for the same CPUs. The
// side floor-longkey is the floor with record ids as long as ours, to tell
// what the key's length costs the server from what our expressions and
// attributes do.
//
//	go test -run '^$' -bench ServerCPU -benchtime 3000x ./tools/bench
//
// The sides take turns in ten rounds; <side>-server-cpu-ns/op and
// <side>-cpu-ns/op are their totals over the rounds per invocation. The
// server's CPU time has the resolution of the kernel's clock tick (10 ms)
// per round: use at least 3000 invocations.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/benchdata"
	"github.com/idemlambda/idemlambda/internal/dynamocost"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

func TestMain(m *testing.M) { testdynamo.Main(m) }

func BenchmarkServerCPU(b *testing.B) {
	ctx := context.Background()
	pid := testdynamo.ServerPID(b)
	if pid == 0 {
		b.Skipf("the server runs elsewhere (%s is set): its CPU time cannot be read", testdynamo.EnvEndpoint)
	}
	client := testdynamo.NewClient(testdynamo.Endpoint(b))
	for _, table := range []string{"tax-floor", "tax-idemlambda"} {
		if err := dynamostore.CreateTable(ctx, client, table); err != nil {
			b.Fatal(err)
		}
	}
	payload := benchdata.JSON(200, 1)
	sides := taxSides(client, payload)
	// The floor with record ids as long as ours ("<name>#" and 64 hex
	// digits of SHA-256): tells the cost of the key's length from that of
	// our expressions and attributes.
	sides["floor-longkey"] = func(ctx context.Context, key string) ([]byte, error) {
		sum := sha256.Sum256([]byte(key))
		return sides["floor"](ctx, hex.EncodeToString(sum[:]))
	}
	names := []string{"floor", "floor-longkey", "idemlambda"}
	const seeded = 64
	for _, side := range names {
		for i := range seeded {
			if _, err := sides[side](ctx, "replay-"+strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Warm the server's JIT and both sides' connections up before measuring.
	for i := range 300 {
		for _, side := range names {
			if _, err := sides[side](ctx, "warm-"+strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	var run atomic.Int64
	for _, workers := range []int{1, 8} {
		for _, scenario := range []string{"new", "replay"} {
			b.Run(fmt.Sprintf("%s/workers=%d", scenario, workers), func(b *testing.B) {
				// The sides take turns, round after round, so that the load
				// of the shared machine hits them alike.
				const rounds = 10
				srv := map[string]int64{}
				own := map[string]int64{}
				ops := map[string]int64{}
				for r := range rounds {
					n := b.N / rounds
					if r < b.N%rounds {
						n++
					}
					for _, side := range names {
						s0, err := procCPU(pid)
						if err != nil {
							b.Fatal(err)
						}
						c0 := cpuTime()
						prefix := "new-" + strconv.FormatInt(run.Add(1), 10) + "-"
						if err := drive(ctx, sides[side], workers, n, func(i int64) string {
							if scenario == "replay" {
								return "replay-" + strconv.FormatInt(i%seeded, 10)
							}
							return prefix + strconv.FormatInt(i, 10)
						}, len(payload)); err != nil {
							b.Fatal(err)
						}
						s1, err := procCPU(pid)
						if err != nil {
							b.Fatal(err)
						}
						srv[side] += s1 - s0
						own[side] += cpuTime() - c0
						ops[side] += int64(n)
					}
				}
				for _, side := range names {
					b.ReportMetric(float64(srv[side])/float64(ops[side]), side+"-server-cpu-ns/op")
					b.ReportMetric(float64(own[side])/float64(ops[side]), side+"-cpu-ns/op")
				}
			})
		}
	}
}

// drive runs n invocations of invoke on workers goroutines, the i-th with
// key(i), and checks each answer's length.
func drive(ctx context.Context, invoke invoker, workers, n int, key func(int64) string, want int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				out, err := invoke(ctx, key(i))
				if err == nil && len(out) != want {
					err = fmt.Errorf("got %d bytes, want %d", len(out), want)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// procCPU is the CPU time (user + system) process pid has used so far, in
// nanoseconds, from /proc/<pid>/stat (in clock ticks of 10 ms: USER_HZ is
// 100 on Linux).
func procCPU(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields start after its ')'.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("cannot read /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cannot read /proc/%d/stat: %q", pid, f[11:13])
	}
	return (utime + stime) * 10_000_000, nil
}

// BenchmarkServerParse reports the CPU the local server spends reading each
// request of a new invocation before it touches any data (JSON, validation,
// expression parsing: tools/bench/exprcost.cjs), for the floor and for
// idemlambda, in ns per request. One iteration is one run of the script.
//
//	go test -run '^$' -bench ServerParse -benchtime 1x ./tools/bench
func BenchmarkServerParse(b *testing.B) {
	if _, err := exec.LookPath("node"); err != nil {
		b.Skip("node is not installed")
	}
	payload := benchdata.JSON(200, 1)
	bodies := map[string]string{}
	for _, side := range []string{"floor", "idemlambda"} {
		rec := &recorder{next: &stub{}}
		if _, err := taxSides(stubClient(rec), payload)[side](context.Background(), "seed"); err != nil {
			b.Fatal(err)
		}
		bodies[side+"/put"], bodies[side+"/update"] = string(rec.put), string(rec.upd)
	}
	file := filepath.Join(b.TempDir(), "requests.json")
	js, err := json.Marshal(bodies)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(file, js, 0o600); err != nil {
		b.Fatal(err)
	}
	var ns map[string]float64
	for b.Loop() {
		out, err := exec.Command("node", "exprcost.cjs", file).Output()
		if err != nil {
			b.Fatalf("exprcost.cjs: %v", err)
		}
		if err := json.Unmarshal(out, &ns); err != nil {
			b.Fatalf("exprcost.cjs: %v: %s", err, out)
		}
	}
	for name, v := range ns {
		b.ReportMetric(v, strings.ReplaceAll(name, "/", "-")+"-ns")
	}
}

// BenchmarkMeter reports what make bench's counting proxy
// (internal/dynamocost.Meter, in the bench process) adds to each
// invocation: the tax benchmark's invocations through the stub with and
// without the Meter in front of it. On the 2 shared cores of the 8-worker
// rows, that CPU competes with the client and the server.
//
//	go test -run '^$' -bench Meter -benchmem -benchtime 3000x -count 4 ./tools/bench
func BenchmarkMeter(b *testing.B) {
	payload := benchdata.JSON(200, 1)
	for _, metered := range []bool{false, true} {
		for _, side := range []string{"floor", "idemlambda"} {
			b.Run(fmt.Sprintf("%s/meter=%t", side, metered), func(b *testing.B) {
				var rt http.RoundTripper = &stub{}
				if metered {
					rt = &dynamocost.Meter{Next: describer{rt}}
				}
				invoke := taxSides(stubClient(rt), payload)[side]
				b.ReportAllocs()
				cpu0 := cpuTime()
				for i := 0; b.Loop(); i++ {
					if _, err := invoke(context.Background(), "k-"+strconv.Itoa(i)); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// describer answers DescribeTable (the Meter reads the key schema) with a
// table keyed by "id", and passes every other request on.
type describer struct{ next http.RoundTripper }

func (d describer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") != "DynamoDB_20120810.DescribeTable" {
		return d.next.RoundTrip(r)
	}
	out := []byte(`{"Table":{"KeySchema":[{"AttributeName":"id","KeyType":"HASH"}],` +
		`"AttributeDefinitions":[{"AttributeName":"id","AttributeType":"S"}],"TableStatus":"ACTIVE"}}`)
	return &http.Response{
		StatusCode:    http.StatusOK,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:          io.NopCloser(bytes.NewReader(out)),
		ContentLength: int64(len(out)),
		Request:       r,
	}, nil
}
