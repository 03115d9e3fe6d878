package sqsbatch_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/sqsbatch"
)

func ExampleWrap() {
	store := idempotent.NewMemoryStore() // dynamostore.New(...) in Lambda
	recorded := map[string]int{}
	record := func(ctx context.Context, m events.SQSMessage) error {
		var o struct {
			OrderID string `json:"orderId"`
			Amount  int    `json:"amount"`
		}
		if err := json.Unmarshal([]byte(m.Body), &o); err != nil {
			return err
		}
		if o.Amount <= 0 {
			return errors.New("amount must be positive")
		}
		recorded[o.OrderID]++
		return nil
	}
	// In main: lambda.Start(sqsbatch.Wrap(idempotent.New(store), record, ...)).
	h := sqsbatch.Wrap(idempotent.New(store, idempotent.WithName("orders"),
		idempotent.WithLogger(slog.New(slog.DiscardHandler))), record,
		sqsbatch.WithBodyKey("orderId"))
	event := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m-1", Body: `{"orderId":"o-1","amount":1250}`},
		{MessageId: "m-2", Body: `{"orderId":"o-2","amount":0}`},
		{MessageId: "m-3", Body: `{"orderId":"o-1","amount":1250}`}, // sent twice by the producer
	}}
	first, _ := h(context.Background(), event)
	again, _ := h(context.Background(), event) // redelivered
	fmt.Println(first.BatchItemFailures, again.BatchItemFailures, recorded)
	// Output:
	// [{m-2}] [{m-2}] map[o-1:1]
}

func ExampleWrapKafka() {
	store := idempotent.NewMemoryStore() // dynamostore.New(...) in Lambda
	charged := map[string]int{}
	charge := func(ctx context.Context, r events.KafkaRecord) error {
		v, _ := base64.StdEncoding.DecodeString(r.Value)
		var p struct {
			PaymentID string `json:"paymentId"`
			Amount    int    `json:"amount"`
		}
		if err := json.Unmarshal(v, &p); err != nil {
			return err
		}
		if p.Amount <= 0 {
			return errors.New("amount must be positive")
		}
		charged[p.PaymentID]++
		return nil
	}
	// In main: lambda.Start(sqsbatch.WrapKafka(guard, charge, ...)), for an
	// event source mapping with FunctionResponseTypes ReportBatchItemFailures.
	guard := idempotent.New(store, idempotent.WithLogger(slog.New(slog.DiscardHandler)))
	h := sqsbatch.WrapKafka(guard, charge, sqsbatch.WithBodyKey("paymentId"))
	value := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	event := events.KafkaEvent{EventSource: "aws:kafka", Records: map[string][]events.KafkaRecord{
		"payments-0": {
			{Topic: "payments", Partition: 0, Offset: 7, Value: value(`{"paymentId":"p-1","amount":1250}`)},
			{Topic: "payments", Partition: 0, Offset: 8, Value: value(`{"paymentId":"p-2","amount":0}`)},
			{Topic: "payments", Partition: 0, Offset: 9, Value: value(`{"paymentId":"p-3","amount":300}`)},
		},
		"payments-1": {
			{Topic: "payments", Partition: 1, Offset: 4, Value: value(`{"paymentId":"p-1","amount":1250}`)}, // sent twice
		},
	}}
	resp, _ := h(context.Background(), event)
	out, _ := json.Marshal(resp)
	fmt.Println(string(out))
	fmt.Println(charged)
	// Output:
	// {"batchItemFailures":[{"itemIdentifier":{"partition":"payments-0","offset":8}},{"itemIdentifier":{"partition":"payments-0","offset":9}}]}
	// map[p-1:1]
}
