package dynamostore_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// fakeTableAPI is a dynamostore.TableAPI with canned answers.
type fakeTableAPI struct {
	createErr   error
	describeTTL *types.TimeToLiveDescription
	ttlErr      error
	updateErr   error

	created    *dynamodb.CreateTableInput
	ttlUpdates []*dynamodb.UpdateTimeToLiveInput
}

func (f *fakeTableAPI) CreateTable(_ context.Context, in *dynamodb.CreateTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	f.created = in
	return &dynamodb.CreateTableOutput{}, f.createErr
}

func (f *fakeTableAPI) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return &dynamodb.DescribeTableOutput{Table: &types.TableDescription{TableName: in.TableName, TableStatus: types.TableStatusActive}}, nil
}

func (f *fakeTableAPI) DescribeTimeToLive(context.Context, *dynamodb.DescribeTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error) {
	if f.ttlErr != nil {
		return nil, f.ttlErr
	}
	d := f.describeTTL
	if d == nil {
		d = &types.TimeToLiveDescription{TimeToLiveStatus: types.TimeToLiveStatusDisabled}
	}
	return &dynamodb.DescribeTimeToLiveOutput{TimeToLiveDescription: d}, nil
}

func (f *fakeTableAPI) UpdateTimeToLive(_ context.Context, in *dynamodb.UpdateTimeToLiveInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	f.ttlUpdates = append(f.ttlUpdates, in)
	return &dynamodb.UpdateTimeToLiveOutput{}, f.updateErr
}

func quiet(o *dynamostore.Options) { o.Logger = slog.New(slog.DiscardHandler) }

func TestCreateTable(t *testing.T) {
	unknownOp := &smithy.GenericAPIError{Code: "UnknownOperationException"}
	tests := []struct {
		name       string
		api        *fakeTableAPI
		opts       []func(*dynamostore.Options)
		wantErr    bool
		wantKeys   []string // key schema, hash first
		wantUpdate bool     // UpdateTimeToLive called
	}{
		{name: "simple key", api: &fakeTableAPI{}, wantKeys: []string{"id"}, wantUpdate: true},
		{name: "composite key", api: &fakeTableAPI{}, opts: []func(*dynamostore.Options){dynamostore.WithCompositeKey("")},
			wantKeys: []string{"pk", "sk"}, wantUpdate: true},
		{name: "table exists", api: &fakeTableAPI{createErr: &types.ResourceInUseException{Message: aws.String("exists")}},
			wantKeys: []string{"id"}, wantUpdate: true},
		{name: "create fails", api: &fakeTableAPI{createErr: &smithy.GenericAPIError{Code: "AccessDeniedException"}},
			wantKeys: []string{"id"}, wantErr: true},
		{name: "TTL already on", api: &fakeTableAPI{describeTTL: &types.TimeToLiveDescription{
			AttributeName: aws.String("expiration"), TimeToLiveStatus: types.TimeToLiveStatusEnabled}}, wantKeys: []string{"id"}},
		{name: "TTL on another attribute", api: &fakeTableAPI{
			describeTTL: &types.TimeToLiveDescription{AttributeName: aws.String("ttl"), TimeToLiveStatus: types.TimeToLiveStatusEnabled},
			updateErr:   &smithy.GenericAPIError{Code: "ValidationException", Message: "TimeToLive is already enabled"}},
			wantKeys: []string{"id"}, wantUpdate: true, wantErr: true},
		{name: "no TTL API", api: &fakeTableAPI{ttlErr: unknownOp, updateErr: unknownOp}, wantKeys: []string{"id"}, wantUpdate: true},
		{name: "TTL update denied", api: &fakeTableAPI{updateErr: &smithy.GenericAPIError{Code: "AccessDeniedException"}},
			wantKeys: []string{"id"}, wantUpdate: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := dynamostore.CreateTable(t.Context(), tt.api, "idempotency", append([]func(*dynamostore.Options){quiet}, tt.opts...)...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("CreateTable error = %v, want error %v", err, tt.wantErr)
			}
			in := tt.api.created
			if in.BillingMode != types.BillingModePayPerRequest {
				t.Errorf("BillingMode = %q, want on-demand", in.BillingMode)
			}
			var keys []string
			for _, k := range in.KeySchema {
				keys = append(keys, aws.ToString(k.AttributeName))
			}
			if len(keys) != len(tt.wantKeys) || keys[0] != tt.wantKeys[0] || in.KeySchema[0].KeyType != types.KeyTypeHash ||
				(len(keys) == 2 && (keys[1] != tt.wantKeys[1] || in.KeySchema[1].KeyType != types.KeyTypeRange)) {
				t.Errorf("key schema = %v, want %v", keys, tt.wantKeys)
			}
			if got := len(tt.api.ttlUpdates) > 0; got != tt.wantUpdate {
				t.Fatalf("UpdateTimeToLive called = %v, want %v", got, tt.wantUpdate)
			}
			if tt.wantUpdate {
				spec := tt.api.ttlUpdates[0].TimeToLiveSpecification
				if aws.ToString(spec.AttributeName) != "expiration" || !aws.ToBool(spec.Enabled) {
					t.Errorf("TTL spec = %s %v, want expiration enabled", aws.ToString(spec.AttributeName), aws.ToBool(spec.Enabled))
				}
			}
		})
	}
}

// TestCreateTableLocal creates tables on the local server, which has no TTL
// API, twice each.
func TestCreateTableLocal(t *testing.T) {
	client := testdynamo.Client(t)
	tests := []struct {
		name string
		opts []func(*dynamostore.Options)
	}{
		{name: "simple key"},
		{name: "composite key", opts: []func(*dynamostore.Options){dynamostore.WithCompositeKey("")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := testdynamo.NewTable(t, client, tt.opts...) // creates it once
			opts := append([]func(*dynamostore.Options){quiet}, tt.opts...)
			if err := dynamostore.CreateTable(t.Context(), client, table, opts...); err != nil {
				t.Fatalf("CreateTable on an existing table: %v", err)
			}
			out, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
			if err != nil {
				t.Fatal(err)
			}
			if out.Table.TableStatus != types.TableStatusActive {
				t.Fatalf("table status %s, want ACTIVE", out.Table.TableStatus)
			}
		})
	}
	t.Run("invalid name", func(t *testing.T) {
		err := dynamostore.CreateTable(t.Context(), client, "x", quiet) // names need 3 characters
		if err == nil {
			t.Fatal("CreateTable with an invalid name succeeded")
		}
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("error %v carries no API error", err)
		}
	})
}
