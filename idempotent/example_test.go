package idempotent_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/idemlambda/idemlambda/idempotent"
)

type payment struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

type charge struct {
	Charge string `json:"charge"`
	Amount int    `json:"amount"`
}

func ExampleWrap() {
	store := idempotent.NewMemoryStore() // dynamostore.New(...) in Lambda
	charges := 0
	handle := func(ctx context.Context, p payment) (charge, error) {
		charges++
		return charge{Charge: "ch_" + p.ID, Amount: p.Amount}, nil
	}
	// In main: lambda.Start(idempotent.Wrap(store, handle, ...)).
	h := idempotent.Wrap(store, handle,
		idempotent.WithName("payments"),
		idempotent.WithKeyPath("id"),
		idempotent.WithPayloadPath("amount"),
	)

	first, _ := h(context.Background(), payment{ID: "p-1", Amount: 1250})
	retry, _ := h(context.Background(), payment{ID: "p-1", Amount: 1250})
	_, err := h(context.Background(), payment{ID: "p-1", Amount: 9999})

	fmt.Println(first, retry, charges)
	fmt.Println(errors.Is(err, idempotent.ErrPayloadMismatch))
	// Output:
	// {ch_p-1 1250} {ch_p-1 1250} 1
	// true
}

func ExampleDo() {
	store := idempotent.NewMemoryStore()
	emails := 0
	send := func(ctx context.Context) (string, error) {
		// The record key names this run; derive downstream keys from it.
		key, _ := idempotent.KeyFromContext(ctx)
		emails++
		return fmt.Sprintf("sent (%d chars of key)", len(key)), nil
	}
	for range 3 {
		out, err := idempotent.Do(context.Background(), store, "welcome-email:user-42", send, idempotent.WithName("signup"))
		fmt.Println(out, err)
	}
	fmt.Println("emails sent:", emails)
	// Output:
	// sent (71 chars of key) <nil>
	// sent (71 chars of key) <nil>
	// sent (71 chars of key) <nil>
	// emails sent: 1
}
