package idempotent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/idemlambda/idemlambda/idempotent"
)

// TestTTLShorterThanLease: the in-progress record lives at least as long as
// its lease (contract §3 step 3), so a duplicate that arrives after the TTL
// but within the lease finds the key in progress instead of running (issue
// 10, defect 3).
func TestTTLShorterThanLease(t *testing.T) {
	clk := newClock()
	clk.Advance(300 * time.Millisecond) // the lease end falls inside a second
	store := idempotent.NewMemoryStore()
	opts := []idempotent.Option{idempotent.WithClock(clk.Now), idempotent.WithTTL(time.Second), idempotent.WithLease(10 * time.Second)}
	g := idempotent.New(store, opts...)
	started, finish := make(chan struct{}), make(chan struct{})
	firstErr := make(chan error, 1)
	go func() {
		_, err := idempotent.Do(context.Background(), idempotent.New(elsewhere(store), opts...), "step", "k", func(context.Context) (string, error) {
			close(started)
			<-finish
			return "first", nil
		})
		firstErr <- err
	}()
	<-started
	rec, err := store.Get(context.Background(), recordID(t, "k"))
	if err != nil || rec == nil {
		t.Fatalf("Get = %v, %v", rec, err)
	}
	if rec.Expiration.Before(rec.LeaseExpiration) {
		t.Fatalf("in-progress expiration %v ends before the lease %v", rec.Expiration, rec.LeaseExpiration)
	}

	// The lease ends at t+10.3s. t+2.3s is past the TTL; t+10.2s is in
	// the last, partial second of the lease (an expiration rounded down
	// would end at t+10s).
	for _, after := range []time.Duration{2 * time.Second, 7900 * time.Millisecond} {
		clk.Advance(after)
		ran := false
		_, err := idempotent.Do(context.Background(), g, "step", "k", func(context.Context) (string, error) {
			ran = true
			return "duplicate", nil
		})
		if ran || !errors.Is(err, idempotent.ErrInProgress) {
			t.Fatalf("duplicate at %v: ran %v, err %v; want ErrInProgress without running", clk.Now(), ran, err)
		}
	}
	close(finish)
	if err := <-firstErr; err != nil {
		t.Fatalf("first run: %v", err)
	}
}

// wrapRecordID is the record id Wrap uses for key material key under the
// default name.
func wrapRecordID(t *testing.T, key string) string {
	t.Helper()
	var id string
	w := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore()), func(ctx context.Context, _ order) (int, error) {
		id, _ = idempotent.RecordIDFromContext(ctx)
		return 0, nil
	}, idempotent.WithKeyFunc(func(order) (string, error) { return key, nil }))
	if _, err := w(context.Background(), order{}); err != nil {
		t.Fatal(err)
	}
	return id
}

