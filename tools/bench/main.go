// Command bench is `make bench`: one local dynalite, one counting proxy in
// front of it, and three implementations of the same handler — idemlambda
// (Wrap with dynamostore), powertools-ts (@aws-lambda-powertools/idempotency
// with its DynamoDB persistence layer, on Node) and floor (the bare requests
// an idempotent handler cannot do without) — run interleaved, round by
// round, so machine noise hits all three alike.
//
// Every row (implementation × scenario × workers × result size) reports the
// store calls, write and read units per invocation, as the proxy sees them
// (internal/dynamocost: the same count for all three), the p50 and p99
// latency and the throughput. It writes tools/bench/results.json and
// tools/bench/results.png and prints a markdown table.
//
//	kms/ctl.sh run -- dynalite/ctl.sh run -- go run ./tools/bench     (tools/bench/run.sh does this)
//
// idemlambda-kms (kms.go) is idemlambda with its results encrypted by
// idemkms under a key of the local-kms that run.sh starts (kms/ctl.sh), with
// a warm data-key cache; its rows also report their KMS calls.
//
// Two more implementations run on Redis (redis.go), on request only:
// -impls idemlambda-redis,floor-redis.
//
// AWS_ENDPOINT_URL_DYNAMODB must point at the server.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/idemkms"
	"github.com/idemlambda/idemlambda/internal/benchdata"
	"github.com/idemlambda/idemlambda/internal/dynamocost"
	"github.com/idemlambda/idemlambda/tools/internal/redisserver"
)

// Row is one line of results.json.
type Row struct {
	Impl            string   `json:"impl"`
	Scenario        string   `json:"scenario"`
	Workers         int      `json:"workers"`
	SizeBytes       int      `json:"size_bytes"`
	Ops             int      `json:"ops"`
	CallsPerOp      float64  `json:"calls_per_op"`
	WriteUnitsPerOp float64  `json:"write_units_per_op"`
	ReadUnitsPerOp  float64  `json:"read_units_per_op"`
	P50Ms           *float64 `json:"p50_ms"`
	P99Ms           *float64 `json:"p99_ms"`
	OpsPerS         float64  `json:"ops_per_s"`
	Error           string   `json:"error,omitempty"`

	// KMSCalls is the KMS calls of the measured rounds (idemlambda-kms only).
	KMSCalls *int `json:"kms_calls,omitempty"`
}

// spec is one round of one implementation in one row.
type spec struct {
	table    string
	scenario string
	workers  int
	dur      time.Duration
	minOps   int
	maxOps   int
	prefix   string   // new: keys are prefix-i
	keys     []string // replay: seeded keys, used round robin
	payload  []byte
	file     string // the payload, for the Node side
}

type outcome struct {
	lat      []time.Duration
	errors   int
	firstErr string
	elapsed  time.Duration
}

type impl interface {
	name() string
	seed(ctx context.Context, s spec) error
	run(ctx context.Context, s spec) (outcome, error)
}

