package dynamostore

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Multi-Region strong consistency (MRSC) global tables reject a write that
// conflicts with a concurrent write to the same item in another Region with
// ReplicatedWriteConflictException. The write did not happen, so it is safe
// to send again; conflictRetry does, with a short backoff, for as long as the
// call's context allows, and then returns the last error (which the Store
// reports as a *idempotent.StoreError). Reads pass through.
type conflictRetry struct {
	API
}

const (
	conflictFirstDelay = 10 * time.Millisecond
	conflictMaxDelay   = 200 * time.Millisecond
	// conflictMaxTries bounds the tries when ctx has no deadline.
	conflictMaxTries = 8
)

func retryConflicts[T any](ctx context.Context, call func() (T, error)) (T, error) {
	delay := conflictFirstDelay
	for try := 1; ; try++ {
		out, err := call()
		var rwc *types.ReplicatedWriteConflictException
		if err == nil || !errors.As(err, &rwc) {
			return out, err
		}
		dl, hasDeadline := ctx.Deadline()
		if (!hasDeadline && try >= conflictMaxTries) || (hasDeadline && time.Until(dl) <= delay) {
			return out, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return out, err
		case <-t.C:
		}
		delay = min(2*delay, conflictMaxDelay)
	}
}

func (c conflictRetry) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return retryConflicts(ctx, func() (*dynamodb.PutItemOutput, error) { return c.API.PutItem(ctx, in, optFns...) })
}

func (c conflictRetry) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return retryConflicts(ctx, func() (*dynamodb.UpdateItemOutput, error) { return c.API.UpdateItem(ctx, in, optFns...) })
}

func (c conflictRetry) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return retryConflicts(ctx, func() (*dynamodb.DeleteItemOutput, error) { return c.API.DeleteItem(ctx, in, optFns...) })
}
