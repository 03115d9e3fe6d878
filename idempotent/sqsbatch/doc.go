// Package sqsbatch makes SQS batch handlers idempotent per record, with
// partial batch responses: only the records that failed are redelivered, and
// a redelivered record that completed before is acknowledged without running
// again.
//
// Wrap turns a per-message function into a handler for lambda.Start. Every
// record is guarded by idempotent.Do with a key of its own — the message id
// by default, a JMESPath expression into the JSON body (WithBodyKey) so that
// producer-side duplicates collapse, a message attribute (WithAttributeKey),
// or the FIFO deduplication id (WithDeduplicationKey) — and so follows the
// core's contract: for one key within the TTL, fn runs to completion at most
// once; a failed run releases the key; a crashed run holds it until its lease
// (the invocation's deadline) ends; a store failure never lets fn run
// unguarded.
//
// Per record:
//
//   - fn returns nil: the record completes and is acknowledged;
//   - completed before: acknowledged without running;
//   - fn returns an error or panics, the key is held by a running invocation,
//     the store fails, or the key cannot be read from the record (a body
//     that is not JSON, or where the body key yields nothing — null, "", an
//     empty list or object, or a multi-select whose fields are all missing):
//     its itemIdentifier goes into BatchItemFailures;
//   - FIFO queues: after a failure, later records of the same message group
//     are reported failed without running;
//   - not started before the deadline margin: reported failed.
//
// WrapKinesis and WrapDynamoDB apply the same engine to Kinesis and DynamoDB
// Streams, which are ordered per shard: after the first failure every later
// record is reported failed.
//
// Example:
//
//	store := dynamostore.New(dynamodb.NewFromConfig(cfg), os.Getenv("IDEMPOTENCY_TABLE"))
//	guard := idempotent.New(store, idempotent.WithTTL(24*time.Hour))
//	lambda.Start(sqsbatch.Wrap(guard, recordOrder, sqsbatch.WithBodyKey("orderId")))
//
// The event source mapping must report batch item failures
// (FunctionResponseTypes: [ReportBatchItemFailures]); see the README's SQS section.
package sqsbatch
