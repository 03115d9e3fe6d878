package dynamostore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// blockingCtx closes blocked the first time a call blocks on it (asks for
// Done): a waiter in memory, or a store round trip.
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

// TestCoalesceOnServer: 16 concurrent duplicates in one process make one
// PutItem (the acquire), no GetItem (no polling), one UpdateItem (the
// complete); the function runs once and all 16 get its result.
func TestCoalesceOnServer(t *testing.T) {
	const dupes = 16
	client, counter := testdynamo.CountingClient(t)
	g := idempotent.New(dynamostore.New(client, testdynamo.NewTable(t, client)), idempotent.WithWait(time.Minute))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ctxs := make([]*blockingCtx, dupes)
	for i := range ctxs {
		ctxs[i] = &blockingCtx{Context: context.WithValue(ctx, callIndex{}, i), blocked: make(chan struct{})}
	}
	counter.Reset()
	var runs sync.Map
	fn := func(ctx context.Context) (string, error) {
		mine := ctx.Value(callIndex{}).(int)
		runs.Store(mine, true)
		// Run until every other call blocks: waiting for this one.
		for i, c := range ctxs {
			if i == mine {
				continue
			}
			select {
			case <-c.blocked:
			case <-ctx.Done():
				return "", fmt.Errorf("call %d never blocked", i)
			}
		}
		return fmt.Sprintf("run by %d", mine), nil
	}
	answers := make([]string, dupes)
	errs := make([]error, dupes)
	var wg sync.WaitGroup
	for i := range dupes {
		wg.Go(func() { answers[i], errs[i] = idempotent.Do(ctxs[i], g, "charge", "order-16", fn) })
	}
	wg.Wait()
	n := 0
	runs.Range(func(any, any) bool { n++; return true })
	for i := range dupes {
		if errs[i] != nil || answers[i] != answers[0] {
			t.Fatalf("call %d = %q, %v; call 0 = %q", i, answers[i], errs[i], answers[0])
		}
	}
	if got := counter.Counts(); n != 1 || got["PutItem"] != 1 || got["GetItem"] != 0 || got["UpdateItem"] != 1 || counter.Total() != 2 {
		t.Fatalf("%d runs, round trips %v; want 1 run, PutItem 1 (acquire), UpdateItem 1 (complete), no GetItem", n, got)
	}
}
