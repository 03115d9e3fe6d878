package dynamostore_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/benchdata"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// repeatedUpdate sends every UpdateItem twice, as the SDK's retryer does when
// the first answer is lost after the write landed: the caller sees the second
// answer.
type repeatedUpdate struct {
	dynamostore.API
}

func (r repeatedUpdate) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if _, err := r.API.UpdateItem(ctx, in, optFns...); err != nil {
		return nil, err
	}
	return r.API.UpdateItem(ctx, in, optFns...)
}

// A chunked result whose Complete landed but whose answer was lost: the
// retried update fails its condition, yet the record is ours and references
// the chunks. Complete must report success and keep them (found in review:
// the chunks were deleted and the key answered ErrCorruptRecord until its TTL).
func TestCompleteAnswerLostKeepsChunks(t *testing.T) {
	client := testdynamo.Client(t)
	table := testdynamo.NewTable(t, client)
	store := dynamostore.New(repeatedUpdate{client}, table)
	data := benchdata.Random(1<<20, 9) // 1 MB of noise: three chunks

	rec := held("owner-1")
	if _, ok, err := store.Acquire(t.Context(), rec, now); err != nil || !ok {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	rec.Status, rec.Data = idempotent.StatusCompleted, data
	if err := store.Complete(t.Context(), rec); err != nil {
		t.Fatalf("Complete whose first answer was lost = %v, want success", err)
	}
	got, err := store.Get(t.Context(), testKey)
	if err != nil || got == nil || got.Status != idempotent.StatusCompleted || !bytes.Equal(got.Data, data) {
		t.Fatalf("Get = %v, %v; want the completed 1 MB result", got, err)
	}

	// Through the core: the run completes once and replays byte for byte.
	runs := 0
	fn := func(context.Context) ([]byte, error) { runs++; return data, nil }
	for range 2 {
		out, err := idempotent.Do(t.Context(), idempotent.New(store), "step", "lost-answer", fn)
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("Do = %d bytes, %v", len(out), err)
		}
	}
	if runs != 1 {
		t.Fatalf("runs = %d, want 1", runs)
	}
}

// repeatedPut sends every PutItem twice, as the SDK's retryer does when the
// first answer is lost after the write landed.
type repeatedPut struct {
	dynamostore.API
}

func (r repeatedPut) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if _, err := r.API.PutItem(ctx, in, optFns...); err != nil {
		return nil, err
	}
	return r.API.PutItem(ctx, in, optFns...)
}

// TestAnswerLostSmallResult: with every acquire and complete write landing
// twice, the store recognises its own landed writes (the core no longer
// checks): the run happens once, completes, and replays.
func TestAnswerLostSmallResult(t *testing.T) {
	client := testdynamo.Client(t)
	table := testdynamo.NewTable(t, client)
	store := dynamostore.New(repeatedUpdate{repeatedPut{client}}, table)
	runs := 0
	fn := func(context.Context) (string, error) { runs++; return "paid", nil }
	for range 2 {
		out, err := idempotent.Do(t.Context(), idempotent.New(store), "step", "lost-answer-small", fn)
		if err != nil || out != "paid" {
			t.Fatalf("Do = %q, %v; want paid", out, err)
		}
	}
	if runs != 1 {
		t.Fatalf("runs = %d, want 1", runs)
	}
}
