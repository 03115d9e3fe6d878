package apigw_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
)

func loadV2(tb testing.TB) events.APIGatewayV2HTTPRequest {
	tb.Helper()
	b, err := os.ReadFile("../../events/apigw-v2-post-payment.json")
	if err != nil {
		tb.Fatal(err)
	}
	var e events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &e); err != nil {
		tb.Fatal(err)
	}
	return e
}

func created(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"id":"p-1"}`}, nil
}

func TestConfigErrorsAnswer500(t *testing.T) {
	store := idempotent.NewMemoryStore()
	tests := []struct {
		name  string
		store idempotent.Store
		opts  []apigw.Option
		core  []idempotent.Option
		nilH  bool
	}{
		{name: "nil store", store: nil},
		{name: "nil handler", store: store, nilH: true},
		{name: "scope for another event type", store: store, opts: []apigw.Option{apigw.WithScope(func(context.Context, events.ALBTargetGroupRequest) (string, error) { return "x", nil })}},
		{name: "nil scope", store: store, opts: []apigw.Option{apigw.WithScope[events.APIGatewayV2HTTPRequest](nil)}},
		{name: "no methods", store: store, opts: []apigw.Option{apigw.WithMethods()}},
		{name: "bad header name", store: store, opts: []apigw.Option{apigw.WithFingerprintHeaders("a b")}},
		{name: "nil predicate", store: store, opts: []apigw.Option{apigw.WithStoredStatus(nil)}},
		{name: "nil clock", store: store, core: []idempotent.Option{idempotent.WithClock(nil)}},
		{name: "TTL under a second", store: store, core: []idempotent.Option{idempotent.WithTTL(time.Millisecond)}},
		{name: "replay hook of another response type", store: store, opts: []apigw.Option{apigw.WithReplayHook(func(_ context.Context, _ idempotent.Replay, r events.ALBTargetGroupResponse) events.ALBTargetGroupResponse {
			return r
		})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := created
			if tt.nilH {
				h = nil
			}
			w := apigw.WrapV2(idempotent.New(tt.store, tt.core...), h, tt.opts...)
			r, err := w(context.Background(), loadV2(t))
			if err != nil {
				t.Fatal(err)
			}
			if r.StatusCode != 500 || r.Headers["Content-Type"] != apigw.ContentTypeProblem || !strings.Contains(r.Body, "misconfigured") {
				t.Fatalf("%+v", r)
			}
		})
	}
}

func TestScopeFunctionError(t *testing.T) {
	ran := false
	w := apigw.WrapV2(idempotent.New(idempotent.NewMemoryStore()), func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		ran = true
		return created(ctx, e)
	}, apigw.WithScope(func(context.Context, events.APIGatewayV2HTTPRequest) (string, error) {
		return "", errors.New("no tenant")
	}))
	r, err := w(context.Background(), loadV2(t))
	if err != nil || r.StatusCode != 500 || ran {
		t.Fatalf("%+v %v ran=%v", r, err, ran)
	}
}

// TestLocalCacheReplaysWithoutStore: with WithLocalCache a replay in the same
// process makes no store call.
func TestLocalCacheReplaysWithoutStore(t *testing.T) {
	store := &countingStore{Store: idempotent.NewMemoryStore()}
	w := apigw.WrapV2(idempotent.New(store, idempotent.WithLocalCache(16)), created)
	ev := loadV2(t)
	if _, err := w(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	before := store.calls
	r, err := w(context.Background(), ev)
	if err != nil || r.Headers[apigw.HeaderReplayed] != "true" {
		t.Fatalf("%+v %v", r, err)
	}
	if store.calls != before {
		t.Fatalf("replay made %d store calls, want 0", store.calls-before)
	}
}

type countingStore struct {
	idempotent.Store
	calls int
}

func (s *countingStore) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	s.calls++
	return s.Store.Acquire(ctx, rec, now)
}

func (s *countingStore) Complete(ctx context.Context, rec idempotent.Record) error {
	s.calls++
	return s.Store.Complete(ctx, rec)
}

func BenchmarkWrapV2(b *testing.B) {
	ev := loadV2(b)
	ctx := context.Background()
	b.Run("new", func(b *testing.B) {
		w := apigw.WrapV2(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithName("bench")), created)
		keys := make([]string, b.N)
		for i := range keys {
			keys[i] = "key-" + strconv.Itoa(i)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			e := ev
			e.Headers = map[string]string{"idempotency-key": keys[i], "content-type": "application/json"}
			if _, err := w(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("replay", func(b *testing.B) {
		w := apigw.WrapV2(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithName("bench")), created)
		if _, err := w(ctx, ev); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			r, err := w(ctx, ev)
			if err != nil || r.Headers[apigw.HeaderReplayed] != "true" {
				b.Fatal(r, err)
			}
		}
	})
}
