package dynamostore_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
)

// countingAPI counts every call; it must see none from a misconfigured Store.
type countingAPI struct {
	dynamostore.API
	dynamostore.TableAPI
	calls atomic.Int64
}

func (c *countingAPI) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.calls.Add(1)
	return &dynamodb.PutItemOutput{}, nil
}

func (c *countingAPI) CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	c.calls.Add(1)
	return &dynamodb.CreateTableOutput{}, nil
}

// TestNewRejectsClashingNames: attribute names that would corrupt records
// are caught when the Store is built: Err reports a *idempotent.ConfigError,
// every call fails with it before reaching DynamoDB, a guarded handler never
// runs, and CreateTable refuses the same options.
func TestNewRejectsClashingNames(t *testing.T) {
	tests := []struct {
		name string
		opt  func(*dynamostore.Options)
		want string // in the message
	}{
		{"partition key is the sort key", func(o *dynamostore.Options) { o.CompositeKey, o.SortKeyAttr = true, "pk" }, `PartitionKeyAttr and SortKeyAttr are both "pk"`},
		{"record attribute is the key", func(o *dynamostore.Options) { o.StatusAttr = "id" }, `KeyAttr and StatusAttr are both "id"`},
		{"two record attributes", func(o *dynamostore.Options) { o.OwnerAttr = "data" }, `OwnerAttr and DataAttr are both "data"`},
		{"record attribute is the sort key", func(o *dynamostore.Options) { o.CompositeKey, o.DataAttr = true, "sk" }, `SortKeyAttr and DataAttr are both "sk"`},
		{"empty name", func(o *dynamostore.Options) { o.LeaseAttr = "" }, `LeaseAttr is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &countingAPI{}
			store := dynamostore.New(api, "idempotency", tt.opt)
			err := store.Err()
			if ce, ok := errors.AsType[*idempotent.ConfigError](err); !ok || !strings.Contains(ce.Error(), tt.want) {
				t.Fatalf("Err() = %v, want a *idempotent.ConfigError saying %s", err, tt.want)
			}
			if _, _, err := store.Acquire(t.Context(), idempotent.Record{ID: "fn#k", Owner: "o"}, time.Now()); !errors.Is(err, store.Err()) {
				t.Fatalf("Acquire = %v, want the configuration error", err)
			}
			ran := false
			_, err = idempotent.Do(t.Context(), idempotent.New(store), "step", "k", func(context.Context) (int, error) { ran = true; return 1, nil })
			if _, ok := errors.AsType[*idempotent.ConfigError](err); !ok || ran {
				t.Fatalf("Do = %v (ran %v), want a *idempotent.ConfigError without running", err, ran)
			}
			if err := dynamostore.CreateTable(t.Context(), api, "idempotency", tt.opt); !errors.As(err, new(*idempotent.ConfigError)) {
				t.Fatalf("CreateTable = %v, want a *idempotent.ConfigError", err)
			}
			if n := api.calls.Load(); n != 0 {
				t.Fatalf("%d calls reached DynamoDB", n)
			}
		})
	}
	t.Run("defaults and distinct custom names are fine", func(t *testing.T) {
		for _, opt := range []func(*dynamostore.Options){nil, dynamostore.WithCompositeKey(""), customNames} {
			if err := dynamostore.New(&countingAPI{}, "t", opt).Err(); err != nil {
				t.Fatalf("Err() = %v", err)
			}
		}
	})
	t.Run("nil client, empty table", func(t *testing.T) {
		if _, ok := errors.AsType[*idempotent.ConfigError](dynamostore.New(nil, "").Err()); !ok {
			t.Fatal("New(nil, \"\") is usable")
		}
	})
}
