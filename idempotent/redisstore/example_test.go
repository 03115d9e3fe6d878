package redisstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
)

// A Store on the Redis (or Valkey) server at addr, built once at start-up;
// the first call runs the charge, the retry replays its result. (In Lambda:
// redis.ParseURL(os.Getenv("REDIS_URL")), and TLS for ElastiCache.)
func ExampleNew() {
	client := redis.NewClient(&redis.Options{Addr: addr}) // e.g. "127.0.0.1:6379"
	defer client.Close()
	store := redisstore.New(client, redisstore.WithKeyPrefix(examplePrefix))

	charges := 0
	charge := func(ctx context.Context) (string, error) {
		charges++
		return "ch_1250", nil
	}
	for range 2 {
		out, err := idempotent.Do(context.Background(), idempotent.New(store, idempotent.WithName("payments")), "charge", "order-42", charge)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(out)
	}
	fmt.Println("charges:", charges)
	// Output:
	// ch_1250
	// ch_1250
	// charges: 1
}
