package sqsbatch_test

import (
	"context"
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
