package idempotent_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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

// A guard is built once, with the settings every call through it shares; a
// mistake in them is reported by Err, and every call fails with it.
func ExampleNew() {
	store := idempotent.NewMemoryStore() // dynamostore.New(...) in Lambda
	guard := idempotent.New(store,
		idempotent.WithName("payments"),
		idempotent.WithTTL(24*time.Hour),
		idempotent.WithLocalCache(1000), // built here, shared by every call through guard
	)
	fmt.Println(guard.Err())

	bad := idempotent.New(store, idempotent.WithTTL(time.Millisecond))
	_, err := idempotent.Do(context.Background(), bad, "charge", "o-1", func(context.Context) (int, error) { return 1, nil })
	fmt.Println(err)
	// Output:
	// <nil>
	// idempotent: invalid option WithTTL: TTL 1ms is under one second
}

func ExampleWrap() {
	store := idempotent.NewMemoryStore() // dynamostore.New(...) in Lambda
	charges := 0
	handle := func(ctx context.Context, p payment) (charge, error) {
		charges++
		return charge{Charge: "ch_" + p.ID, Amount: p.Amount}, nil
	}
	// In main: lambda.Start(idempotent.Wrap(idempotent.New(store), handle, ...)).
	guard := idempotent.New(store, idempotent.WithName("payments"))
	h := idempotent.Wrap(guard, handle,
		idempotent.WithKeyPath("id"),
		idempotent.WithPayloadPath("amount"))

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
		// The record id names this run; derive downstream keys (the
		// payment provider's idempotency key) from it.
		key, _ := idempotent.RecordIDFromContext(ctx)
		charges++
		return fmt.Sprintf("charged (%d chars of key)", len(key)), nil
	}
	send := func(context.Context) (string, error) { emails++; return "receipt sent", nil }
	guard := idempotent.New(store, idempotent.WithName("checkout")) // once, outside the handler
	for range 2 {
		// One key, two steps: each step keeps its own record.
		paid, err := idempotent.Do(context.Background(), guard, "charge", "order-42", charge)
		fmt.Println(paid, err)
		sent, err := idempotent.Do(context.Background(), guard, "send-receipt", "order-42", send)
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

// A key path written for Powertools works verbatim, and a multi-select over
// fields the document does not have is no key (an empty string), not the key
// [null,null].
func ExampleCompileKeyPath() {
	p, err := idempotent.CompileKeyPath("powertools_json(body).[user, orderId]")
	if err != nil {
		panic(err)
	}
	for _, event := range []string{
		`{"body": "{\"orderId\": \"o-1\", \"user\": \"u-7\", \"amount\": 5}"}`,
		`{"body": "{\"amount\": 5}"}`,
	} {
		key, err := p.Key([]byte(event))
		fmt.Printf("%q %v\n", key, err)
	}
	_, err = idempotent.CompileKeyPath("powertools_jsn(body).user")
	fmt.Println(err)
	// Output:
	// "[\"u-7\",\"o-1\"]" <nil>
	// "" <nil>
	// idempotent: invalid option CompileKeyPath: JMESPath "powertools_jsn(body).user": unknown function powertools_jsn()
}

// WithJMESPathFunction adds a function to key and payload paths.
func ExampleWithJMESPathFunction() {
	tenant := func(args []any) (any, error) {
		s, ok := args[0].(string)
		if !ok {
			return nil, errors.New("tenant() takes a string")
		}
		t, _, _ := strings.Cut(s, "/")
		return strings.ToLower(t), nil
	}
	p, err := idempotent.CompileKeyPath("[tenant(path), orderId]", idempotent.WithJMESPathFunction("tenant", tenant))
	if err != nil {
		panic(err)
	}
	key, err := p.Key([]byte(`{"path": "ACME/orders", "orderId": "o-1"}`))
	fmt.Println(key, err)
	// Output: ["acme","o-1"] <nil>
}
