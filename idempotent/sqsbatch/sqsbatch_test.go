package sqsbatch_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/sqsbatch"
)

// base are the options of every test handler.
func base(opts ...sqsbatch.Option) []sqsbatch.Option { return opts }

// guardOf is the guard of every test handler: store with a quiet logger,
// the name "orders" and core.
func guardOf(store idempotent.Store, core ...idempotent.Option) *idempotent.Guard {
	return idempotent.New(store, append([]idempotent.Option{idempotent.WithLogger(quiet), idempotent.WithName("orders")}, core...)...)
}

func TestWrapPerRecord(t *testing.T) {
	tests := []struct {
		name       string
		opts       []sqsbatch.Option
		core       []idempotent.Option
		before     []events.SQSMessage // a first batch, processed beforehand
		batch      []events.SQSMessage
		wantFailed []string
		wantRan    []string
	}{
		{
			name:       "all succeed",
			batch:      []events.SQSMessage{msg("m1", "o-1", ""), msg("m2", "o-2", ""), msg("m3", "o-3", "")},
			wantFailed: []string{},
			wantRan:    []string{"m1", "m2", "m3"},
		},
		{
			name:       "error fails its record only",
			batch:      []events.SQSMessage{msg("m1", "o-1", ""), msg("m2", "o-2", "fail"), msg("m3", "o-3", "")},
			wantFailed: []string{"m2"},
			wantRan:    []string{"m1", "m2", "m3"},
		},
		{
			name:       "panic is isolated to its record",
			batch:      []events.SQSMessage{msg("m1", "o-1", "panic"), msg("m2", "o-2", ""), msg("m3", "o-3", "panic")},
			wantFailed: []string{"m1", "m3"},
			wantRan:    []string{"m1", "m2", "m3"},
		},
		{
			name:       "completed before is acknowledged without running",
			before:     []events.SQSMessage{msg("m1", "o-1", ""), msg("m2", "o-2", "")},
			batch:      []events.SQSMessage{msg("m1", "o-1", ""), msg("m2", "o-2", ""), msg("m3", "o-3", "")},
			wantFailed: []string{},
			wantRan:    []string{"m3"},
		},
		{
			name:       "message id is the default key: producer duplicates run twice",
			batch:      []events.SQSMessage{msg("m1", "o-1", ""), msg("m2", "o-1", "")},
			wantFailed: []string{},
			wantRan:    []string{"m1", "m2"},
		},
		{
			name:       "body key collapses producer duplicates",
			opts:       []sqsbatch.Option{sqsbatch.WithBodyKey("orderId")},
			batch:      []events.SQSMessage{msg("m1", "o-1", ""), msg("m2", "o-1", ""), msg("m3", "o-2", ""), msg("m4", "o-1", "")},
			wantFailed: []string{},
			wantRan:    []string{"m1", "m3"},
		},
		{
			name:       "body key collapses duplicates across invocations",
			opts:       []sqsbatch.Option{sqsbatch.WithBodyKey("orderId")},
			before:     []events.SQSMessage{msg("m1", "o-1", "")},
			batch:      []events.SQSMessage{msg("m9", "o-1", "")},
			wantFailed: []string{},
			wantRan:    []string{},
		},
		{
			name:       "body key: a failed duplicate does not stop its twin",
			opts:       []sqsbatch.Option{sqsbatch.WithBodyKey("orderId")},
			batch:      []events.SQSMessage{msg("m1", "o-1", "fail"), msg("m2", "o-1", "")},
			wantFailed: []string{"m1"},
			wantRan:    []string{"m1", "m2"},
		},
		{
			name: "body key: unreadable bodies fail their records only",
			opts: []sqsbatch.Option{sqsbatch.WithBodyKey("orderId")},
			batch: []events.SQSMessage{
				msg("m1", "o-1", ""),
				raw("m2", "not json"),
				raw("m3", `{"orderId": null}`),
				raw("m4", `{"other": 1}`),
				raw("m5", `{"orderId": ""}`),
				raw("m6", `{"orderId": "o-6"} trailing`),
				raw("m7", `["o-7"]`),
				raw("m8", ``),
				msg("m9", "o-9", ""),
			},
			wantFailed: []string{"m2", "m3", "m4", "m5", "m6", "m7", "m8"},
			wantRan:    []string{"m1", "m9"},
		},
		{
			name:       "body key: number and string are different keys",
			opts:       []sqsbatch.Option{sqsbatch.WithBodyKey("orderId")},
			batch:      []events.SQSMessage{raw("m1", `{"orderId": 1}`), raw("m2", `{"orderId": "1"}`), raw("m3", `{"orderId": 1.0}`)},
			wantFailed: []string{},
			wantRan:    []string{"m1", "m2", "m3"},
		},
		{
			name:       "body key: multi-field expression, object key order ignored",
			opts:       []sqsbatch.Option{sqsbatch.WithBodyKey("{c: customer, o: orderId}")},
			batch:      []events.SQSMessage{raw("m1", `{"orderId":"o-1","customer":"c-1"}`), raw("m2", `{"customer":"c-1","orderId":"o-1"}`), raw("m3", `{"customer":"c-2","orderId":"o-1"}`)},
			wantFailed: []string{},
			wantRan:    []string{"m1", "m3"},
		},
		{
			name:       "empty message id fails its record",
			batch:      []events.SQSMessage{msg("", "o-1", ""), msg("m2", "o-2", "")},
			wantFailed: []string{""},
			wantRan:    []string{"m2"},
		},
		{
			// Contract §5 and §3.1: a multi-select over absent fields is a
			// body the key cannot be read from. Each such record fails and
			// is redelivered; none is acknowledged as a duplicate of another.
			name: "body key: a multi-select of missing fields fails every such record",
			opts: []sqsbatch.Option{sqsbatch.WithBodyKey("[customer, requestId]")},
			batch: []events.SQSMessage{
				raw("m1", `{"other": 1}`),
				raw("m2", `{"other": 2}`),
				raw("m3", `{"customer": null, "requestId": ""}`),
				raw("m4", `{"customer": [], "requestId": [null, {}]}`),
				raw("m5", `{"customer": "c"}`),
			},
			wantFailed: []string{"m1", "m2", "m3", "m4"},
			wantRan:    []string{"m5"},
		},
		{
			name: "body key: a multi-select hash of missing fields fails every such record",
			opts: []sqsbatch.Option{sqsbatch.WithBodyKey("{c: customer, r: requestId}")},
			batch: []events.SQSMessage{
				raw("m1", `{"other": 1}`),
				raw("m2", `{"other": 2}`),
				raw("m3", `{"requestId": "r"}`),
			},
			wantFailed: []string{"m1", "m2"},
			wantRan:    []string{"m3"},
		},
		{
			name: "body key: Powertools' powertools_json",
			opts: []sqsbatch.Option{sqsbatch.WithBodyKey("powertools_json(payload).[user, orderId]")},
			batch: []events.SQSMessage{
				raw("m1", `{"payload": "{\"user\": \"u\", \"orderId\": \"o-1\"}"}`),
				raw("m2", `{"payload": "{\"orderId\": \"o-1\", \"user\": \"u\", \"at\": 2}"}`),
				raw("m3", `{"payload": "{\"user\": \"u\", \"orderId\": \"o-2\"}"}`),
				raw("m4", `{"payload": "not json"}`),
				raw("m5", `{"payload": "{}"}`),
			},
			wantFailed: []string{"m4", "m5"},
			wantRan:    []string{"m1", "m3"},
		},
		{
			name: "body key: a custom function of the guard",
			opts: []sqsbatch.Option{
				sqsbatch.WithBodyKey("first(ids)"),
			},
			core: []idempotent.Option{idempotent.WithJMESPathFunction("first", func(args []any) (any, error) {
				if l, ok := args[0].([]any); ok && len(l) > 0 {
					return l[0], nil
				}
				return nil, errors.New("want a non-empty list")
			})},
			batch: []events.SQSMessage{
				raw("m1", `{"ids": ["a", "b"]}`),
				raw("m2", `{"ids": ["a", "c"]}`),
				raw("m3", `{"ids": []}`),
				raw("m4", `{"ids": ["b"]}`),
			},
			wantFailed: []string{"m3"},
			wantRan:    []string{"m1", "m4"},
		},
		{
			name:       "empty batch",
			batch:      nil,
			wantFailed: []string{},
			wantRan:    []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []int{1, 4} {
				store := idempotent.NewMemoryStore()
				rec := newRecorder()
				h := sqsbatch.Wrap(guardOf(store, tt.core...), rec.handle, base(append(tt.opts, sqsbatch.WithConcurrency(n))...)...)
				if tt.before != nil {
					if _, err := h(context.Background(), batch(tt.before...)); err != nil {
						t.Fatal(err)
					}
					rec.reset()
				}
				resp, err := h(context.Background(), batch(tt.batch...))
				if err != nil {
					t.Fatalf("concurrency %d: error %v", n, err)
				}
				if got := failed(resp); !slices.Equal(got, tt.wantFailed) {
					t.Errorf("concurrency %d: failures %q, want %q", n, got, tt.wantFailed)
				}
				if got := rec.ran(); !slices.Equal(got, tt.wantRan) {
					t.Errorf("concurrency %d: ran %q, want %q", n, got, tt.wantRan)
				}
			}
		})
	}
}

