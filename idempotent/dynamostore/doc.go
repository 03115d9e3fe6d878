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
// Results of any size (up to Lambda's 6 MB and beyond): results of at least
// Options.CompressThreshold bytes (512) are stored zstd-compressed when that
// makes them smaller, tagged by the data_format attribute (records without it
// hold plain bytes, as every record written before compression existed).
// Stored data larger than one item (384 KiB of data, leaving headroom below
// DynamoDB's 400 KB) is split into chunk items, written with PutItem in
// parallel before Complete's UpdateItem flips the record to COMPLETED; the
// record then references them by count, version (the owner token of the run
// that wrote them, part of each chunk's key) and SHA-256 digest in its
// data_chunks attribute. A replay reads them back with one consistent GetItem
// each, in parallel. Chunks carry the record's expiration, so TTL removes
// them too, and chunks of an earlier life of the key or of a stale run are
// never referenced. A missing or altered chunk, or data that does not
// decompress, is reported as idempotent.ErrCorruptRecord.
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
//
// § references in this package's comments are to the contract,
// docs/contract.md in the repository.
package dynamostore
