package sqsbatch_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/sqsbatch"
)

// A Kinesis stream keeps order per shard: after the first failure, later
// records are reported failed without running, and Lambda resumes from the
// lowest failed sequence number. Records that completed before are not run
// again when the batch comes back.
func ExampleWrapKinesis() {
	var ran []string
	healthy := false
	apply := func(ctx context.Context, r events.KinesisEventRecord) error {
		ran = append(ran, string(r.Kinesis.Data))
		if string(r.Kinesis.Data) == "debit" && !healthy {
			return errors.New("ledger unavailable")
		}
		return nil
	}
	h := sqsbatch.WrapKinesis(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithName("ledger"),
		idempotent.WithLogger(slog.New(slog.DiscardHandler))), apply)
	record := func(id, seq, data string) events.KinesisEventRecord {
		r := events.KinesisEventRecord{EventID: id}
		r.Kinesis.SequenceNumber, r.Kinesis.Data = seq, []byte(data)
		return r
	}
	batch := events.KinesisEvent{Records: []events.KinesisEventRecord{
		record("shard-0:1", "1", "credit"),
		record("shard-0:2", "2", "debit"),
		record("shard-0:3", "3", "close"),
	}}

	first, _ := h(context.Background(), batch)
	fmt.Println(first.BatchItemFailures, ran)
	healthy, ran = true, nil
	again, _ := h(context.Background(), batch) // the batch again, from the start
	fmt.Println(again.BatchItemFailures, ran)
	// Output:
	// [{2} {3}] [credit debit]
	// [] [debit close]
}