func TestRedeliveryAfterPartialFailure(t *testing.T) {
	tests := []struct {
		name string
		do   string
	}{
		{name: "error", do: "fail"},
		{name: "panic", do: "panic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := idempotent.NewMemoryStore()
			rec := newRecorder()
			h := sqsbatch.Wrap(guardOf(store), rec.handle, base()...)
			b := batch(msg("m1", "o-1", ""), msg("m2", "o-2", tt.do), msg("m3", "o-3", ""))

			resp, err := h(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if got := failed(resp); !slices.Equal(got, []string{"m2"}) {
				t.Fatalf("first delivery: failures %q, want [m2]", got)
			}

			// The cause is fixed; SQS redelivers the whole batch (say the
			// consumer returned the batch after a crash).
			rec.reset()
			rec.fix("m2")
			resp, err = h(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if got := failed(resp); len(got) != 0 {
				t.Errorf("redelivery: failures %q, want none", got)
			}
			if got := rec.ran(); !slices.Equal(got, []string{"m2"}) {
				t.Errorf("redelivery ran %q, want only [m2] (the failed record was released)", got)
			}

			// A third delivery runs nothing.
			rec.reset()
			if _, err := h(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if got := rec.ran(); len(got) != 0 {
				t.Errorf("third delivery ran %q, want nothing", got)
			}
		})
	}
}

func TestFIFOGroupStop(t *testing.T) {
	tests := []struct {
		name       string
		batch      []events.SQSMessage
		wantFailed []string
		wantRan    []string
	}{
		{
			name:       "failure stops its group only",
			batch:      []events.SQSMessage{fifo("a1", "A", ""), fifo("b1", "B", ""), fifo("a2", "A", "fail"), fifo("b2", "B", ""), fifo("a3", "A", ""), fifo("b3", "B", "")},
			wantFailed: []string{"a2", "a3"},
			wantRan:    []string{"a1", "a2", "b1", "b2", "b3"},
		},
		{
			name:       "panic stops its group",
			batch:      []events.SQSMessage{fifo("a1", "A", "panic"), fifo("a2", "A", ""), fifo("b1", "B", "")},
			wantFailed: []string{"a1", "a2"},
			wantRan:    []string{"a1", "b1"},
		},
		{
			name:       "both groups fail",
			batch:      []events.SQSMessage{fifo("a1", "A", "fail"), fifo("b1", "B", "fail"), fifo("a2", "A", ""), fifo("b2", "B", "")},
			wantFailed: []string{"a1", "b1", "a2", "b2"},
			wantRan:    []string{"a1", "b1"},
		},
		{
			name:       "no failure",
			batch:      []events.SQSMessage{fifo("a1", "A", ""), fifo("b1", "B", ""), fifo("a2", "A", "")},
			wantFailed: []string{},
			wantRan:    []string{"a1", "a2", "b1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// WithConcurrency does not apply to FIFO queues.
			for _, n := range []int{1, 8} {
				rec := newRecorder()
				h := sqsbatch.Wrap(guardOf(idempotent.NewMemoryStore()), rec.handle, base(sqsbatch.WithConcurrency(n))...)
				resp, err := h(context.Background(), batch(tt.batch...))
				if err != nil {
					t.Fatal(err)
				}
				if got := failed(resp); !slices.Equal(got, tt.wantFailed) {
					t.Errorf("concurrency %d: failures %q, want %q", n, got, tt.wantFailed)
				}
				if got := rec.ran(); !slices.Equal(got, tt.wantRan) {
					t.Errorf("concurrency %d: ran %q, want %q", n, got, tt.wantRan)
				}
			}
		})
	}
}

func TestFIFORedeliveryKeepsOrder(t *testing.T) {
	store := idempotent.NewMemoryStore()
	rec := newRecorder()
	var order []string
	rec.hook = func(m events.SQSMessage) { order = append(order, m.MessageId) }
	h := sqsbatch.Wrap(guardOf(store), rec.handle, base()...)
	b := batch(fifo("a1", "A", ""), fifo("a2", "A", "fail"), fifo("a3", "A", ""))
	if _, err := h(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	rec.fix("a2")
	// SQS redelivers the failed records, in order.
	resp, err := h(context.Background(), batch(fifo("a2", "A", "fail"), fifo("a3", "A", "")))
	if err != nil {
		t.Fatal(err)
	}
	if got := failed(resp); len(got) != 0 {
		t.Errorf("failures %q, want none", got)
	}
	if want := []string{"a1", "a2", "a2", "a3"}; !slices.Equal(order, want) {
		t.Errorf("run order %q, want %q", order, want)
	}
}

func TestInProgressDuplicateFails(t *testing.T) {
	store := idempotent.NewMemoryStore()
	held := hold(t, store, []events.SQSMessage{msg("m1", "o-1", "")}, base()...)
	rec := newRecorder()
	h := sqsbatch.Wrap(guardOf(store), rec.handle, base()...)
	b := batch(msg("m1", "o-1", ""), msg("m2", "o-2", ""))
	resp, err := h(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if got := failed(resp); !slices.Equal(got, []string{"m1"}) {
		t.Errorf("failures %q, want [m1] (in progress elsewhere)", got)
	}
	if got := rec.ran(); !slices.Equal(got, []string{"m2"}) {
		t.Errorf("ran %q, want [m2]", got)
	}
	held.stop()
	rec.reset()
	resp, err = h(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if got := failed(resp); len(got) != 0 {
		t.Errorf("after the holder completed: failures %q, want none", got)
	}
	if got := rec.ran(); len(got) != 0 {
		t.Errorf("after the holder completed: ran %q, want nothing (replayed)", got)
	}
}

func TestStoreErrorFailsClosed(t *testing.T) {
	rec := newRecorder()
	h := sqsbatch.Wrap(guardOf(failingStore{err: errors.New("throttled")}), rec.handle, base()...)
	resp, err := h(context.Background(), batch(msg("m1", "o-1", ""), msg("m2", "o-2", "")))
	if err != nil {
		t.Fatal(err)
	}
	if got := failed(resp); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Errorf("failures %q, want [m1 m2]", got)
	}
	if got := rec.ran(); len(got) != 0 {
		t.Errorf("ran %q with a failing store, want nothing", got)
	}
}

func TestKeyKindsDoNotCollide(t *testing.T) {
	store := idempotent.NewMemoryStore()
	rec := newRecorder()
	byID := sqsbatch.Wrap(guardOf(store), rec.handle, base()...)
	byBody := sqsbatch.Wrap(guardOf(store), rec.handle, base(sqsbatch.WithBodyKey("orderId"))...)
	// The message id and the body key are the same string, "o-1", under
	// the same name: they are different kinds of key, so both run.
	b := batch(msg("o-1", "o-1", ""))
	for _, h := range []func(context.Context, events.SQSEvent) (events.SQSEventResponse, error){byID, byBody, byID, byBody} {
		if _, err := h(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := rec.ran(), []string{"o-1", "o-1"}; !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q", got, want)
	}
}

func TestAttributeKey(t *testing.T) {
	attr := func(id string, v *string, b []byte) events.SQSMessage {
		m := msg(id, id, "")
		m.MessageAttributes = map[string]events.SQSMessageAttribute{}
		if v != nil || b != nil {
			m.MessageAttributes["requestId"] = events.SQSMessageAttribute{StringValue: v, BinaryValue: b, DataType: "String"}
		}
		return m
	}
	s := func(v string) *string { return &v }
	rec := newRecorder()
	h := sqsbatch.Wrap(guardOf(idempotent.NewMemoryStore()), rec.handle, base(sqsbatch.WithAttributeKey("requestId"))...)
	resp, err := h(context.Background(), batch(
		attr("m1", s("r-1"), nil),
		attr("m2", s("r-1"), nil), // duplicate
		attr("m3", nil, nil),      // missing
		attr("m4", s(""), nil),    // empty
		attr("m5", nil, []byte("r-1")),
		attr("m6", s("r-2"), nil),
	))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := failed(resp), []string{"m3", "m4"}; !slices.Equal(got, want) {
		t.Errorf("failures %q, want %q", got, want)
	}
	// A binary value never collides with a string value.
	if got, want := rec.ran(), []string{"m1", "m5", "m6"}; !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q", got, want)
	}
}

func TestDeduplicationKey(t *testing.T) {
	dup := func(id, group, dedup string) events.SQSMessage {
		m := fifo(id, group, "")
		m.Attributes["MessageDeduplicationId"] = dedup
		return m
	}
	rec := newRecorder()
	h := sqsbatch.Wrap(guardOf(idempotent.NewMemoryStore()), rec.handle, base(sqsbatch.WithDeduplicationKey())...)
	resp, err := h(context.Background(), batch(
		dup("m1", "A", "d-1"),
		dup("m2", "A", "d-1"), // same group, same id: runs once
		dup("m3", "B", "d-1"), // another group: another message
		dup("m4", "C", ""),    // no deduplication id: fails
		msg("m5", "o-5", ""),  // standard queue: fails
	))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := failed(resp), []string{"m4", "m5"}; !slices.Equal(got, want) {
		t.Errorf("failures %q, want %q", got, want)
	}
	if got, want := rec.ran(), []string{"m1", "m3"}; !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q", got, want)
	}
}

// TestParallelEqualsSequential runs one batch of mixed outcomes — success,
// error, panic, completed before, in progress elsewhere, duplicates within
// the batch, unreadable bodies — sequentially and in parallel, many times,
// and compares the responses and the runs.
func TestParallelEqualsSequential(t *testing.T) {
	msgs := []events.SQSMessage{
		msg("m01", "o-1", ""),
		msg("m02", "o-2", "fail"),
		msg("m03", "o-3", "panic"),
		msg("m04", "o-done", ""), // completed before
		msg("m05", "o-held", ""), // in progress elsewhere
		msg("m06", "o-1", ""),    // duplicate of m01: replays
		msg("m07", "o-2", ""),    // duplicate of m02 (failed): runs
		raw("m08", "{broken"),
		msg("m09", "o-9", ""),
		msg("m10", "o-10", "fail"),
		msg("m11", "o-1", "fail"), // duplicate of m01: replays, never runs
		msg("m12", "o-12", ""),
		msg("m13", "o-3", ""), // duplicate of m03 (panicked): runs
		raw("m14", `{"orderId": {}}`),
		msg("m15", "o-15", "panic"),
		msg("m16", "o-16", ""),
	}
	run := func(t *testing.T, n int) ([]string, []string) {
		store := idempotent.NewMemoryStore()
		opts := base(sqsbatch.WithBodyKey("orderId"))
		pre := sqsbatch.Wrap(guardOf(store), newRecorder().handle, opts...)
		if _, err := pre(context.Background(), batch(msg("p1", "o-done", ""))); err != nil {
			t.Fatal(err)
		}
		held := hold(t, store, []events.SQSMessage{msg("p2", "o-held", "")}, opts...)
		defer held.stop()
		rec := newRecorder()
		h := sqsbatch.Wrap(guardOf(store), rec.handle, append(opts, sqsbatch.WithConcurrency(n))...)
		resp, err := h(context.Background(), batch(msgs...))
		if err != nil {
			t.Fatal(err)
		}
		return failed(resp), rec.ran()
	}
	wantFailed, wantRan := run(t, 1)
	if want := []string{"m02", "m03", "m05", "m08", "m10", "m14", "m15"}; !slices.Equal(wantFailed, want) {
		t.Fatalf("sequential failures %q, want %q", wantFailed, want)
	}
	for i := range 50 {
		n := 2 + i%7
		gotFailed, gotRan := run(t, n)
		if !slices.Equal(gotFailed, wantFailed) {
			t.Fatalf("iteration %d, concurrency %d: failures %q, sequential %q", i, n, gotFailed, wantFailed)
		}
		if !slices.Equal(gotRan, wantRan) {
			t.Fatalf("iteration %d, concurrency %d: ran %q, sequential %q", i, n, gotRan, wantRan)
		}
	}
}

func TestDeadlineMargin(t *testing.T) {
	tests := []struct {
		name       string
		left       time.Duration // time left when the batch starts
		margin     *time.Duration
		advanceAt  string // the run of this message moves the clock
		advance    time.Duration
		batch      []events.SQSMessage
		wantFailed []string
		wantRan    []string
	}{
		{
			name:       "plenty of time",
			left:       time.Minute,
			batch:      []events.SQSMessage{msg("m1", "o-1", ""), msg("m2", "o-2", "")},
			wantFailed: []string{},
			wantRan:    []string{"m1", "m2"},
		},
		{
			name:       "default margin: nothing starts with under a second left",
			left:       999 * time.Millisecond,
			batch:      []events.SQSMessage{msg("m1", "o-1", ""), msg("m2", "o-2", "")},
			wantFailed: []string{"m1", "m2"},
			wantRan:    []string{},
		},
		{
			name:       "records after the margin is reached are not started",
			left:       10 * time.Second,
			margin:     ptr(5 * time.Second),
			advanceAt:  "m2",
			advance:    6 * time.Second,
			batch:      []events.SQSMessage{msg("m1", "o-1", ""), msg("m2", "o-2", ""), msg("m3", "o-3", ""), msg("m4", "o-4", "")},
			wantFailed: []string{"m3", "m4"},
			wantRan:    []string{"m1", "m2"},
		},
		{
			name:       "exactly the margin left still starts",
			left:       5 * time.Second,
			margin:     ptr(5 * time.Second),
			batch:      []events.SQSMessage{msg("m1", "o-1", "")},
			wantFailed: []string{},
			wantRan:    []string{"m1"},
		},
		{
			name:       "zero margin starts until the deadline",
			left:       time.Millisecond,
			margin:     ptr(time.Duration(0)),
			advanceAt:  "m1",
			advance:    time.Millisecond,
			batch:      []events.SQSMessage{msg("m1", "o-1", ""), msg("m2", "o-2", "")},
			wantFailed: []string{"m2"},
			wantRan:    []string{"m1"},
		},
		{
			name:       "FIFO: the skipped records stay failed in order",
			left:       10 * time.Second,
			margin:     ptr(5 * time.Second),
			advanceAt:  "a1",
			advance:    6 * time.Second,
			batch:      []events.SQSMessage{fifo("a1", "A", ""), fifo("b1", "B", ""), fifo("a2", "A", "")},
			wantFailed: []string{"b1", "a2"},
			wantRan:    []string{"a1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deadline := time.Now().Add(time.Hour) // the lease: far away
			clk := newClock(deadline.Add(-tt.left))
			rec := newRecorder()
			rec.hook = func(m events.SQSMessage) {
				if m.MessageId == tt.advanceAt {
					clk.advance(tt.advance)
				}
			}
			var opts []sqsbatch.Option
			if tt.margin != nil {
				opts = append(opts, sqsbatch.WithDeadlineMargin(*tt.margin))
			}
			h := sqsbatch.Wrap(guardOf(idempotent.NewMemoryStore(), idempotent.WithClock(clk.now)), rec.handle, opts...)
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			resp, err := h(ctx, batch(tt.batch...))
			if err != nil {
				t.Fatal(err)
			}
			if got := failed(resp); !slices.Equal(got, tt.wantFailed) {
				t.Errorf("failures %q, want %q", got, tt.wantFailed)
			}
			if got := rec.ran(); !slices.Equal(got, tt.wantRan) {
				t.Errorf("ran %q, want %q", got, tt.wantRan)
			}
		})
	}
}

func TestNoDeadlineRunsEverything(t *testing.T) {
	rec := newRecorder()
	h := sqsbatch.Wrap(guardOf(idempotent.NewMemoryStore()), rec.handle, base(sqsbatch.WithDeadlineMargin(time.Hour))...)
	resp, err := h(context.Background(), batch(msg("m1", "o-1", ""), msg("m2", "o-2", "")))
	if err != nil {
		t.Fatal(err)
	}
	if got := failed(resp); len(got) != 0 {
		t.Errorf("failures %q, want none", got)
	}
}

func TestCancelledContextStartsNothing(t *testing.T) {
	for _, n := range []int{1, 3} {
		rec := newRecorder()
		h := sqsbatch.Wrap(guardOf(idempotent.NewMemoryStore()), rec.handle, base(sqsbatch.WithConcurrency(n))...)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		resp, err := h(ctx, batch(msg("m1", "o-1", ""), msg("m2", "o-2", "")))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := failed(resp), []string{"m1", "m2"}; !slices.Equal(got, want) {
			t.Errorf("concurrency %d: failures %q, want %q", n, got, want)
		}
		if got := rec.ran(); len(got) != 0 {
			t.Errorf("concurrency %d: ran %q, want nothing", n, got)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	fn := func(context.Context, events.SQSMessage) error { return nil }
	tests := []struct {
		name  string
		store idempotent.Store
		fn    func(context.Context, events.SQSMessage) error
		opts  []sqsbatch.Option
		core  []idempotent.Option
	}{
		{name: "nil store", fn: fn},
		{name: "nil function", store: idempotent.NewMemoryStore()},
		{name: "concurrency 0", store: idempotent.NewMemoryStore(), fn: fn, opts: []sqsbatch.Option{sqsbatch.WithConcurrency(0)}},
		{name: "negative margin", store: idempotent.NewMemoryStore(), fn: fn, opts: []sqsbatch.Option{sqsbatch.WithDeadlineMargin(-time.Second)}},
		{name: "empty body key", store: idempotent.NewMemoryStore(), fn: fn, opts: []sqsbatch.Option{sqsbatch.WithBodyKey("")}},
		{name: "bad JMESPath", store: idempotent.NewMemoryStore(), fn: fn, opts: []sqsbatch.Option{sqsbatch.WithBodyKey("[[")}},
		{name: "unknown JMESPath function", store: idempotent.NewMemoryStore(), fn: fn, opts: []sqsbatch.Option{sqsbatch.WithBodyKey("nope(orderId)")}},
		{name: "JMESPath function arity", store: idempotent.NewMemoryStore(), fn: fn, opts: []sqsbatch.Option{sqsbatch.WithBodyKey("powertools_json(a, b)")}},
		{name: "bad custom function", store: idempotent.NewMemoryStore(), fn: fn, opts: []sqsbatch.Option{sqsbatch.WithBodyKey("orderId")}, core: []idempotent.Option{idempotent.WithJMESPathFunction("length", nil)}},
		{name: "empty attribute name", store: idempotent.NewMemoryStore(), fn: fn, opts: []sqsbatch.Option{sqsbatch.WithAttributeKey("")}},
		{name: "two keys", store: idempotent.NewMemoryStore(), fn: fn, opts: []sqsbatch.Option{sqsbatch.WithBodyKey("orderId"), sqsbatch.WithDeduplicationKey()}},
		{name: "bad core TTL", store: idempotent.NewMemoryStore(), fn: fn, core: []idempotent.Option{idempotent.WithTTL(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := sqsbatch.Wrap(guardOf(tt.store, tt.core...), tt.fn, tt.opts...)
			resp, err := h(context.Background(), batch(msg("m1", "o-1", "")))
			var ce *idempotent.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want a *idempotent.ConfigError", err, err)
			}
			if len(resp.BatchItemFailures) != 0 {
				t.Errorf("response %+v with a configuration error, want empty", resp)
			}
		})
	}
}

func TestDisabledRunsUnguarded(t *testing.T) {
	t.Setenv(idempotent.DisabledEnv, "true")
	runs := 0
	h := sqsbatch.Wrap(guardOf(nil), func(context.Context, events.SQSMessage) error { runs++; return nil }, base()...)
	b := batch(msg("m1", "o-1", ""))
	for range 2 {
		if _, err := h(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if runs != 2 {
		t.Errorf("runs %d, want 2 (guard disabled)", runs)
	}
}
