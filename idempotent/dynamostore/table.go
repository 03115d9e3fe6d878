package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// TableAPI is the part of the DynamoDB client CreateTable calls.
// *dynamodb.Client satisfies it.
type TableAPI interface {
	CreateTable(ctx context.Context, params *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, params *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, params *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, params *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

var _ TableAPI = (*dynamodb.Client)(nil)

// tableWaitMax bounds the wait for a table to become ACTIVE when ctx has no
// deadline.
const tableWaitMax = 5 * time.Minute

// CreateTable creates table for a Store configured with the same optFns: an
// on-demand table whose key schema matches Options (a string partition key,
// plus a string sort key with CompositeKey). It waits until the table is
// ACTIVE and then enables TTL on the expiration attribute.
//
// A table that already exists is fine (CreateTable then only waits and
// enables TTL). A server without the TTL API, such as a local test server, is
// fine too: CreateTable logs a notice and returns nil, and expired records
// stay until overwritten (the store judges expiry itself). Any other failure
// is returned. Attribute names that New rejects are rejected here too, with
// the same *idempotent.ConfigError, before any call.
func CreateTable(ctx context.Context, client TableAPI, table string, optFns ...func(*Options)) error {
	o := resolveOptions(optFns)
	if err := o.validate(); err != nil {
		return err
	}
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
	}
	if o.CompositeKey {
		in.AttributeDefinitions = []types.AttributeDefinition{
			{AttributeName: aws.String(o.PartitionKeyAttr), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(o.SortKeyAttr), AttributeType: types.ScalarAttributeTypeS},
		}
		in.KeySchema = []types.KeySchemaElement{
			{AttributeName: aws.String(o.PartitionKeyAttr), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(o.SortKeyAttr), KeyType: types.KeyTypeRange},
		}
	} else {
		in.AttributeDefinitions = []types.AttributeDefinition{
			{AttributeName: aws.String(o.KeyAttr), AttributeType: types.ScalarAttributeTypeS},
		}
		in.KeySchema = []types.KeySchemaElement{
			{AttributeName: aws.String(o.KeyAttr), KeyType: types.KeyTypeHash},
		}
	}
	if _, err := client.CreateTable(ctx, in); err != nil {
		var inUse *types.ResourceInUseException
		if !errors.As(err, &inUse) {
			return fmt.Errorf("dynamostore: create table %s: %w", table, err)
		}
	}

	wait := tableWaitMax
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(wo *dynamodb.TableExistsWaiterOptions) {
		wo.MinDelay = 50 * time.Millisecond
		wo.MaxDelay = 5 * time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, wait); err != nil {
		return fmt.Errorf("dynamostore: wait for table %s: %w", table, err)
	}

	// Real DynamoDB refuses to enable TTL twice, so look first.
	desc, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	switch {
	case err == nil:
		if d := desc.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == o.ExpirationAttr &&
			(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
			return nil
		}
	case unknownOperation(err):
		// Try the update anyway; it tells.
	default:
		return fmt.Errorf("dynamostore: describe TTL of %s: %w", table, err)
	}

	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(o.ExpirationAttr),
			Enabled:       aws.Bool(true),
		},
	})
	if unknownOperation(err) {
		o.logger().InfoContext(ctx, "dynamostore: server has no TTL API; expired records stay until overwritten",
			slog.String("table", table))
		return nil
	}
	if err != nil {
		return fmt.Errorf("dynamostore: enable TTL on %s.%s: %w", table, o.ExpirationAttr, err)
	}
	return nil
}

// unknownOperation reports whether err says the server lacks the operation.
func unknownOperation(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "UnknownOperationException"
}
