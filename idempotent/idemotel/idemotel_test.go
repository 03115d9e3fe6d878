package idemotel_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemotel"
)

func newTracing(t *testing.T) (*tracetest.InMemoryExporter, *sdktrace.TracerProvider) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return exp, tp
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// byName indexes the ended spans, failing on duplicates.
func byName(t *testing.T, spans tracetest.SpanStubs) map[string]tracetest.SpanStub {
	t.Helper()
	m := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		if _, dup := m[s.Name]; dup {
			t.Fatalf("two spans named %s", s.Name)
		}
		m[s.Name] = s
	}
	return m
}

func TestSpansOfANewRunAndAReplay(t *testing.T) {
	exp, tp := newTracing(t)
	tr := tp.Tracer("test")
	store := idempotent.NewMemoryStore()
	h := idempotent.Wrap(idempotent.New(store, idempotent.WithName("pay"), idemotel.Option(tp)), func(ctx context.Context, id string) (string, error) {
		_, span := tr.Start(ctx, "handler-work")
		span.End()
		return "ok " + id, nil
	})

	ctx, root := tr.Start(context.Background(), "lambda-invocation")
	if _, err := h(ctx, "order-1"); err != nil {
		t.Fatal(err)
	}
	root.End()
	spans := byName(t, exp.GetSpans())
	exp.Reset()
	for _, name := range []string{"lambda-invocation", idemotel.SpanCall, idemotel.SpanAcquire, idemotel.SpanRun, idemotel.SpanComplete, "handler-work"} {
		if _, ok := spans[name]; !ok {
			t.Fatalf("no span %s among %v", name, spans)
		}
	}
	if _, ok := spans[idemotel.SpanRelease]; ok {
		t.Fatal("a completed run has no release span")
	}
	parentOf := func(name string) string {
		p := spans[name].Parent.SpanID()
		for n, s := range spans {
			if s.SpanContext.SpanID() == p {
				return n
			}
		}
		return ""
	}
	for child, parent := range map[string]string{
		idemotel.SpanCall:     "lambda-invocation",
		idemotel.SpanAcquire:  idemotel.SpanCall,
		idemotel.SpanRun:      idemotel.SpanCall,
		idemotel.SpanComplete: idemotel.SpanCall,
		"handler-work":        idemotel.SpanRun,
	} {
		if got := parentOf(child); got != parent {
			t.Errorf("parent of %s = %q, want %s", child, got, parent)
		}
	}
	call := attrs(spans[idemotel.SpanCall])
	if call[idemotel.AttrOutcome].AsString() != "completed" || call[idemotel.AttrName].AsString() != "pay" ||
		call[idemotel.AttrReplay].AsBool() || call[idemotel.AttrTakeover].AsBool() || call[idemotel.AttrAttempts].AsInt64() != 1 ||
		len(call[idemotel.AttrRecord].AsString()) != len("pay#")+64 || call[idemotel.AttrLeaseEnd].AsString() == "" {
		t.Fatalf("call attributes %v", call)
	}
	for _, kv := range spans[idemotel.SpanCall].Attributes {
		if kv.Value.AsString() == "order-1" {
			t.Fatalf("the raw key is recorded in %s", kv.Key)
		}
	}

	// A replay: acquire only, outcome replayed.
	if _, err := h(context.Background(), "order-1"); err != nil {
		t.Fatal(err)
	}
	spans = byName(t, exp.GetSpans())
	if len(spans) != 2 {
		t.Fatalf("replay spans %v, want call and acquire", spans)
	}
	call = attrs(spans[idemotel.SpanCall])
	if call[idemotel.AttrOutcome].AsString() != "replayed" || !call[idemotel.AttrReplay].AsBool() || spans[idemotel.SpanCall].Status.Code == codes.Error {
		t.Fatalf("replay call span %v %v", call, spans[idemotel.SpanCall].Status)
	}
}

