package idempotent_test

import (
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/storetest"
)

// The memory store passes the same contract suite as the DynamoDB store.
func TestMemoryStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) idempotent.Store { return idempotent.NewMemoryStore() })
}
