package sqsbatch_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/sqsbatch"
	"github.com/idemlambda/idemlambda/internal/dynamocost"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// again marks m as delivered n times.
func again(m events.SQSMessage, n int) events.SQSMessage {
	attrs := map[string]string{}
	for k, v := range m.Attributes {
		attrs[k] = v
	}
	m.Attributes = attrs
	m.Attributes["ApproximateReceiveCount"] = fmt.Sprint(n)
	return m
}

func tenMessages(receiveCount int) []events.SQSMessage {
	var msgs []events.SQSMessage
	for i := range 10 {
		msgs = append(msgs, again(msg(fmt.Sprint("m", i), fmt.Sprint("order-", i), ""), receiveCount))
	}
	return msgs
}

// TestRedeliveredBatchIsOneRequest: on dynalite, a redelivered batch of ten
// completed records costs one request (a BatchGetItem), counted at the HTTP
// boundary; a fresh batch costs no look-up.
func TestRedeliveredBatchIsOneRequest(t *testing.T) {
	meter := &dynamocost.Meter{Next: &http.Transport{}}
	client := testdynamo.NewClient(testdynamo.Endpoint(t), func(o *dynamodb.Options) {
		o.HTTPClient = &http.Client{Transport: meter}
	})
	store := dynamostore.New(client, testdynamo.NewTable(t, client))
	rec := newRecorder()
	h := sqsbatch.Wrap(idempotent.New(store, idempotent.WithLogger(quiet)), rec.handle)
	ctx := context.Background()

	meter.Reset()
	resp, err := h(ctx, batch(tenMessages(1)...))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("fresh batch: %v, %v", failed(resp), err)
	}
	if st := meter.Stats(); st.Calls["BatchGetItem"] != 0 || st.Calls["GetItem"] != 0 || st.Total() != 20 {
		t.Errorf("fresh batch: calls %v, want 10 PutItems and 10 UpdateItems and no look-up", st.Calls)
	}

	meter.Reset()
	rec.reset()
	resp, err = h(ctx, batch(tenMessages(2)...))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivered batch: %v, %v", failed(resp), err)
	}
	if ran := rec.ran(); len(ran) != 0 {
		t.Errorf("redelivered batch ran %v", ran)
	}
	if st := meter.Stats(); st.Total() != 1 || st.Calls["BatchGetItem"] != 1 || st.WriteUnits != 0 {
		t.Errorf("redelivered batch: calls %v, %d write units; want one BatchGetItem", st.Calls, st.WriteUnits)
	}
}

// lookupStore is a memory store that counts its calls and leaves the first
// drop keys out of PeekBatch's answer, as DynamoDB's unprocessed keys.
type lookupStore struct {
	*idempotent.MemoryStore
	batches, peeks, acquires atomic.Int64
	drop                     atomic.Int64
}

func (s *lookupStore) PeekBatch(ctx context.Context, keys []string) (map[string]*idempotent.Record, error) {
	s.batches.Add(1)
	recs, err := s.MemoryStore.PeekBatch(ctx, keys)
	for _, k := range keys[:min(len(keys), int(s.drop.Load()))] {
		delete(recs, k)
	}
	return recs, err
}

func (s *lookupStore) Peek(ctx context.Context, key string) (*idempotent.Record, error) {
	s.peeks.Add(1)
	return s.MemoryStore.Peek(ctx, key)
}

func (s *lookupStore) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	s.acquires.Add(1)
	return s.MemoryStore.Acquire(ctx, rec, now)
}

// TestPrefetchKeepsSemantics: the batch look-up changes where a record's
// replay comes from, never which records are acknowledged, run or skipped.
func TestPrefetchKeepsSemantics(t *testing.T) {
	ctx := context.Background()
	t.Run("FIFO: a completed record after a failure in its group is not acknowledged", func(t *testing.T) {
		store := &lookupStore{MemoryStore: idempotent.NewMemoryStore()}
		rec := newRecorder()
		h := sqsbatch.Wrap(idempotent.New(store, idempotent.WithLogger(quiet)), rec.handle)
		// c completes alone first.
		if resp, _ := h(ctx, batch(fifo("c", "G", ""))); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("first batch failed %v", failed(resp))
		}
		rec.reset()
		resp, err := h(ctx, batch(again(fifo("a", "G", "fail"), 2), again(fifo("c", "G", ""), 2), again(fifo("x", "H", ""), 2)))
		if err != nil {
			t.Fatal(err)
		}
		if got := failed(resp); !slices.Equal(got, []string{"a", "c"}) {
			t.Errorf("failed %v, want [a c]: the group stops at a", got)
		}
		if got := rec.ran(); !slices.Equal(got, []string{"a", "x"}) {
			t.Errorf("ran %v, want [a x]", got)
		}
		if n := store.batches.Load(); n != 2-1 {
			t.Errorf("%d batch look-ups, want 1 (the fresh first batch has none)", n)
		}
	})
	t.Run("unprocessed keys go the normal way", func(t *testing.T) {
		store := &lookupStore{MemoryStore: idempotent.NewMemoryStore()}
		rec := newRecorder()
		h := sqsbatch.Wrap(idempotent.New(store, idempotent.WithLogger(quiet)), rec.handle)
		msgs := tenMessages(1)
		if resp, _ := h(ctx, batch(msgs...)); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("first batch failed %v", failed(resp))
		}
		store.drop.Store(3)
		rec.reset()
		store.peeks.Store(0)
		store.acquires.Store(0)
		resp, err := h(ctx, batch(tenMessages(2)...))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("redelivered batch: %v, %v", failed(resp), err)
		}
		if got := rec.ran(); len(got) != 0 {
			t.Errorf("ran %v", got)
		}
		if p, a := store.peeks.Load(), store.acquires.Load(); p+a != 3 {
			t.Errorf("%d peeks and %d acquires, want 3 calls for the 3 unprocessed keys", p, a)
		}
	})
}