var (
	flagDur   = flag.Duration("round", time.Second, "time per implementation per round per row")
	flagRound = flag.Int("rounds", 3, "interleaved rounds per row")
	flagOut   = flag.String("out", filepath.Join("tools", "bench"), "folder for results.json and results.png")
	flagSizes = flag.String("sizes", "200,20480,307200,1048576", "result sizes in bytes")
	flagWork  = flag.String("workers", "1,8", "concurrent workers")
	flagImpls = flag.String("impls", "idemlambda,idemlambda-readfirst,idemlambda-kms,powertools-ts,floor", "implementations, in order (also: store, idemlambda-redis, powertools-ts-redis, floor-redis)")
	flagProxy = flag.String("serve-proxy", "", "internal: serve the counting proxy to this endpoint and print its address (the bench starts itself so, in a process of its own)")
	flagProf  = flag.String("cpuprofile", "", "write a CPU profile of the run (the Go sides; the counting proxy runs in a process of its own) to this file")
	flagPlot  = flag.Bool("replot", false, "only redraw results.png and print the table from an existing results.json")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench: ")
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	if *flagPlot {
		return replot()
	}
	if *flagProxy != "" {
		return serveProxy(*flagProxy)
	}
	target := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB")
	if target == "" {
		return errors.New("AWS_ENDPOINT_URL_DYNAMODB is not set (run me through dynalite/ctl.sh run --)")
	}
	ctx := context.Background()
	if *flagProf != "" {
		f, err := os.Create(*flagProf)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	meter, proxyURL, stop, err := startProxy(target)
	if err != nil {
		return err
	}
	defer stop()
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(proxyURL),
		Credentials:  credentials.NewStaticCredentialsProvider("bench", "bench", ""),
	})
	runID := strconv.FormatInt(time.Now().UnixMilli(), 36)

	var impls []impl
	var rs *redisserver.Server
	for _, name := range strings.Split(*flagImpls, ",") {
		if name == "idemlambda-redis" || name == "floor-redis" || name == "powertools-ts-redis" {
			if rs == nil {
				if rs, err = redisserver.Start(); err != nil {
					return err
				}
				defer rs.Close()
			}
			switch name {
			case "powertools-ts-redis":
				pt, err := startPowertoolsRedis(rs.Addr)
				if err != nil {
					return err
				}
				defer pt.close()
				impls = append(impls, pt)
			case "floor-redis":
				impls = append(impls, &floorRedis{newRedisSide(rs.Addr)})
			default:
				impls = append(impls, &oursRedis{newRedisSide(rs.Addr)})
			}
			continue
		}
		table := "bench-" + name + "-" + runID
		if err := dynamostore.CreateTable(ctx, client, table, func(o *dynamostore.Options) { o.Logger = quietLogger() }); err != nil {
			return err
		}
		meter.SetKey(table, "id")
		switch name {
		case "idemlambda":
			impls = append(impls, &ours{client: client, table: table})
		case "idemlambda-readfirst":
			impls = append(impls, &ours{client: client, table: table, readFirst: true})
		case "idemlambda-kms":
			o, err := newOursKMS(ctx, client, table, "warm-"+runID)
			if err != nil {
				return err
			}
			impls = append(impls, o)
		case "floor":
			impls = append(impls, &floor{client: client, table: table})
		case "store":
			impls = append(impls, &storeOnly{client: client, table: table})
		case "powertools-ts":
			pt, err := startPowertools(proxyURL, table, "")
			if err != nil {
				return err
			}
			defer pt.close()
			impls = append(impls, pt)
		default:
			return fmt.Errorf("unknown implementation %q", name)
		}
	}

	tmp, err := os.MkdirTemp("", "idembench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var rows []Row
	start := time.Now()
	scenarios := strings.Split(*flagScen, ",")
	for _, sc := range scenarios {
		if sc != "new" && sc != "replay" && sc != "batch-redelivery" {
			return fmt.Errorf("unknown scenario %q (new, replay, batch-redelivery)", sc)
		}
	}
	for _, scenario := range scenarios {
		for _, workers := range ints(*flagWork) {
			for _, size := range ints(*flagSizes) {
				payload := benchdata.JSON(size, 1)
				file := filepath.Join(tmp, fmt.Sprintf("payload-%d.json", size))
				if err := os.WriteFile(file, payload, 0o600); err != nil {
					return err
				}
				rows = append(rows, runRow(ctx, meter, impls, runID, scenario, workers, size, payload, file)...)
			}
		}
	}
	log.Printf("%d rows in %s", len(rows), time.Since(start).Round(time.Second))

	return save(rows)
}

// replot reads results.json back and redraws.
func replot() error {
	b, err := os.ReadFile(filepath.Join(*flagOut, "results.json"))
	if err != nil {
		return err
	}
	var rows []Row
	if err := json.Unmarshal(b, &rows); err != nil {
		return err
	}
	for i := range rows {
		rows[i].Error = trimErr(rows[i].Error)
	}
	return save(rows)
}

