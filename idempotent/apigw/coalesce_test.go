package apigw_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
)

// acquireCounter counts the store's conditional writes and reads.
type acquireCounter struct {
	idempotent.Store
	acquires, gets atomic.Int64
}

func (s *acquireCounter) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	s.acquires.Add(1)
	return s.Store.Acquire(ctx, rec, now)
}

func (s *acquireCounter) Get(ctx context.Context, key string) (*idempotent.Record, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, key)
}

// blockingCtx closes blocked the first time a call blocks on it (asks for
// Done).
type blockingCtx struct {
	context.Context
	once    sync.Once
	blocked chan struct{}
}

func (c *blockingCtx) Done() <-chan struct{} {
	c.once.Do(func() { close(c.blocked) })
	return c.Context.Done()
}

type callIndex struct{}

// TestCoalesceV2: 16 concurrent invocations of one request in one
// environment (Lambda Managed Instances) get no 409: one runs, the others
// wait in memory and replay its response; the store sees one acquire.
func TestCoalesceV2(t *testing.T) {
	const dupes = 16
	store := &acquireCounter{Store: idempotent.NewMemoryStore()}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ctxs := make([]*blockingCtx, dupes)
	for i := range ctxs {
		ctxs[i] = &blockingCtx{Context: context.WithValue(ctx, callIndex{}, i), blocked: make(chan struct{})}
	}
	var runs atomic.Int64
	w := apigw.WrapV2(idempotent.New(store), func(ctx context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		runs.Add(1)
		mine := ctx.Value(callIndex{}).(int)
		for i, c := range ctxs { // run until every other invocation waits for this one
			if i == mine {
				continue
			}
			select {
			case <-c.blocked:
			case <-ctx.Done():
				return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("invocation %d never blocked", i)
			}
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"Content-Type": "application/json"}, Body: fmt.Sprintf(`{"by":%d}`, mine)}, nil
	})
	ev := loadV2(t)
	resps := make([]events.APIGatewayV2HTTPResponse, dupes)
	errs := make([]error, dupes)
	var wg sync.WaitGroup
	for i := range dupes {
		wg.Go(func() { resps[i], errs[i] = w(ctxs[i], ev) })
	}
	wg.Wait()
	fresh := 0
	for i, r := range resps {
		if errs[i] != nil || r.StatusCode != 201 {
			t.Fatalf("invocation %d: %d %s, %v; want 201 (no 409 inside one process)", i, r.StatusCode, r.Body, errs[i])
		}
		if r.Body != resps[0].Body {
			t.Fatalf("invocation %d body %s, invocation 0 %s", i, r.Body, resps[0].Body)
		}
		if r.Headers[apigw.HeaderReplayed] != "true" {
			fresh++
		}
	}
	if runs.Load() != 1 || fresh != 1 || store.acquires.Load() != 1 || store.gets.Load() != 0 {
		t.Fatalf("runs %d, unreplayed responses %d, acquires %d, gets %d; want 1, 1, 1, 0", runs.Load(), fresh, store.acquires.Load(), store.gets.Load())
	}
}
