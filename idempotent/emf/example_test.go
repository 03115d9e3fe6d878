package emf_test

import (
	"context"
	"fmt"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/emf"
)

func ExampleWrap() {
	m, err := emf.New(func(o *emf.Options) {
		o.Namespace = "payments"
		o.Dimensions = map[string]string{"FunctionName": "payments"}
		o.Clock = func() time.Time { return time.UnixMilli(1764700000000) } // fixed for the example
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	store := idempotent.NewMemoryStore()
	charge := func(_ context.Context, orderID string) (string, error) { return "ch_" + orderID, nil }
	fixed := func() time.Time { return time.UnixMilli(1764700000000) } // store and handler times are 0 on it
	h := emf.Wrap(m, idempotent.Wrap(idempotent.New(store, idempotent.WithClock(fixed), m.Option()), charge))

	_, _ = h(context.Background(), "o-1") // a new run
	_, _ = h(context.Background(), "o-1") // a duplicate: replayed
	// Output:
	// {"level":"FATAL","timestamp":"2025-12-02T18:26:40.000Z","_aws":{"Timestamp":1764700000000,"CloudWatchMetrics":[{"Namespace":"payments","Dimensions":[["FunctionName"]],"Metrics":[{"Name":"Calls","Unit":"Count"},{"Name":"Completed","Unit":"Count"}]}]},"FunctionName":"payments","Calls":1,"Completed":1}
	// {"level":"FATAL","timestamp":"2025-12-02T18:26:40.000Z","_aws":{"Timestamp":1764700000000,"CloudWatchMetrics":[{"Namespace":"payments","Dimensions":[["FunctionName"]],"Metrics":[{"Name":"Calls","Unit":"Count"},{"Name":"Replayed","Unit":"Count"}]}]},"FunctionName":"payments","Calls":1,"Replayed":1}
}