func save(rows []Row) error {
	if err := os.MkdirAll(*flagOut, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*flagOut, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if err := writeChart(filepath.Join(*flagOut, "results.png"), rows); err != nil {
		return err
	}
	fmt.Print(markdown(rows))
	return nil
}

// runRow runs one row for every implementation: seeding (replay), then
// rounds in rotating order.
func runRow(ctx context.Context, meter meter, impls []impl, runID, scenario string, workers, size int, payload []byte, file string) []Row {
	type acc struct {
		row     Row
		lat     []time.Duration
		calls   int
		units   int
		runits  float64
		kms     *int
		ops     int
		elapsed time.Duration
		dead    bool
		errs    int
		errMsg  string
	}
	if scenario == "batch-redelivery" {
		// Only the sides that can run an SQS batch (batcher) have a row.
		var bs []impl
		for _, im := range impls {
			if b, ok := im.(batcher); ok && b.batches() {
				bs = append(bs, im)
			}
		}
		impls = bs
	}
	accs := make([]*acc, len(impls))
	specs := make([]spec, len(impls))
	for i, im := range impls {
		accs[i] = &acc{row: Row{Impl: im.name(), Scenario: scenario, Workers: workers, SizeBytes: size}}
		specs[i] = spec{
			table:    tableOf(im),
			scenario: scenario,
			workers:  workers,
			dur:      *flagDur,
			minOps:   max(3, workers),
			maxOps:   5000,
			payload:  payload,
			file:     file,
		}
		if scenario == "replay" || scenario == "batch-redelivery" {
			n := 4
			if scenario == "batch-redelivery" {
				n = batchSize
			}
			for k := range n {
				specs[i].keys = append(specs[i].keys, fmt.Sprintf("replay-%s-%d-%d-%d", runID, workers, size, k))
			}
			if err := im.seed(ctx, specs[i]); err != nil {
				accs[i].row.Error = "seeding the replayed keys failed: " + err.Error()
				accs[i].dead = true
			}
		}
	}
	for r := range *flagRound {
		for j := range impls {
			i := (r + j) % len(impls)
			a := accs[i]
			if a.dead {
				continue
			}
			s := specs[i]
			s.prefix = fmt.Sprintf("new-%s-%d-%d-%d", runID, workers, size, r)
			meter.Reset()
			rc, isCounted := impls[i].(counted)
			if isCounted {
				rc.trips().Store(0)
			}
			var kmsN *atomic.Int64
			if kc, ok := impls[i].(kmsCounted); ok {
				kmsN = kc.kmsCalls()
			}
			if kmsN != nil {
				kmsN.Store(0)
			}
			out, err := impls[i].run(ctx, s)
			if err != nil {
				a.row.Error = err.Error()
				a.dead = true
				continue
			}
			if isCounted {
				a.calls += int(rc.trips().Load())
			} else {
				st := meter.Stats()
				a.calls += st.Total()
				a.units += st.WriteUnits
				a.runits += st.ReadUnits
			}
			if kmsN != nil {
				a.kms = ptr(deref(a.kms) + int(kmsN.Load()))
			}
			a.lat = append(a.lat, out.lat...)
			a.ops += len(out.lat) + out.errors
			a.elapsed += out.elapsed
			a.errs += out.errors
			if a.errMsg == "" {
				a.errMsg = out.firstErr
			}
		}
	}
	rows := make([]Row, len(accs))
	for i, a := range accs {
		row := a.row
		row.Ops = a.ops
		row.KMSCalls = a.kms
		if a.errs > 0 && row.Error == "" {
			row.Error = fmt.Sprintf("%d of %d invocations failed: %s", a.errs, a.ops, a.errMsg)
		}
		if a.ops > 0 {
			row.CallsPerOp = round2(float64(a.calls) / float64(a.ops))
			row.WriteUnitsPerOp = round2(float64(a.units) / float64(a.ops))
			row.ReadUnitsPerOp = round2(a.runits / float64(a.ops))
		}
		if len(a.lat) > 0 {
			slices.Sort(a.lat)
			row.P50Ms = ptr(ms(quantile(a.lat, 0.50)))
			row.P99Ms = ptr(ms(quantile(a.lat, 0.99)))
			row.OpsPerS = round2(float64(len(a.lat)) / a.elapsed.Seconds())
		}
		log.Printf("%-13s %-6s w=%d %7d B: %s", row.Impl, row.Scenario, row.Workers, row.SizeBytes, summary(row))
		rows[i] = row
	}
	return rows
}

func summary(r Row) string {
	s := fmt.Sprintf("%d ops, %.2f calls/op, %.2f WU/op, %.2f RU/op", r.Ops, r.CallsPerOp, r.WriteUnitsPerOp, r.ReadUnitsPerOp)
	if r.P50Ms != nil {
		s += fmt.Sprintf(", p50 %.2f ms, p99 %.2f ms, %.0f ops/s", *r.P50Ms, *r.P99Ms, r.OpsPerS)
	}
	if r.KMSCalls != nil {
		s += fmt.Sprintf(", %d KMS calls", *r.KMSCalls)
	}
	if r.Error != "" {
		s += " — " + r.Error
	}
	return s
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return round2(float64(d) / float64(time.Millisecond)) }
func round2(f float64) float64   { return float64(int64(f*100+0.5)) / 100 }
func ptr[T any](v T) *T          { return &v }

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			log.Fatalf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out
}

