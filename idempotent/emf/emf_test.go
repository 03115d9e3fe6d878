package emf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/emf"
)

// validate checks one line against the structure the EMF specification
// requires (CloudWatch, "Specification: Embedded metric format"), and
// returns the document.
func validate(t *testing.T, line []byte) map[string]any {
	t.Helper()
	if len(line) > 256*1024 {
		t.Fatalf("record of %d bytes is over the 256 KB log event limit", len(line))
	}
	var root map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, line)
	}
	aws, ok := root["_aws"].(map[string]any)
	if !ok {
		t.Fatalf("no _aws object: %s", line)
	}
	ts, ok := aws["Timestamp"].(json.Number)
	if _, err := strconv.ParseInt(string(ts), 10, 64); !ok || err != nil {
		t.Fatalf("_aws.Timestamp %v is not an integer (epoch milliseconds)", aws["Timestamp"])
	}
	directives, ok := aws["CloudWatchMetrics"].([]any)
	if !ok || len(directives) == 0 {
		t.Fatalf("_aws.CloudWatchMetrics must be a non-empty array: %v", aws["CloudWatchMetrics"])
	}
	units := map[string]bool{}
	for _, u := range strings.Split("Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes Terabytes Bits Kilobits Megabits Gigabits Terabits Percent Count Bytes/Second Kilobytes/Second Megabytes/Second Gigabytes/Second Terabytes/Second Bits/Second Kilobits/Second Megabits/Second Gigabits/Second Terabits/Second Count/Second None", " ") {
		units[u] = true
	}
	for _, d := range directives {
		dir, ok := d.(map[string]any)
		if !ok {
			t.Fatalf("directive %v is not an object", d)
		}
		ns, ok := dir["Namespace"].(string)
		if !ok || len(ns) == 0 || len(ns) > 255 {
			t.Fatalf("Namespace %v must be a string of 1-255 characters", dir["Namespace"])
		}
		sets, ok := dir["Dimensions"].([]any)
		if !ok {
			t.Fatalf("Dimensions %v must be an array of dimension sets", dir["Dimensions"])
		}
		for _, s := range sets {
			set, ok := s.([]any)
			if !ok || len(set) > 30 {
				t.Fatalf("dimension set %v must be an array of at most 30 names", s)
			}
			for _, k := range set {
				name, ok := k.(string)
				if !ok {
					t.Fatalf("dimension name %v is not a string", k)
				}
				if v, ok := root[name].(string); !ok || v == "" {
					t.Fatalf("dimension %q has no string value at the root", name)
				}
			}
		}
		ms, ok := dir["Metrics"].([]any)
		if !ok || len(ms) == 0 || len(ms) > 100 {
			t.Fatalf("Metrics must be an array of 1-100 definitions, got %v", dir["Metrics"])
		}
		seen := map[string]bool{}
		for _, m := range ms {
			def, ok := m.(map[string]any)
			if !ok {
				t.Fatalf("metric definition %v is not an object", m)
			}
			name, ok := def["Name"].(string)
			if !ok || name == "" || len(name) > 255 || seen[name] {
				t.Fatalf("metric Name %v must be a unique string of 1-255 characters", def["Name"])
			}
			seen[name] = true
			if u, ok := def["Unit"]; ok && !units[fmt.Sprint(u)] {
				t.Fatalf("metric %s: unit %v is not a CloudWatch unit", name, u)
			}
			switch v := root[name].(type) {
			case json.Number:
			case []any:
				if len(v) > 100 {
					t.Fatalf("metric %s has %d values, at most 100", name, len(v))
				}
			default:
				t.Fatalf("metric %s has no numeric value at the root: %v", name, root[name])
			}
		}
	}
	return root
}

// lines splits the output into records, each validated.
func lines(t *testing.T, out *bytes.Buffer) []map[string]any {
	t.Helper()
	var docs []map[string]any
	for _, l := range bytes.SplitAfter(out.Bytes(), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		if l[len(l)-1] != '\n' || bytes.Count(l, []byte("\n")) != 1 {
			t.Fatalf("record is not one line: %q", l)
		}
		docs = append(docs, validate(t, l))
	}
	out.Reset()
	return docs
}

