package sqsbatch

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
)

// WrapKinesis is Wrap for Kinesis data streams: it runs fn at most once per
// record key (the record's eventID by default, or WithBodyKey on the
// record's data) and reports failures by sequence number in
// BatchItemFailures. A stream is ordered per shard and Lambda resumes from
// the lowest failed sequence number, so records run in batch order and,
// after the first failure, every later record is reported failed without
// running. WithConcurrency does not apply; WithAttributeKey and
// WithDeduplicationKey are rejected.
func WrapKinesis(g *idempotent.Guard, fn func(context.Context, events.KinesisEventRecord) error, opts ...Option) func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
	p := newProcessor(g, fn, "kinesis", []keyKind{keyDefault, keyBody}, opts)
	return func(ctx context.Context, event events.KinesisEvent) (events.KinesisEventResponse, error) {
		if p.err != nil {
			return events.KinesisEventResponse{}, p.err
		}
		items := make([]item[events.KinesisEventRecord], len(event.Records))
		for i := range event.Records {
			r := &event.Records[i]
			it := &items[i]
			it.rec, it.id, it.ordered = *r, r.Kinesis.SequenceNumber, true
			switch {
			case p.c.key == keyBody:
				it.key, it.keyErr = p.c.bodyKey(it.id, r.Kinesis.Data)
			case r.EventID == "":
				it.keyErr = noKey(it.id, "empty eventID")
			default:
				it.key = prefixKinesisID + r.EventID
			}
		}
		return events.KinesisEventResponse{BatchItemFailures: failures(p.run(ctx, items), items, func(id string) events.KinesisBatchItemFailure {
			return events.KinesisBatchItemFailure{ItemIdentifier: id}
		})}, nil
	}
}

// WrapDynamoDB is Wrap for DynamoDB Streams: it runs fn at most once per
// record (keyed by its eventID) and reports failures by sequence number in
// BatchItemFailures. Like Kinesis, records run in batch order and, after the
// first failure, every later record is reported failed without running.
// Only the default key applies; WithConcurrency does not.
func WrapDynamoDB(g *idempotent.Guard, fn func(context.Context, events.DynamoDBEventRecord) error, opts ...Option) func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	p := newProcessor(g, fn, "dynamodb", []keyKind{keyDefault}, opts)
	return func(ctx context.Context, event events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		if p.err != nil {
			return events.DynamoDBEventResponse{}, p.err
		}
		items := make([]item[events.DynamoDBEventRecord], len(event.Records))
		for i := range event.Records {
			r := &event.Records[i]
			it := &items[i]
			it.rec, it.id, it.ordered = *r, r.Change.SequenceNumber, true
			if r.EventID == "" {
				it.keyErr = noKey(it.id, "empty eventID")
			} else {
				it.key = prefixDynamoDBID + r.EventID
			}
		}
		return events.DynamoDBEventResponse{BatchItemFailures: failures(p.run(ctx, items), items, func(id string) events.DynamoDBBatchItemFailure {
			return events.DynamoDBBatchItemFailure{ItemIdentifier: id}
		})}, nil
	}
}