// recordID is the record id Do uses for key in step "step" under the
// default name.
func recordID(t *testing.T, key string) string {
	t.Helper()
	var id string
	store := idempotent.NewMemoryStore()
	if _, err := idempotent.Do(context.Background(), idempotent.New(store), "step", key, func(ctx context.Context) (int, error) {
		id, _ = idempotent.RecordIDFromContext(ctx)
		return 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// declinedError is a user's error type, as a Step Functions Catch or
// Lambda's errorType would name it.
type declinedError struct{ Code string }

func (e *declinedError) Error() string { return "card declined: " + e.Code }

// lambdaErrorType is the errorType aws-lambda-go reports for the error that
// h returns: it builds the invoke response with its own code.
func lambdaErrorType[In, Out any](t *testing.T, h func(context.Context, In) (Out, error), event In) *messages.InvokeResponse_Error {
	t.Helper()
	payload, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 Function.Invoke is aws-lambda-go's own way from a handler's error to the InvokeResponse_Error Lambda reports.
	fn := lambda.NewFunction(lambda.NewHandler(h))
	var resp messages.InvokeResponse
	req := &messages.InvokeRequest{Payload: payload, Deadline: messages.InvokeRequest_Timestamp{Seconds: time.Now().Add(time.Minute).Unix()}}
	if err := fn.Invoke(req, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Error == nil {
		t.Fatalf("invoke succeeded with %s, want an error", resp.Payload)
	}
	return resp.Error
}

// TestHandlerErrorKeepsIdentity: the handler's error leaves Wrap and Do as
// the same value (issue 10, defect 4), so errors.As finds the user's type
// and Lambda reports it as the errorType.
func TestHandlerErrorKeepsIdentity(t *testing.T) {
	userErr := &declinedError{Code: "insufficient_funds"}
	h := func(context.Context, order) (string, error) { return "", userErr }
	wrapped := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore()), h, idempotent.WithKeyPath("id"))

	_, err := wrapped(context.Background(), order{ID: "o-1"})
	if err != userErr {
		t.Fatalf("Wrap returned %T %v, want the handler's error value itself", err, err)
	}
	if de, ok := errors.AsType[*declinedError](err); !ok || de.Code != "insufficient_funds" {
		t.Fatalf("errors.As = %v, %v", de, ok)
	}
	_, err = idempotent.Do(context.Background(), idempotent.New(idempotent.NewMemoryStore()), "step", "k", func(context.Context) (int, error) { return 0, userErr })
	if err != userErr {
		t.Fatalf("Do returned %T %v, want the handler's error value itself", err, err)
	}
	if got := lambdaErrorType(t, wrapped, order{ID: "o-2"}); got.Type != "declinedError" || got.Message != userErr.Error() {
		t.Fatalf("Lambda reports %q: %q, want declinedError: %q", got.Type, got.Message, userErr.Error())
	}
}

// TestSentinelErrorTypes: the package's own errors reach Lambda with a
// meaningful errorType and still match their sentinels.
func TestSentinelErrorTypes(t *testing.T) {
	clk := newClock()
	tests := []struct {
		name     string
		setup    func(store idempotent.Store)
		opts     []any
		handler  func(context.Context, order) (string, error)
		event    order
		sentinel error
		wantType string
	}{
		{
			name:     "no key",
			opts:     []any{idempotent.WithKeyPath("id"), idempotent.WithRequireKey()},
			event:    order{},
			sentinel: idempotent.ErrNoKey,
			wantType: "NoKeyError",
		},
		{
			name:     "key function fails",
			opts:     []any{idempotent.WithKeyFunc(func(order) (string, error) { return "", errors.New("no header") })},
			event:    order{ID: "o-1"},
			sentinel: idempotent.ErrNoKey,
			wantType: "NoKeyError",
		},
		{
			name: "payload mismatch",
			setup: func(store idempotent.Store) {
				w := idempotent.Wrap(idempotent.New(store, idempotent.WithClock(clk.Now)), func(context.Context, order) (string, error) { return "ok", nil },
					idempotent.WithKeyPath("id"), idempotent.WithPayloadPath("amount"))
				if _, err := w(context.Background(), order{ID: "o-1", Amount: 1}); err != nil {
					panic(err)
				}
			},
			opts:     []any{idempotent.WithKeyPath("id"), idempotent.WithPayloadPath("amount")},
			event:    order{ID: "o-1", Amount: 2},
			sentinel: idempotent.ErrPayloadMismatch,
			wantType: "PayloadMismatchError",
		},
		{
			name:     "lease lost",
			opts:     []any{idempotent.WithKeyPath("id"), idempotent.WithLease(time.Second)},
			event:    order{ID: "o-1"},
			sentinel: idempotent.ErrLeaseLost,
			wantType: "LeaseLostError",
		},
		{
			name: "corrupt record",
			setup: func(store idempotent.Store) {
				w := idempotent.Wrap(idempotent.New(store, idempotent.WithClock(clk.Now)), func(context.Context, order) (int, error) { return 1, nil },
					idempotent.WithKeyFunc(func(o order) (string, error) { return o.ID, nil }))
				if _, err := w(context.Background(), order{ID: "o-1"}); err != nil {
					panic(err)
				}
			},
			opts:     []any{idempotent.WithKeyFunc(func(o order) (string, error) { return o.ID, nil })},
			event:    order{ID: "o-1"},
			sentinel: idempotent.ErrCorruptRecord, // the stored 1 does not decode into a string
			wantType: "CorruptRecordError",
		},
		{
			name: "in progress",
			setup: func(store idempotent.Store) {
				if _, _, err := store.Acquire(context.Background(), idempotent.Record{
					ID: wrapRecordID(t, "o-1"), Status: idempotent.StatusInProgress,
					Expiration: clk.Now().Add(time.Hour), LeaseExpiration: clk.Now().Add(time.Minute), Owner: "someone",
				}, clk.Now()); err != nil {
					panic(err)
				}
			},
			opts:     []any{idempotent.WithKeyFunc(func(o order) (string, error) { return o.ID, nil })},
			event:    order{ID: "o-1"},
			sentinel: idempotent.ErrInProgress,
			wantType: "InProgressError",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := idempotent.NewMemoryStore()
			if tt.setup != nil {
				tt.setup(store)
			}
			h := tt.handler
			if h == nil {
				h = func(context.Context, order) (string, error) { return "ran", nil }
			}
			if tt.sentinel == idempotent.ErrLeaseLost {
				h = func(ctx context.Context, o order) (string, error) {
					// Another invocation takes the key over after the lease.
					clk.Advance(2 * time.Second)
					id, _ := idempotent.RecordIDFromContext(ctx)
					if _, ok, err := store.Acquire(ctx, idempotent.Record{ID: id, Status: idempotent.StatusInProgress,
						Expiration: clk.Now().Add(time.Hour), LeaseExpiration: clk.Now().Add(time.Minute), Owner: "other"}, clk.Now()); err != nil || !ok {
						return "", fmt.Errorf("take over: %v, %w", ok, err)
					}
					return "late", nil
				}
			}
			wrapped := wrapWith(store, h, append([]any{idempotent.WithClock(clk.Now)}, tt.opts...)...)
			_, err := wrapped(context.Background(), tt.event)
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v, want %v", err, tt.sentinel)
			}
			if tt.sentinel == idempotent.ErrLeaseLost {
				tt.event.ID = "o-2" // the first key is the other invocation's now
			}
			if got := lambdaErrorType(t, wrapped, tt.event); got.Type != tt.wantType {
				t.Fatalf("Lambda reports errorType %q (%s), want %q", got.Type, got.Message, tt.wantType)
			}
		})
	}
}