func metricsOf(doc map[string]any) map[string]float64 {
	out := map[string]float64{}
	for _, d := range doc["_aws"].(map[string]any)["CloudWatchMetrics"].([]any) {
		for _, m := range d.(map[string]any)["Metrics"].([]any) {
			name := m.(map[string]any)["Name"].(string)
			f, _ := doc[name].(json.Number).Float64()
			out[name] = f
		}
	}
	return out
}

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func newMetrics(t *testing.T, out *bytes.Buffer, more ...func(*emf.Options)) *emf.Metrics {
	t.Helper()
	m, err := emf.New(append([]func(*emf.Options){func(o *emf.Options) {
		o.Writer = out
		o.Clock = func() time.Time { return t0 }
		o.Namespace = "payments"
		o.Dimensions = map[string]string{"Service": "pay", "FunctionName": "pay-fn"}
	}}, more...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOneRecordPerInvocation(t *testing.T) {
	var out bytes.Buffer
	m := newMetrics(t, &out)
	store := idempotent.NewMemoryStore()
	now := t0
	clock := func() time.Time { return now }
	h := idempotent.Wrap(idempotent.New(store, idempotent.WithClock(clock), m.Option()), func(_ context.Context, id string) (string, error) {
		now = now.Add(40 * time.Millisecond)
		return "ok " + id, nil
	})
	inv := emf.Wrap(m, h)
	ctx := context.Background()

	if _, err := inv(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	docs := lines(t, &out)
	if len(docs) != 1 {
		t.Fatalf("%d records, want 1", len(docs))
	}
	doc := docs[0]
	aws := doc["_aws"].(map[string]any)
	if ts := aws["Timestamp"].(json.Number).String(); ts != strconv.FormatInt(t0.UnixMilli(), 10) {
		t.Fatalf("Timestamp = %s", ts)
	}
	dir := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if dir["Namespace"] != "payments" || fmt.Sprint(dir["Dimensions"]) != "[[FunctionName Service]]" || doc["Service"] != "pay" || doc["FunctionName"] != "pay-fn" {
		t.Fatalf("namespace or dimensions wrong: %v", doc)
	}
	want := map[string]float64{"Calls": 1, "Completed": 1, "HandlerTime": 40}
	if got := metricsOf(doc); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("metrics = %v, want %v", got, want)
	}

	// A replay, then an invocation that reports nothing.
	if _, err := inv(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := metricsOf(lines(t, &out)[0]); got["Replayed"] != 1 || got["Completed"] != 0 || got["Calls"] != 1 {
		t.Fatalf("replay metrics = %v", got)
	}
	quiet := emf.Wrap(m, func(context.Context, string) (string, error) { return "", nil })
	if _, err := quiet(ctx, "x"); err != nil || out.Len() != 0 {
		t.Fatalf("an invocation with no report wrote %q", out.String())
	}
}

func TestRecordWrittenWhenTheHandlerPanics(t *testing.T) {
	var out bytes.Buffer
	m := newMetrics(t, &out)
	h := emf.Wrap(m, idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore(), m.Option()), func(context.Context, string) (string, error) { panic("x") }))
	func() {
		defer func() { _ = recover() }()
		_, _ = h(context.Background(), "a")
	}()
	if got := metricsOf(lines(t, &out)[0]); got["Panicked"] != 1 {
		t.Fatalf("metrics = %v", got)
	}
}

func TestLeaseTakeoverMetric(t *testing.T) {
	var out bytes.Buffer
	m := newMetrics(t, &out)
	store := idempotent.NewMemoryStore()
	now := t0
	// A run that "crashes": its function does not return before its lease
	// ends.
	started, never := make(chan struct{}), make(chan struct{})
	defer close(never)
	opts := []idempotent.Option{idempotent.WithName("pay"), idempotent.WithLease(time.Second), idempotent.WithClock(func() time.Time { return now }), m.Option()}
	go func() {
		_, _ = idempotent.Do(context.Background(), idempotent.New(store, opts...), "s", "k", func(context.Context) (int, error) {
			close(started)
			<-never
			return 0, nil
		})
	}()
	<-started
	now = now.Add(2 * time.Second)
	retry := emf.Wrap(m, func(ctx context.Context, _ string) (int, error) {
		return idempotent.Do(ctx, idempotent.New(store, opts...), "s", "k", func(context.Context) (int, error) { return 1, nil })
	})
	if _, err := retry(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	got := metricsOf(lines(t, &out)[0])
	if got["LeaseTakeovers"] != 1 || got["Completed"] != 1 {
		t.Fatalf("metrics = %v, want a completed takeover", got)
	}
}

// Every metric at once still makes one valid directive.
func TestEveryMetricFitsOneDirective(t *testing.T) {
	var out bytes.Buffer
	m := newMetrics(t, &out)
	o := m.Observer()
	ctx := context.Background()
	for oc := idempotent.OutcomeCompleted; oc <= idempotent.OutcomeCoalesced; oc++ {
		o.Call(ctx, idempotent.Report{Outcome: oc, StoreTime: time.Millisecond, HandlerTime: 2 * time.Millisecond})
	}
	for _, op := range []string{"acquire", "get", "complete", "release"} {
		o.Call(ctx, idempotent.Report{Outcome: idempotent.OutcomeStoreError, Op: op})
	}
	o.Call(ctx, idempotent.Report{Outcome: idempotent.OutcomeCompleted, Takeover: true})
	for _, s := range []int{200, 302, 404, 503, 0} {
		o.HTTP(ctx, idempotent.HTTPReport{Status: s})
	}
	o.Batch(ctx, idempotent.BatchReport{Source: "sqs", Records: 10, Failures: 2, Replays: 3})
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	docs := lines(t, &out)
	if len(docs) != 1 {
		t.Fatalf("%d records", len(docs))
	}
	got := metricsOf(docs[0])
	want := map[string]float64{
		"Calls": 20, "Completed": 2, "Failed": 1, "Panicked": 1, "Replayed": 1, "CacheReplayed": 1, "InProgress": 1,
		"WaitReplayed": 1, "WaitTimedOut": 1, "PayloadMismatch": 1, "Unguarded": 1, "NoKey": 1, "LeaseLost": 1,
		"LeaseTakeovers": 1, "StoreErrors": 5, "StoreErrorsAcquire": 1, "StoreErrorsGet": 1, "StoreErrorsComplete": 1,
		"StoreErrorsRelease": 1, "CorruptRecords": 1, "Coalesced": 1, "StoreTime": 15, "HandlerTime": 30,
		"HTTP2xx": 1, "HTTP3xx": 1, "HTTP4xx": 1, "HTTP5xx": 2, "BatchRecords": 10, "BatchFailures": 2, "BatchReplays": 3,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("metrics =\n%v\nwant\n%v", got, want)
	}
	// Flush again: nothing left.
	if err := m.Flush(); err != nil || out.Len() != 0 {
		t.Fatalf("second Flush wrote %q, %v", out.String(), err)
	}
}

func TestConcurrentReportsInOneInvocation(t *testing.T) {
	var out bytes.Buffer
	m := newMetrics(t, &out)
	o := m.Observer()
	h := emf.Wrap(m, func(ctx context.Context, n int) (int, error) {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() { o.Call(ctx, idempotent.Report{Outcome: idempotent.OutcomeReplayed}) })
		}
		wg.Wait()
		return n, nil
	})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := h(context.Background(), 25); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	docs := lines(t, &out)
	if len(docs) != 4 {
		t.Fatalf("%d records, want one per invocation", len(docs))
	}
	for _, d := range docs {
		if got := metricsOf(d); got["Replayed"] != 25 {
			t.Fatalf("an invocation's record = %v, want its own 25 replays", got)
		}
	}
}

func TestDefaultDimensions(t *testing.T) {
	t.Setenv(idempotent.FunctionNameEnv, "orders-fn")
	var out bytes.Buffer
	m, err := emf.New(func(o *emf.Options) { o.Writer = &out })
	if err != nil {
		t.Fatal(err)
	}
	m.Observer().Call(context.Background(), idempotent.Report{Outcome: idempotent.OutcomeCompleted})
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	doc := lines(t, &out)[0]
	dir := doc["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if dir["Namespace"] != emf.DefaultNamespace || fmt.Sprint(dir["Dimensions"]) != "[[FunctionName]]" || doc["FunctionName"] != "orders-fn" {
		t.Fatalf("defaults: %v", doc)
	}

	t.Setenv(idempotent.FunctionNameEnv, "")
	m, err = emf.New(func(o *emf.Options) { o.Writer = &out })
	if err != nil {
		t.Fatal(err)
	}
	m.Observer().Call(context.Background(), idempotent.Report{Outcome: idempotent.OutcomeCompleted})
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	doc = lines(t, &out)[0]
	if dir := doc["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any); fmt.Sprint(dir["Dimensions"]) != "[[]]" {
		t.Fatalf("no function name: dimensions %v, want one empty set", dir["Dimensions"])
	}
}

func TestOptionsValidated(t *testing.T) {
	many := map[string]string{}
	for i := range 31 {
		many[fmt.Sprintf("d%d", i)] = "v"
	}
	dim := func(k, v string) func(*emf.Options) {
		return func(o *emf.Options) { o.Dimensions = map[string]string{k: v} }
	}
	tests := []struct {
		name  string
		fn    func(*emf.Options)
		field string // OptionError.Field
	}{
		{"empty namespace", func(o *emf.Options) { o.Namespace = "" }, "Namespace"},
		{"blank namespace", func(o *emf.Options) { o.Namespace = "   " }, "Namespace"},
		{"AWS namespace", func(o *emf.Options) { o.Namespace = "AWS/Lambda" }, "Namespace"},
		{"colon namespace", func(o *emf.Options) { o.Namespace = ":payments" }, "Namespace"},
		{"long namespace", func(o *emf.Options) { o.Namespace = strings.Repeat("n", 256) }, "Namespace"},
		{"non-ASCII namespace", func(o *emf.Options) { o.Namespace = "paiements-é" }, "Namespace"},
		{"invalid UTF-8 namespace", func(o *emf.Options) { o.Namespace = "pay\xff" }, "Namespace"},
		{"DEL in namespace", func(o *emf.Options) { o.Namespace = "pay\x7f" }, "Namespace"},
		{"31 dimensions", func(o *emf.Options) { o.Dimensions = many }, "Dimensions"},
		{"empty dimension name", dim("", "x"), "Dimensions"},
		{"blank dimension name", dim(" ", "x"), "Dimensions"},
		{"colon dimension name", dim(":Service", "x"), "Dimensions"},
		{"long dimension name", dim(strings.Repeat("k", 256), "x"), "Dimensions"},
		{"non-ASCII dimension name", dim("Sérvice", "x"), "Dimensions"},
		{"invalid UTF-8 dimension name", dim("Service\xc3", "x"), "Dimensions"},
		{"empty dimension value", dim("Service", ""), "Dimensions"},
		{"blank dimension value", dim("Service", "  "), "Dimensions"},
		{"long dimension value", dim("Service", strings.Repeat("v", 1025)), "Dimensions"},
		{"non-ASCII dimension value", dim("Service", "paiement-é"), "Dimensions"},
		{"invalid UTF-8 dimension value", dim("Service", "pay\xff"), "Dimensions"},
		{"control character", dim("Service", "a\nb"), "Dimensions"},
		{"dimension named like a metric", dim("Completed", "x"), "Dimensions"},
		{"dimension named _aws", dim("_aws", "x"), "Dimensions"},
		{"dimension named level", dim("level", "x"), "Dimensions"},
		{"dimension named timestamp", dim("timestamp", "x"), "Dimensions"},
		{"unknown level", func(o *emf.Options) { o.Level = "CRITICAL" }, "Level"},
		{"lower-case level", func(o *emf.Options) { o.Level = "fatal" }, "Level"},
		{"empty level", func(o *emf.Options) { o.Level = "" }, "Level"},
		{"nil writer", func(o *emf.Options) { o.Writer = nil }, "Writer"},
		{"nil clock", func(o *emf.Options) { o.Clock = nil }, "Clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := emf.New(tt.fn)
			if !errors.Is(err, emf.ErrOptions) || m != nil {
				t.Fatalf("New = %v, %v; want nil, ErrOptions", m, err)
			}
			var oe *emf.OptionError
			if !errors.As(err, &oe) || oe.Field != tt.field {
				t.Fatalf("err = %#v, want an *OptionError for %s", err, tt.field)
			}
		})
	}
	// The limits themselves are fine.
	for _, fn := range []func(*emf.Options){
		func(o *emf.Options) { o.Namespace = strings.Repeat("n", 255) },
		func(o *emf.Options) { o.Namespace = "a:b/AWS/ ~" },
		dim(strings.Repeat("k", 255), strings.Repeat("v", 1024)),
		dim("Service name", "a:b"),
		func(o *emf.Options) { o.Level = "TRACE" },
	} {
		if _, err := emf.New(fn, func(o *emf.Options) { o.Writer = io.Discard }); err != nil {
			t.Errorf("New refused a valid option: %v", err)
		}
	}
	// 30 dimensions are fine, and quoted as JSON.
	delete(many, "d0")
	delete(many, "d1")
	many["quote\"d"] = `va"l`
	var out bytes.Buffer
	m, err := emf.New(func(o *emf.Options) { o.Dimensions = many; o.Writer = &out })
	if err != nil {
		t.Fatal(err)
	}
	m.Observer().Call(context.Background(), idempotent.Report{Outcome: idempotent.OutcomeCompleted})
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	if doc := lines(t, &out)[0]; doc[`quote"d`] != `va"l` {
		t.Fatalf("quoted dimension lost: %v", doc)
	}
}

