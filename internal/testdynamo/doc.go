// Package testdynamo gives integration tests a real, local DynamoDB-compatible
// server (dynalite, pinned in the repository's dynalite/ folder) and clients
// for it.
//
// If AWS_ENDPOINT_URL_DYNAMODB is set (make test starts one server and sets
// it), tests use that server. Otherwise the first call to Endpoint or Client
// in a test binary starts one dynalite process on a free 127.0.0.1 port and
// waits until it answers; Main stops it when the tests end, and on Linux the
// process is also killed if the test binary dies. Every test gets its own
// table from NewTable, so tests never share state.
//
// Counting: CountingClient (or WithCounter, or Counter.Middleware in a
// client's APIOptions) counts the round trips per operation, so tests assert
// the contract's floor of store calls. dynalite ignores
// ReturnValuesOnConditionCheckFailure; a client made with
// WithOldItemOnConditionFailure behaves like real DynamoDB there (the failed
// write's error carries the existing item, read behind the scenes and not
// counted), so tests can assert both floors: replay = 2 calls on dynalite, 1
// on DynamoDB.
//
// Usage:
//
//	func TestMain(m *testing.M) { testdynamo.Main(m) }
//
//	func TestX(t *testing.T) {
//		client, calls := testdynamo.CountingClient(t)
//		table := testdynamo.NewTable(t, client)
//		store := dynamostore.New(client, table)
//		...
//		if got := calls.Count("PutItem"); got != 1 { ... }
//	}
package testdynamo
