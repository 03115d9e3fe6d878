package dynamostore_test

import (
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/storetest"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// TestContract runs the store contract suite against the local server in
// every key layout.
func TestContract(t *testing.T) {
	client := testdynamo.Client(t)
	tests := []struct {
		name string
		opts []func(*dynamostore.Options)
	}{
		{name: "simple key"},
		{name: "composite key", opts: []func(*dynamostore.Options){dynamostore.WithCompositeKey("")}},
		{name: "composite key, static partition", opts: []func(*dynamostore.Options){dynamostore.WithCompositeKey("idempotency#shared")}},
		{name: "custom attribute names", opts: []func(*dynamostore.Options){customNames}},
		{name: "attribute names that need aliases", opts: []func(*dynamostore.Options){aliasedNames}},
		{name: "composite key, custom attribute names", opts: []func(*dynamostore.Options){customNames, func(o *dynamostore.Options) {
			o.CompositeKey = true
			o.PartitionKeyAttr = "PK"
			o.SortKeyAttr = "SK"
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) idempotent.Store {
				table := testdynamo.NewTable(t, client, tt.opts...)
				return dynamostore.New(client, table, tt.opts...)
			})
		})
	}
}

// customNames renames every attribute, including to DynamoDB reserved words.
func customNames(o *dynamostore.Options) {
	o.KeyAttr = "key"
	o.StatusAttr = "state"
	o.ExpirationAttr = "ttl"
	o.LeaseAttr = "lease_until_ms"
	o.OwnerAttr = "holder"
	o.FingerprintAttr = "hash"
	o.DataAttr = "result"
}

// aliasedNames renames every attribute to a name an expression cannot hold
// bare: reserved words in other cases, and names with characters that are
// not those of an identifier (a path separator, an alias or placeholder
// sign, a leading digit or underscore, a space, a dash).
func aliasedNames(o *dynamostore.Options) {
	o.KeyAttr = "Key"
	o.StatusAttr = "State.now"
	o.ExpirationAttr = "TTL"
	o.LeaseAttr = "lease until"
	o.OwnerAttr = ":owner"
	o.FingerprintAttr = "1hash"
	o.DataAttr = "#result"
	o.DataFormatAttr = "_format"
	o.ChunksAttr = "data-chunks"
}
