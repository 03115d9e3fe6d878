package dynamostore_test

import (
	"context"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
)

// cfg stands for the configuration a function loads once at start-up with
// config.LoadDefaultConfig (module github.com/aws/aws-sdk-go-v2/config, which
// this library does not depend on).
var cfg aws.Config

// A Store for the table "idempotency" with the default attribute names, as a
// Lambda function builds it once at start-up. (No output: it needs AWS.)
func ExampleNew() {
	store := dynamostore.New(dynamodb.NewFromConfig(cfg), "idempotency")
	_ = store // pass it to idempotent.Wrap or idempotent.Do
}

// A Store sharing a single-table design: partition key "PK" holding
// "IDEMPOTENCY", sort key "SK" holding the record id, and a TTL attribute
// named "ttl".
func ExampleNew_compositeKey() {
	store := dynamostore.New(dynamodb.NewFromConfig(cfg), "app", func(o *dynamostore.Options) {
		o.CompositeKey = true
		o.PartitionKeyAttr, o.SortKeyAttr = "PK", "SK"
		o.PartitionKeyValue = "IDEMPOTENCY"
		o.ExpirationAttr = "ttl"
	})
	_ = store
}

// CreateTable sets up a table for a Store with the same options: on-demand,
// the key schema, TTL on the expiration attribute.
func ExampleCreateTable() {
	ctx := context.Background()
	client := dynamodb.NewFromConfig(cfg)
	if err := dynamostore.CreateTable(ctx, client, "idempotency"); err != nil {
		log.Fatal(err)
	}
}
