package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/sqsbatch"
)

// batchSize is the SQS batch of the batch-redelivery scenario: ten records,
// all completed before, delivered again (ApproximateReceiveCount 2). Its
// rows count per batch: calls_per_op is requests per batch.
const batchSize = 10

// flagScen selects the scenarios of a run (batch-redelivery alone, say).
var flagScen = flag.String("scenarios", "new,replay,batch-redelivery", "scenarios, in order")

// batcher is a side that runs the batch-redelivery scenario.
type batcher interface{ batches() bool }

// One idemlambda row: the look-up is the same (readfirst), and the encrypted
// side's rows are new and replay.
func (o *ours) batches() bool { return !o.readFirst && o.encrypted == nil }

func (f *floor) batches() bool { return true }

// powertools-ts runs the batch through @aws-lambda-powertools/batch
// (driver.mjs); its Redis side has no batch row, as ours has none.
func (p *powertools) batches() bool { return p.impl == "powertools-ts" }

// sqsEvent is the batch of keys, delivered for the receive-th time.
func sqsEvent(keys []string, receive int) events.SQSEvent {
	var ev events.SQSEvent
	for _, k := range keys {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: k, Body: `{"id":"` + k + `"}`, EventSource: "aws:sqs",
			EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:bench",
			Attributes:     map[string]string{"ApproximateReceiveCount": fmt.Sprint(receive)},
		})
	}
	return ev
}

func (o *ours) batchHandler(s spec) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	store := dynamostore.New(o.client, o.table)
	g := idempotent.New(store, append(o.opts(), idempotent.WithLogger(quietLogger()))...)
	return sqsbatch.Wrap(g, func(context.Context, events.SQSMessage) error { return nil })
}

func runBatch(ctx context.Context, h func(context.Context, events.SQSEvent) (events.SQSEventResponse, error), ev events.SQSEvent) error {
	resp, err := h(ctx, ev)
	if err == nil && len(resp.BatchItemFailures) > 0 {
		err = fmt.Errorf("%d records failed", len(resp.BatchItemFailures))
	}
	return err
}

func (o *ours) seedBatch(ctx context.Context, s spec) error {
	return runBatch(ctx, o.batchHandler(s), sqsEvent(s.keys, 1))
}

func (o *ours) runBatch(ctx context.Context, s spec) (outcome, error) {
	h, ev := o.batchHandler(s), sqsEvent(s.keys, 2)
	return loop(ctx, s, func(ctx context.Context, _ string) error { return runBatch(ctx, h, ev) }), nil
}

// The floor of a redelivered batch: one BatchGetItem of its records, each
// completed, with its data.
func (f *floor) batchGet(ctx context.Context, keys []string) error {
	var ks []map[string]types.AttributeValue
	for _, k := range keys {
		ks = append(ks, map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "floor#" + k}})
	}
	out, err := f.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{f.table: {Keys: ks}}})
	if err != nil {
		return err
	}
	if n := len(out.Responses[f.table]); n != len(keys) {
		return fmt.Errorf("batch look-up found %d of %d records", n, len(keys))
	}
	for _, item := range out.Responses[f.table] {
		if _, ok := item["data"].(*types.AttributeValueMemberB); !ok {
			return errors.New("replayed record has no data")
		}
	}
	return nil
}

// Prices per million request units (on-demand, us-east-1): the issue's
// figures.
const (
	dollarsPerMillionWRU = 0.625
	dollarsPerMillionRRU = 0.125
)

// price is what a million operations of row r cost in request units.
func price(r Row) float64 {
	return r.WriteUnitsPerOp*dollarsPerMillionWRU + r.ReadUnitsPerOp*dollarsPerMillionRRU
}
