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
	charges, emails := 0, 0
	charge := func(ctx context.Context) (string, error) {
		// The record key names this run; derive downstream keys (the
		// payment provider's idempotency key) from it.
		key, _ := idempotent.KeyFromContext(ctx)
		charges++
		return fmt.Sprintf("charged (%d chars of key)", len(key)), nil
	}
	send := func(context.Context) (string, error) { emails++; return "receipt sent", nil }
	for range 2 {
		// One key, two steps: each step keeps its own record.
		paid, err := idempotent.Do(context.Background(), store, "charge", "order-42", charge, idempotent.WithName("checkout"))
		fmt.Println(paid, err)
		sent, err := idempotent.Do(context.Background(), store, "send-receipt", "order-42", send, idempotent.WithName("checkout"))
		fmt.Println(sent, err)
	}
	fmt.Println("charges:", charges, "emails:", emails)
	// Output:
	// charged (73 chars of key) <nil>
	// receipt sent <nil>
	// charged (73 chars of key) <nil>
	// receipt sent <nil>
	// charges: 1 emails: 1
}
