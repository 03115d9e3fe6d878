package dynamostore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
)

// TestReplicatedWriteConflict checks that an MRSC write conflict is retried
// (the write did not happen), and that a conflict that outlasts the call's
// deadline is a *StoreError wrapping it.
func TestReplicatedWriteConflict(t *testing.T) {
	conflict := &types.ReplicatedWriteConflictException{Message: aws.String("conflict")}
	now := time.Now()
	rec := idempotent.Record{ID: "fn#k", Status: idempotent.StatusInProgress, Owner: "o",
		Expiration: now.Add(time.Hour), LeaseExpiration: now.Add(time.Minute)}

	t.Run("retried until it lands", func(t *testing.T) {
		calls := 0
		f := &fakeAPI{put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
			if calls++; calls < 3 {
				return nil, conflict
			}
			return &dynamodb.PutItemOutput{}, nil
		}}
		_, ok, err := dynamostore.New(f, "t").Acquire(t.Context(), rec, now)
		if err != nil || !ok || calls != 3 {
			t.Fatalf("Acquire = %v, %v after %d PutItem calls; want acquired after 3", ok, err, calls)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		calls := 0
		f := &fakeAPI{update: func(*dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
			calls++
			return nil, conflict
		}}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		err := dynamostore.New(f, "t").Complete(ctx, idempotent.Record{ID: "fn#k", Owner: "o", Data: []byte("x"), Expiration: now.Add(time.Hour)})
		var se *idempotent.StoreError
		var rwc *types.ReplicatedWriteConflictException
		if !errors.As(err, &se) || !errors.As(err, &rwc) || calls < 2 {
			t.Fatalf("Complete = %v after %d calls; want a *StoreError wrapping the conflict, retried", err, calls)
		}
		if ctx.Err() == nil && calls < 2 {
			t.Fatal("gave up before the deadline")
		}
	})
	t.Run("other errors are not retried", func(t *testing.T) {
		calls := 0
		f := &fakeAPI{del: func(*dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) {
			calls++
			return nil, errors.New("boom")
		}}
		if err := dynamostore.New(f, "t").Release(t.Context(), "fn#k", "o"); err == nil || calls != 1 {
			t.Fatalf("Release = %v after %d calls; want an error after 1", err, calls)
		}
	})
}
