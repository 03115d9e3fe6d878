package testdynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
)

// NewTable creates a table with a unique name through client, laid out for a
// dynamostore.Store configured with the same optFns, and returns its name.
// The table is deleted when the test ends. It fails tb on error.
func NewTable(tb testing.TB, client *dynamodb.Client, optFns ...func(*dynamostore.Options)) string {
	tb.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	table := "idem-test-" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	quiet := func(o *dynamostore.Options) { o.Logger = discardLogger }
	if err := dynamostore.CreateTable(ctx, client, table, append([]func(*dynamostore.Options){quiet}, optFns...)...); err != nil {
		tb.Fatalf("testdynamo: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			tb.Logf("testdynamo: delete table %s: %v", table, err)
		}
	})
	return table
}

var discardLogger = slog.New(slog.DiscardHandler)