func TestRecordLevel(t *testing.T) {
	at := time.Date(2026, 12, 7, 5, 0, 0, 123456789, time.FixedZone("CET", 3600))
	tests := []struct {
		name  string
		level string // Options.Level; "" leaves the default
		want  string
	}{
		{"default is FATAL, kept at every Lambda log level", "", emf.LevelFatal},
		{"set", "WARN", "WARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			m, err := emf.New(func(o *emf.Options) {
				o.Writer = &out
				o.Clock = func() time.Time { return at }
				if tt.level != "" {
					o.Level = tt.level
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			m.Observer().Call(context.Background(), idempotent.Report{Outcome: idempotent.OutcomeCompleted})
			if err := m.Flush(); err != nil {
				t.Fatal(err)
			}
			doc := lines(t, &out)[0]
			if doc["level"] != tt.want {
				t.Fatalf("level = %v, want %s", doc["level"], tt.want)
			}
			// Lambda reads the level only beside a valid RFC 3339 timestamp.
			ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(doc["timestamp"]))
			if err != nil || !ts.Equal(at.Truncate(time.Millisecond)) {
				t.Fatalf("timestamp %v (%v), want %v", doc["timestamp"], err, at.Truncate(time.Millisecond))
			}
			if got := doc["_aws"].(map[string]any)["Timestamp"]; fmt.Sprint(got) != strconv.FormatInt(at.UnixMilli(), 10) {
				t.Fatalf("_aws.Timestamp = %v, want %d", got, at.UnixMilli())
			}
		})
	}
}
