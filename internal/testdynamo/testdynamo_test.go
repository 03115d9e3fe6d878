package testdynamo_test

import (
	"errors"
	"maps"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

func TestMain(m *testing.M) { testdynamo.Main(m) }

func TestEndpointFromEnv(t *testing.T) {
	t.Setenv(testdynamo.EnvEndpoint, "http://127.0.0.1:1")
	if got := testdynamo.Endpoint(t); got != "http://127.0.0.1:1" {
		t.Fatalf("Endpoint = %q, want the environment's", got)
	}
}

func TestNewTable(t *testing.T) {
	client := testdynamo.Client(t)
	a, b := testdynamo.NewTable(t, client), testdynamo.NewTable(t, client)
	if a == b {
		t.Fatalf("two tables named %q", a)
	}
	for _, table := range []string{a, b} {
		out, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Table.TableStatus != types.TableStatusActive {
			t.Fatalf("%s is %s, want ACTIVE", table, out.Table.TableStatus)
		}
	}
}

func TestCounter(t *testing.T) {
	client, calls := testdynamo.CountingClient(t)
	table := testdynamo.NewTable(t, client)
	calls.Reset()

	const n = 8
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, _ = client.GetItem(t.Context(), &dynamodb.GetItemInput{
				TableName: aws.String(table),
				Key:       map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "k"}},
			})
		})
	}
	wg.Wait()
	_, _ = client.ListTables(t.Context(), &dynamodb.ListTablesInput{})

	want := map[string]int{"GetItem": n, "ListTables": 1}
	if got := calls.Counts(); !maps.Equal(got, want) {
		t.Fatalf("Counts = %v, want %v", got, want)
	}
	if calls.Count("GetItem") != n || calls.Total() != n+1 {
		t.Fatalf("Count(GetItem) = %d, Total = %d", calls.Count("GetItem"), calls.Total())
	}
	calls.Reset()
	if calls.Total() != 0 {
		t.Fatalf("Total after Reset = %d", calls.Total())
	}
}

// TestOldItemOnConditionFailure checks the emulation of ALL_OLD: failed
// conditional writes that ask for the old item carry it; others do not.
func TestOldItemOnConditionFailure(t *testing.T) {
	client, calls := testdynamo.CountingClient(t, testdynamo.WithOldItemOnConditionFailure())
	table := testdynamo.NewTable(t, client)
	key := map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "k"}}
	stored := map[string]types.AttributeValue{"id": key["id"], "v": &types.AttributeValueMemberN{Value: "1"}}
	if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: stored}); err != nil {
		t.Fatal(err)
	}
	never := aws.String("attribute_not_exists(id)")
	tests := []struct {
		name     string
		rv       types.ReturnValuesOnConditionCheckFailure
		call     func(rv types.ReturnValuesOnConditionCheckFailure) error
		wantItem bool
	}{
		{"PutItem ALL_OLD", types.ReturnValuesOnConditionCheckFailureAllOld, func(rv types.ReturnValuesOnConditionCheckFailure) error {
			_, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: key,
				ConditionExpression: never, ReturnValuesOnConditionCheckFailure: rv})
			return err
		}, true},
		{"PutItem NONE", types.ReturnValuesOnConditionCheckFailureNone, func(rv types.ReturnValuesOnConditionCheckFailure) error {
			_, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: key,
				ConditionExpression: never, ReturnValuesOnConditionCheckFailure: rv})
			return err
		}, false},
		{"UpdateItem ALL_OLD", types.ReturnValuesOnConditionCheckFailureAllOld, func(rv types.ReturnValuesOnConditionCheckFailure) error {
			_, err := client.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: key,
				UpdateExpression: aws.String("SET w = :w"), ConditionExpression: never,
				ExpressionAttributeValues:           map[string]types.AttributeValue{":w": &types.AttributeValueMemberN{Value: "2"}},
				ReturnValuesOnConditionCheckFailure: rv})
			return err
		}, true},
		{"DeleteItem ALL_OLD", types.ReturnValuesOnConditionCheckFailureAllOld, func(rv types.ReturnValuesOnConditionCheckFailure) error {
			_, err := client.DeleteItem(t.Context(), &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key,
				ConditionExpression: never, ReturnValuesOnConditionCheckFailure: rv})
			return err
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls.Reset()
			err := tt.call(tt.rv)
			var ccf *types.ConditionalCheckFailedException
			if !errors.As(err, &ccf) {
				t.Fatalf("error = %v, want ConditionalCheckFailedException", err)
			}
			if got := len(ccf.Item) > 0; got != tt.wantItem {
				t.Fatalf("error carries an item: %v, want %v", got, tt.wantItem)
			}
			if tt.wantItem {
				if v, ok := ccf.Item["v"].(*types.AttributeValueMemberN); !ok || v.Value != "1" {
					t.Fatalf("Item = %v, want the stored item", ccf.Item)
				}
			}
			if calls.Total() != 1 {
				t.Fatalf("counted %v, want 1 call", calls.Counts())
			}
		})
	}
}