func TestSpansOfAFailedRun(t *testing.T) {
	exp, tp := newTracing(t)
	boom := errors.New("card declined")
	_, err := idempotent.Do(context.Background(), idempotent.New(idempotent.NewMemoryStore(), idemotel.Option(tp)), "s", "k", func(context.Context) (int, error) { return 0, boom })
	if err != boom {
		t.Fatal(err)
	}
	spans := byName(t, exp.GetSpans())
	if spans[idemotel.SpanRun].Status.Code != codes.Error || spans[idemotel.SpanRun].Status.Description != "card declined" {
		t.Fatalf("run span status %v", spans[idemotel.SpanRun].Status)
	}
	if _, ok := spans[idemotel.SpanRelease]; !ok {
		t.Fatal("no release span")
	}
	if spans[idemotel.SpanRelease].Status.Code == codes.Error {
		t.Fatal("the release succeeded")
	}
	if got := attrs(spans[idemotel.SpanCall])[idemotel.AttrOutcome].AsString(); got != "failed" || spans[idemotel.SpanCall].Status.Code != codes.Error {
		t.Fatalf("call outcome %q status %v", got, spans[idemotel.SpanCall].Status)
	}
}

func TestTakeoverAttributeAndEvent(t *testing.T) {
	exp, tp := newTracing(t)
	store := idempotent.NewMemoryStore()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	opts := []idempotent.Option{idempotent.WithClock(func() time.Time { return now }), idempotent.WithLease(time.Second), idemotel.Option(tp)}
	started, never := make(chan struct{}), make(chan struct{})
	defer close(never)
	go func() {
		_, _ = idempotent.Do(context.Background(), idempotent.New(store, opts...), "s", "k", func(context.Context) (int, error) {
			close(started)
			<-never
			return 0, nil
		})
	}()
	<-started
	now = now.Add(2 * time.Second)
	if _, err := idempotent.Do(context.Background(), idempotent.New(store, opts...), "s", "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	var call tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == idemotel.SpanCall {
			call = s
		}
	}
	if !attrs(call)[idemotel.AttrTakeover].AsBool() || len(call.Events) != 1 || call.Events[0].Name != "idempotent.lease_takeover" {
		t.Fatalf("takeover call span: %v, events %v", call.Attributes, call.Events)
	}
}

func TestHTTPAndBatchEvents(t *testing.T) {
	exp, tp := newTracing(t)
	o := idemotel.Observer(tp)
	ctx, span := tp.Tracer("test").Start(context.Background(), "invocation")
	o.HTTP(ctx, idempotent.HTTPReport{Method: "POST", Status: 409})
	o.Batch(ctx, idempotent.BatchReport{Source: "sqs", Records: 5, Failures: 1, Replays: 2})
	span.End()
	s := exp.GetSpans()[0]
	if len(s.Events) != 2 || s.Events[0].Name != "idempotent.http" || s.Events[1].Name != "idempotent.batch" {
		t.Fatalf("events %v", s.Events)
	}
	ev := map[attribute.Key]attribute.Value{}
	for _, e := range s.Events {
		for _, kv := range e.Attributes {
			ev[kv.Key] = kv.Value
		}
	}
	if ev[idemotel.AttrStatusClass].AsString() != "4xx" || ev[idemotel.AttrRecords].AsInt64() != 5 || ev[idemotel.AttrReplays].AsInt64() != 2 {
		t.Fatalf("event attributes %v", ev)
	}
}

func TestSpansOfAPanic(t *testing.T) {
	exp, tp := newTracing(t)
	func() {
		defer func() { _ = recover() }()
		_, _ = idempotent.Do(context.Background(), idempotent.New(idempotent.NewMemoryStore(), idemotel.Option(tp)), "s", "k", func(context.Context) (int, error) { panic("boom") })
	}()
	spans := byName(t, exp.GetSpans())
	for _, name := range []string{idemotel.SpanCall, idemotel.SpanRun} {
		if spans[name].Status.Code != codes.Error {
			t.Errorf("%s span status %v, want an error", name, spans[name].Status)
		}
	}
	if _, ok := spans[idemotel.SpanRelease]; !ok {
		t.Error("no release span after the panic")
	}
	if got := attrs(spans[idemotel.SpanCall])[idemotel.AttrOutcome].AsString(); got != "panicked" {
		t.Errorf("outcome %q", got)
	}
}

// failingStore refuses every Acquire, as a store that is down does.
type failingStore struct{ *idempotent.MemoryStore }

