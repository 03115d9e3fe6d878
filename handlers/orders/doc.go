// Command orders is the SQS consumer of the example stack: it records each
// order from the orders queue once in the orders table, however often SQS or
// the producer delivers it.
//
// Every record is guarded by sqsbatch.Wrap with the body key orderId, so a
// redelivered batch re-runs only the records that failed, and two messages
// the producer sent for one order collapse into one run. The write itself is
// a conditional PutItem (attribute_not_exists(id)), so even a run repeated
// after a crash records the order once. A record whose body is not a valid
// order fails alone and goes back to the queue (and, after maxReceiveCount,
// to the dead-letter queue).
//
// Environment:
//
//	ORDERS_TABLE       the orders table (PutItem only)
//	IDEMPOTENCY_TABLE  the idempotency table (idempotent/dynamostore)
//	REDIS_URL          optional: keep the idempotency records in Redis/Valkey
//	                   (idempotent/redisstore) instead of IDEMPOTENCY_TABLE
//	IDEMPOTENCY_TTL    seconds a completed record is kept (optional; default 1 h)
//	LOG_LEVEL          DEBUG, INFO (default), WARN or ERROR; logs are slog JSON
//
// It builds to bootstrap for the provided.al2023 runtime.
package main
