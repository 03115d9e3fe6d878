// Package dynamostore is the Amazon DynamoDB implementation of
// idempotent.Store.
//
// Each idempotency key is one item. Every write is a single conditional
// request, so the store holds the contract's guarantees under any number of
// concurrent invocations:
//
//   - Acquire is one PutItem that succeeds only if there is no item, the item
//     is expired (expiration <= now, epoch seconds), or it is in progress and
//     its lease has ended (in_progress_expiration <= now, epoch
//     milliseconds). On a conflict it asks DynamoDB for the existing item
//     (ReturnValuesOnConditionCheckFailure = ALL_OLD), so a replay costs one
//     round trip; on servers that do not return it, one consistent GetItem
//     follows.
//   - Complete is one UpdateItem fenced by status = INPROGRESS AND owner = me.
//   - Release is one DeleteItem fenced the same way.
//   - Get is one strongly consistent GetItem.
//
// A fencing failure is reported as idempotent.ErrLeaseLost, every failure of
// the SDK as an *idempotent.StoreError, and an item the store cannot decode (a
// missing or ill-typed attribute, an unknown status) as an error wrapping
// idempotent.ErrCorruptRecord. The store never reads a clock: the core passes
// now.
//
// The table needs a string partition key (default "id"), or with
// Options.CompositeKey a string partition key "pk" holding a static value and a
// string sort key "sk" holding the record id. Its TTL attribute should be
// "expiration"; CreateTable sets all of that up.
//
// Example:
//
//	cfg, err := config.LoadDefaultConfig(ctx)
//	if err != nil { ... }
//	store := dynamostore.New(dynamodb.NewFromConfig(cfg), "idempotency")
package dynamostore