func tableOf(im impl) string {
	switch x := im.(type) {
	case *ours:
		return x.table
	case *floor:
		return x.table
	case *storeOnly:
		return x.table
	case *powertools:
		return x.table
	}
	return ""
}

// startProxy starts the counting proxy to target in a process of its own
// (this program with -serve-proxy), so that its CPU is not charged to the Go
// sides measured here, and returns a client of its meter, its URL and a
// function that stops it.
func startProxy(target string) (meter, string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", nil, err
	}
	cmd := exec.Command(exe, "-serve-proxy", target)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return nil, "", nil, fmt.Errorf("counting proxy: %w", err)
	}
	u := strings.TrimSpace(line)
	return &remoteMeter{base: u, c: &http.Client{}}, u, stop, nil
}

// meter is the counting proxy's meter, as runRow uses it.
type meter interface {
	SetKey(table string, attrs ...string)
	Reset()
	Stats() dynamocost.Stats
}

// The proxy's own paths (never DynamoDB's: its requests all go to "/").
const (
	pathStats  = "/bench-meter/stats"
	pathReset  = "/bench-meter/reset"
	pathSetKey = "/bench-meter/setkey"
)

// remoteMeter is the meter of the proxy process, over HTTP.
type remoteMeter struct {
	base string
	c    *http.Client
}