// TestDoStepsKeepSeparateRecords: two guarded steps with one key do not
// share a record (Powertools keys by the guarded function), and the step is
// required.
func TestDoStepsKeepSeparateRecords(t *testing.T) {
	store := idempotent.NewMemoryStore()
	ctx := context.Background()
	charged, err := idempotent.Do(ctx, idempotent.New(store), "charge", "order-1", func(context.Context) (string, error) { return "ch_1", nil })
	if err != nil {
		t.Fatal(err)
	}
	mailed, err := idempotent.Do(ctx, idempotent.New(store), "send-receipt", "order-1", func(context.Context) (string, error) { return "sent", nil })
	if err != nil || mailed != "sent" {
		t.Fatalf("second step = %q, %v; want it to run (not replay %q)", mailed, err, charged)
	}
	again, err := idempotent.Do(ctx, idempotent.New(store), "charge", "order-1", func(context.Context) (string, error) { return "ch_2", nil })
	if err != nil || again != "ch_1" {
		t.Fatalf("charge again = %q, %v; want the replay ch_1", again, err)
	}
	// "a" + NUL + "b\x00c" and "a\x00b" + NUL + "c" cannot collide: a step has no NUL.
	for _, step := range []string{"", "a\x00b"} {
		_, err := idempotent.Do(ctx, idempotent.New(store), step, "k", func(context.Context) (int, error) { return 1, nil })
		if ce, ok := errors.AsType[*idempotent.ConfigError](err); !ok || ce.Option != "step" {
			t.Fatalf("step %q: err = %v, want a *ConfigError for the step", step, err)
		}
	}
}