func (failingStore) Acquire(context.Context, idempotent.Record, time.Time) (*idempotent.Record, bool, error) {
	return nil, false, errors.New("connection refused")
}

// declined is a handler's own error type.
type declined struct{ code string }

func (d *declined) Error() string { return "declined: " + d.code }

func TestErrorTypeOnErrorSpans(t *testing.T) {
	tests := []struct {
		name  string
		store idempotent.Store
		fn    func(context.Context) (int, error)
		spans map[string]string // span name → error.type
	}{
		{
			name:  "handler error type",
			store: idempotent.NewMemoryStore(),
			fn:    func(context.Context) (int, error) { return 0, fmt.Errorf("charge: %w", &declined{"51"}) },
			spans: map[string]string{idemotel.SpanRun: "*idemotel_test.declined", idemotel.SpanCall: "*idemotel_test.declined"},
		},
		{
			name:  "store error",
			store: failingStore{idempotent.NewMemoryStore()},
			fn:    func(context.Context) (int, error) { return 1, nil },
			spans: map[string]string{idemotel.SpanAcquire: "*idempotent.StoreError", idemotel.SpanCall: "*idempotent.StoreError"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp, tp := newTracing(t)
			if _, err := idempotent.Do(context.Background(), idempotent.New(tt.store, idemotel.Option(tp)), "s", "k", tt.fn); err == nil {
				t.Fatal("no error")
			}
			spans := byName(t, exp.GetSpans())
			for name, want := range tt.spans {
				s, ok := spans[name]
				if !ok {
					t.Fatalf("no %s span", name)
				}
				if got := attrs(s)["error.type"]; s.Status.Code != codes.Error || got.AsString() != want {
					t.Errorf("%s span: status %v error.type %q, want Error and %q", name, s.Status, got.AsString(), want)
				}
			}
			for _, s := range spans {
				if _, set := attrs(s)["error.type"]; set && s.Status.Code != codes.Error {
					t.Errorf("%s span succeeded but has error.type", s.Name)
				}
			}
		})
	}
}

func TestErrorTypeValues(t *testing.T) {
	store := &idempotent.StoreError{Op: "acquire", RecordID: "k", Err: errors.New("x")}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"sentinel", idempotent.ErrLeaseLost, "idempotent.ErrLeaseLost"},
		{"wrapped sentinel", fmt.Errorf("pay: %w", idempotent.ErrInProgress), "idempotent.ErrInProgress"},
		{"store error", store, "*idempotent.StoreError"},
		{"join classifies the first", errors.Join(&declined{"05"}, store), "*idemotel_test.declined"},
		{"nil", nil, "_OTHER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if kv := idemotel.ErrorType(tt.err); kv.Key != "error.type" || kv.Value.AsString() != tt.want {
				t.Fatalf("ErrorType = %v=%q, want error.type=%q", kv.Key, kv.Value.AsString(), tt.want)
			}
		})
	}
}

func TestScopeVersion(t *testing.T) {
	exp, tp := newTracing(t)
	if _, err := idempotent.Do(context.Background(), idempotent.New(idempotent.NewMemoryStore(), idemotel.Option(tp)), "s", "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) == 0 {
		t.Fatal("no spans")
	}
	for _, s := range spans {
		if s.InstrumentationScope.Name != idemotel.ScopeName || s.InstrumentationScope.Version == "" || s.InstrumentationScope.Version != idemotel.Version() {
			t.Fatalf("%s span scope %+v, want %s at %q", s.Name, s.InstrumentationScope, idemotel.ScopeName, idemotel.Version())
		}
	}
}

// TestNilTracerProvider: Option(nil) and Observer(nil) use the global
// provider instead of panicking. (Not parallel: it sets the global.)
func TestNilTracerProvider(t *testing.T) {
	exp, tp := newTracing(t)
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	for _, opt := range []idempotent.Option{idemotel.Option(nil), idempotent.WithObserver(idemotel.Observer(nil))} {
		if _, err := idempotent.Do(context.Background(), idempotent.New(idempotent.NewMemoryStore(), opt), "s", "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(byNameAll(exp.GetSpans(), idemotel.SpanCall)); n != 2 {
		t.Fatalf("%d call spans on the global provider, want 2", n)
	}
}

func byNameAll(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}