func (m *remoteMeter) do(path string) []byte {
	resp, err := m.c.Get(m.base + path)
	if err != nil {
		log.Fatalf("counting proxy: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		log.Fatalf("counting proxy: %s %v %s", resp.Status, err, b)
	}
	return b
}

func (m *remoteMeter) SetKey(table string, attrs ...string) {
	m.do(pathSetKey + "?" + url.Values{"table": {table}, "attr": attrs}.Encode())
}

func (m *remoteMeter) Reset() { m.do(pathReset) }

func (m *remoteMeter) Stats() dynamocost.Stats {
	var st dynamocost.Stats
	if err := json.Unmarshal(m.do(pathStats), &st); err != nil {
		log.Fatalf("counting proxy: %v", err)
	}
	return st
}

// serveProxy is the proxy process: a reverse proxy to target on a free
// loopback port, every request through a dynamocost.Meter, and the meter's
// paths. It prints its URL and serves until killed.
func serveProxy(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	meter := &dynamocost.Meter{Next: tr}
	p := httputil.NewSingleHostReverseProxy(u)
	p.Transport = meter
	p.ErrorLog = log.New(io.Discard, "", 0)
	mux := http.NewServeMux()
	mux.Handle("/", p)
	mux.HandleFunc(pathStats, func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(meter.Stats()) })
	mux.HandleFunc(pathReset, func(http.ResponseWriter, *http.Request) { meter.Reset() })
	mux.HandleFunc(pathSetKey, func(_ http.ResponseWriter, r *http.Request) {
		meter.SetKey(r.URL.Query().Get("table"), r.URL.Query()["attr"]...)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println("http://" + ln.Addr().String())
	return http.Serve(ln, mux)
}

// environments returns n handlers from build, each over a store of its own,
// to be taken for one invocation and put back: concurrent invocations then
// never share a store value, as Lambda functions with one invocation per
// execution environment do not (duplicates in one process would coalesce
// in memory, docs/concurrency.md, and the bench measures the store's cost).
func environments[H any](n int, build func() H) chan H {
	envs := make(chan H, n)
	for range n {
		envs <- build()
	}
	return envs
}

// loop runs op for keys from s on s.workers goroutines until s.dur has passed
// (and at least s.minOps ran) or s.maxOps ran.
func loop(ctx context.Context, s spec, op func(ctx context.Context, key string) error) outcome {
	var (
		next     atomic.Int64
		mu       sync.Mutex
		out      outcome
		wg       sync.WaitGroup
		deadline = time.Now().Add(s.dur)
	)
	start := time.Now()
	for range s.workers {
		wg.Go(func() {
			var lat []time.Duration
			for {
				i := int(next.Add(1) - 1)
				if i >= s.maxOps || (i >= s.minOps && time.Now().After(deadline)) {
					break
				}
				key := s.prefix + "-" + strconv.Itoa(i)
				if s.scenario == "replay" {
					key = s.keys[i%len(s.keys)]
				}
				t0 := time.Now()
				err := op(ctx, key)
				d := time.Since(t0)
				if err != nil {
					mu.Lock()
					out.errors++
					if out.firstErr == "" {
						out.firstErr = trimErr(err.Error())
					}
					mu.Unlock()
					continue
				}
				lat = append(lat, d)
			}
			mu.Lock()
			out.lat = append(out.lat, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}

var requestID = regexp.MustCompile(`,? ?RequestID: [A-Z0-9]*,?`)

// trimErr shortens an error message for the table: no request ids, at most
// 300 bytes.
func trimErr(s string) string {
	s = requestID.ReplaceAllString(s, "")
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// ours is idemlambda: Wrap around the handler, dynamostore underneath.
type ours struct {
	client    *dynamodb.Client
	table     string
	readFirst bool // idemlambda-readfirst: WithReadFirst

	// idemlambda-kms (kms.go): idemkms over dynamostore, one Store for the
	// whole run (a warm container), and its KMS calls.
	encrypted *idemkms.Store
	kms       *kmsCounter
}

type event struct {
	ID string `json:"id"`
}

func (o *ours) name() string {
	switch {
	case o.readFirst:
		return "idemlambda-readfirst"
	case o.encrypted != nil:
		return "idemlambda-kms"
	}
	return "idemlambda"
}

func (o *ours) opts() []idempotent.Option {
	opts := []idempotent.Option{idempotent.WithName("bench")}
	if o.readFirst {
		opts = append(opts, idempotent.WithReadFirst())
	}
	return opts
}

func (o *ours) handler(s spec) func(context.Context, event) (json.RawMessage, error) {
	var store idempotent.Store = dynamostore.New(o.client, o.table)
	if o.encrypted != nil {
		store = o.encrypted
	}
	result := json.RawMessage(s.payload)
	return idempotent.Wrap(idempotent.New(store, o.opts()...), func(context.Context, event) (json.RawMessage, error) {
		return result, nil
	}, idempotent.WithKeyPath("id"))
}

func (o *ours) seed(ctx context.Context, s spec) error {
	if s.scenario == "batch-redelivery" {
		return o.seedBatch(ctx, s)
	}
	h := o.handler(s)
	for _, k := range s.keys {
		if _, err := h(ctx, event{ID: k}); err != nil {
			return err
		}
	}
	return nil
}

func (o *ours) run(ctx context.Context, s spec) (outcome, error) {
	if s.scenario == "batch-redelivery" {
		return o.runBatch(ctx, s)
	}
	envs := environments(s.workers, func() func(context.Context, event) (json.RawMessage, error) { return o.handler(s) })
	return loop(ctx, s, func(ctx context.Context, key string) error {
		h := <-envs
		defer func() { envs <- h }()
		out, err := h(ctx, event{ID: key})
		if err == nil && len(out) != len(s.payload) {
			err = fmt.Errorf("got %d bytes, want %d", len(out), len(s.payload))
		}
		return err
	}), nil
}

// storeOnly is a diagnostic side (-impls store): dynamostore's Acquire and
// Complete called directly, without Wrap, to tell the core's cost from the
// store's.
type storeOnly struct {
	client *dynamodb.Client
	table  string
}

func (o *storeOnly) name() string { return "store" }

func (o *storeOnly) invoke(ctx context.Context, st *dynamostore.Store, key string, payload []byte) error {
	now := time.Now()
	rec := idempotent.Record{ID: "store#" + key, Status: idempotent.StatusInProgress, Expiration: now.Add(time.Hour),
		LeaseExpiration: now.Add(time.Minute), Owner: strconv.FormatInt(now.UnixNano(), 36)}
	existing, ok, err := st.Acquire(ctx, rec, now)
	if err != nil || !ok {
		if err == nil && (existing == nil || len(existing.Data) != len(payload)) {
			err = errors.New("no replay")
		}
		return err
	}
	rec.Status, rec.Data = idempotent.StatusCompleted, payload
	return st.Complete(ctx, rec)
}

func (o *storeOnly) seed(ctx context.Context, s spec) error {
	st := dynamostore.New(o.client, o.table)
	for _, k := range s.keys {
		if err := o.invoke(ctx, st, k, s.payload); err != nil {
			return err
		}
	}
	return nil
}

func (o *storeOnly) run(ctx context.Context, s spec) (outcome, error) {
	st := dynamostore.New(o.client, o.table)
	return loop(ctx, s, func(ctx context.Context, key string) error { return o.invoke(ctx, st, key, s.payload) }), nil
}

// floor is what any idempotent handler must send, with no library: a
// conditional PutItem and an UpdateItem with the result for a new key; the
// conditional PutItem and a consistent GetItem of the stored result for a
// replay (on a server that returns the old item, the GetItem goes away).
type floor struct {
	client *dynamodb.Client
	table  string
}

func (f *floor) name() string { return "floor" }

func (f *floor) invoke(ctx context.Context, key string, payload []byte) ([]byte, error) {
	now := time.Now()
	id := &types.AttributeValueMemberS{Value: "floor#" + key}
	_, err := f.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &f.table,
		Item: map[string]types.AttributeValue{
			"id":                     id,
			"status":                 &types.AttributeValueMemberS{Value: "INPROGRESS"},
			"expiration":             &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(time.Hour).Unix(), 10)},
			"in_progress_expiration": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(time.Minute).UnixMilli(), 10)},
		},
		ConditionExpression:                 aws.String("attribute_not_exists(id) OR expiration <= :now"),
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)}},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		_, err = f.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 &f.table,
			Key:                       map[string]types.AttributeValue{"id": id},
			UpdateExpression:          aws.String("SET #s = :c, #d = :d REMOVE in_progress_expiration"),
			ExpressionAttributeNames:  map[string]string{"#s": "status", "#d": "data"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: "COMPLETED"}, ":d": &types.AttributeValueMemberB{Value: payload}},
		})
		return payload, err
	case errors.As(err, &ccf):
		item := ccf.Item
		if len(item) == 0 {
			out, err := f.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &f.table, Key: map[string]types.AttributeValue{"id": id}, ConsistentRead: aws.Bool(true)})
			if err != nil {
				return nil, err
			}
			item = out.Item
		}
		d, ok := item["data"].(*types.AttributeValueMemberB)
		if !ok {
			return nil, errors.New("replayed record has no data")
		}
		return d.Value, nil
	default:
		return nil, err
	}
}

