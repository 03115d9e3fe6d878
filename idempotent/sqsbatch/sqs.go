package sqsbatch

import (
	"context"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
)

// Wrap returns an SQS handler with partial batch responses that runs fn at
// most once per record key within the TTL. It goes straight into
// lambda.Start, for an event source mapping with FunctionResponseTypes
// ReportBatchItemFailures:
//
//	lambda.Start(sqsbatch.Wrap(idempotent.New(store), handle, sqsbatch.WithBodyKey("orderId")))
//
// Each record is guarded by idempotent.Do with its own key: the message id
// by default, or what WithBodyKey, WithAttributeKey or WithDeduplicationKey
// select. A record whose fn returns nil completes; one completed before is
// acknowledged without running. A record whose key cannot be read, whose fn
// returns an error or panics, whose key is held by a running invocation
// (idempotent.ErrInProgress), or whose store call fails is reported in
// BatchItemFailures, and SQS redelivers it alone. A panic is recovered, logged
// with its stack and the message id, and stays with its record.
//
// On a FIFO queue (an eventSourceARN ending in ".fifo") records run in batch
// order, and after the first failure in a message group every later record
// of that group is reported failed without running, so the group's order is
// kept; other groups go on. On a standard queue WithConcurrency runs records
// in parallel with the response sequential processing gives.
//
// Each record's lease ends at the invocation's deadline; records not yet
// started when less than the deadline margin (WithDeadlineMargin) is left
// are reported failed rather than started.
//
// A batch in which SQS says some record was delivered before
// (ApproximateReceiveCount > 1) is read ahead in one request when the store
// is an idempotent.BatchReader (dynamostore: one BatchGetItem): records
// completed before are then acknowledged without a write, in their turn, so
// a redelivered batch of completed records costs one request. Fresh batches
// skip the look-up.
//
// The returned handler is safe for concurrent use. It returns an error only
// for an invalid configuration (a *idempotent.ConfigError), never for a
// record: Lambda then retries the whole batch.
func Wrap(g *idempotent.Guard, fn func(context.Context, events.SQSMessage) error, opts ...Option) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	p := newProcessor(g, fn, "sqs", []keyKind{keyDefault, keyBody, keyAttribute, keyDedup}, opts)
	return func(ctx context.Context, event events.SQSEvent) (events.SQSEventResponse, error) {
		if p.err != nil {
			return events.SQSEventResponse{}, p.err
		}
		items := make([]item[events.SQSMessage], len(event.Records))
		for i := range event.Records {
			m := &event.Records[i]
			it := &items[i]
			it.rec, it.id, it.redelivered = *m, m.MessageId, redelivered(m)
			fifo := strings.HasSuffix(m.EventSourceARN, ".fifo")
			if fifo {
				it.ordered = true
				it.group = m.EventSourceARN + "\x00" + m.Attributes[attrMessageGroupID]
			}
			it.key, it.keyErr = p.c.sqsKey(m, fifo)
		}
		return events.SQSEventResponse{BatchItemFailures: failures(p.run(ctx, items), items, func(id string) events.SQSBatchItemFailure {
			return events.SQSBatchItemFailure{ItemIdentifier: id}
		})}, nil
	}
}
