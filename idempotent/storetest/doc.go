// Package storetest is the contract suite every idempotent.Store passes: one
// set of tests, run against the memory store, DynamoDB and any later store,
// so they all keep the same promises.
//
// The suite checks each promise of the idempotent.Store doc comments with
// explicit now values (it never reads a clock), including the boundaries
// where a record becomes free (Expiration == now in epoch seconds,
// LeaseExpiration == now in epoch milliseconds), owner fencing of Complete
// and Release, exact round trips of every Record field, one winner among
// concurrent Acquires, and retried writes: an Acquire or Complete repeated by
// its owner after it landed (a client retrying a write whose answer was
// lost) succeeds without changing the record — the core relies on the store
// for this and does not check again.
//
// Usage, in a store's tests:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) idempotent.Store {
//			return mystore.New(...) // a fresh, empty store for each subtest
//		})
//	}
//
// § references in this package's comments are to the contract,
// docs/contract.md in the repository.
package storetest