func (f *floor) seed(ctx context.Context, s spec) error {
	for _, k := range s.keys {
		if _, err := f.invoke(ctx, k, s.payload); err != nil {
			return err
		}
	}
	return nil
}

func (f *floor) run(ctx context.Context, s spec) (outcome, error) {
	if s.scenario == "batch-redelivery" {
		return loop(ctx, s, func(ctx context.Context, _ string) error { return f.batchGet(ctx, s.keys) }), nil
	}
	return loop(ctx, s, func(ctx context.Context, key string) error {
		out, err := f.invoke(ctx, key, s.payload)
		if err == nil && len(out) != len(s.payload) {
			err = fmt.Errorf("got %d bytes, want %d", len(out), len(s.payload))
		}
		return err
	}), nil
}

// powertools drives tools/bench/powertools/driver.mjs on Node.
type powertools struct {
	impl  string
	table string
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	calls atomic.Int64 // the Redis commands of the last run, as the driver counted them
}

// startPowertools starts the driver on the DynamoDB layer (endpoint, table)
// or, with a non-empty redisURL, on the cache layer (startPowertoolsRedis).
func startPowertools(endpoint, table, redisURL string) (*powertools, error) {
	script := filepath.Join("tools", "bench", "powertools", "driver.mjs")
	if _, err := os.Stat(filepath.Join("tools", "bench", "powertools", "node_modules", "@aws-lambda-powertools", "idempotency")); err != nil {
		return nil, errors.New("tools/bench/powertools is not installed: run make powertools-install (tools/bench/run.sh does)")
	}
	cmd := exec.Command("node", script)
	cmd.Env = append(os.Environ(), "BENCH_ENDPOINT="+endpoint, "AWS_LAMBDA_FUNCTION_NAME=bench", "NODE_NO_WARNINGS=1")
	name := "powertools-ts"
	if redisURL != "" {
		cmd.Env = append(cmd.Env, "BENCH_REDIS_URL="+redisURL)
		name = "powertools-ts-redis"
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &powertools{impl: name, table: table, cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}, nil
}

func (p *powertools) name() string { return p.impl }

func (p *powertools) close() {
	_ = p.in.Close()
	_ = p.cmd.Wait()
}

func (p *powertools) call(cmd map[string]any, out any) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		return err
	}
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("powertools driver: %w", err)
	}
	var e struct{ Error string }
	if json.Unmarshal(line, &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	return json.Unmarshal(line, out)
}

func (p *powertools) seed(_ context.Context, s spec) error {
	var ok struct{ OK bool }
	return p.call(map[string]any{"op": "seed", "table": s.table, "scenario": s.scenario, "keys": s.keys, "payloadFile": s.file}, &ok)
}

func (p *powertools) run(_ context.Context, s spec) (outcome, error) {
	var res struct {
		LatenciesMs []float64
		Errors      int
		FirstError  string
		Calls       int64
	}
	start := time.Now()
	err := p.call(map[string]any{
		"op": "run", "table": s.table, "scenario": s.scenario, "workers": s.workers,
		"durationMs": s.dur.Milliseconds(), "minOps": s.minOps, "maxOps": s.maxOps,
		"keyPrefix": s.prefix, "keys": s.keys, "payloadFile": s.file,
	}, &res)
	if err != nil {
		return outcome{}, err
	}
	p.calls.Store(res.Calls)
	out := outcome{errors: res.Errors, firstErr: trimErr(res.FirstError), elapsed: time.Since(start)}
	for _, l := range res.LatenciesMs {
		out.lat = append(out.lat, time.Duration(l*float64(time.Millisecond)))
	}
	return out, nil
}

// markdown renders the rows as a table.
func markdown(rows []Row) string {
	var b strings.Builder
	b.WriteString("| impl | scenario | workers | size | calls/op | write units/op | read units/op | $ per million | p50 ms | p99 ms | ops/s | error |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, r := range rows {
		p50, p99 := "–", "–"
		if r.P50Ms != nil {
			p50, p99 = fmt.Sprintf("%.2f", *r.P50Ms), fmt.Sprintf("%.2f", *r.P99Ms)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %.2f | %.2f | %.2f | %.3f | %s | %s | %.0f | %s |\n",
			r.Impl, r.Scenario, r.Workers, sizeName(r.SizeBytes), r.CallsPerOp, r.WriteUnitsPerOp, r.ReadUnitsPerOp, price(r), p50, p99, r.OpsPerS,
			strings.ReplaceAll(r.Error, "|", "/"))
	}
	return b.String()
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
