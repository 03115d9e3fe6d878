// Package idempotent makes AWS Lambda handlers, and any function, idempotent:
// a duplicate invocation returns the stored result of the first instead of
// running again.
//
// New builds a Guard over a Store — the DynamoDB store in
// idempotent/dynamostore in production, NewMemoryStore in tests — once, with
// the settings every call shares (TTL, name, lease, wait, local cache,
// clock, logger, observers); a mistake in them is a *ConfigError that every
// call through the guard returns. Wrap guards a whole handler and goes
// straight into lambda.Start:
//
//	lambda.Start(idempotent.Wrap(idempotent.New(store), handle, idempotent.WithKeyPath("orderId")))
//
// Do guards one named step inside a handler (per SQS record, per workflow
// step; the step name scopes the key, so two steps with one key keep two
// records). The adapters (idempotent/apigw, idempotent/idemhttp,
// idempotent/sqsbatch) take the same guard. Options are typed by where they
// apply: Option for New, WrapOption for Wrap (WithKeyPath, WithKeyFunc,
// WithPayloadPath), CallOption for Do (WithFingerprint); WithReplayHook is
// both. All of them keep one record per idempotency key in the Store and
// follow one contract:
//
//   - for one key, within its TTL, the guarded function runs to completion at
//     most once, and every caller presenting the key with the same payload
//     receives the same stored result;
//   - a run that returns an error or panics releases the key, so a retry runs
//     again;
//   - a run that crashes or times out holds the key until its lease (by
//     default the invocation's deadline) ends; RecordIDFromContext gives the
//     handler the record id to make its own downstream writes idempotent;
//   - a run that finishes after its lease was taken over gets ErrLeaseLost
//     and overwrites nothing (owner fencing);
//   - a store failure never lets the function run unguarded: the call fails
//     with a *StoreError, safe to retry.
//
// Keys: Wrap keys an event by its whole JSON form (canonical: members
// sorted, no insignificant whitespace, so a json.RawMessage event does not
// depend on member order), by a JMESPath expression (WithKeyPath), or by a Go
// function (WithKeyFunc); Do takes the key directly. Key paths use the
// jmespath-community engine with Powertools' functions — powertools_json,
// powertools_base64, powertools_base64_gzip — so "powertools_json(body).[user,
// orderId]" works verbatim, and WithJMESPathFunction adds custom ones; a path
// that does not compile or calls an unknown function is a *ConfigError on
// every call. A missing key — null, "", an empty list or object, or a list or
// object whose members are all missing, such as a multi-select over absent
// fields — runs the function unguarded with a warning, or fails with ErrNoKey
// under WithRequireKey; it is never hashed into a shared record.
// CompileKeyPath gives the same rules to callers of Do.
//
// A duplicate that arrives while the first run is still going gets
// ErrInProgress (an *InProgressError), or waits for the result with WithWait.
// Duplicates that meet in one process over one Store value coalesce instead:
// they wait in memory for the first call, with no store call
// (OutcomeCoalesced; docs/concurrency.md).
// The same key with a different payload gets ErrPayloadMismatch when payload
// validation is on (WithPayloadPath, WithFingerprint).
//
// Store calls per invocation: a new key takes two writes (acquire, complete);
// a replay takes one conditional write on DynamoDB (two on servers that do
// not return the old item); a replay from the local cache (WithLocalCache)
// takes none.
//
// Every guarded call reports what became of it (a Report: completed,
// replayed, in progress, lease takeover, store error, …) to the observers
// installed with WithObserver, and logs notable outcomes with stable field
// names; idempotent/emf turns the reports into CloudWatch metrics and
// idempotent/idemotel into OpenTelemetry spans. WithReplayHook sees, and may
// decorate, every replayed result.
//
// The handler's error is returned as the same value (joined with a
// *StoreError only when releasing the key failed), so errors.As, Lambda's
// errorType and Step Functions Catch see the user's type. The package's own
// errors are named types that match the sentinels with errors.Is
// (*NoKeyError, *PayloadMismatchError, *InProgressError, *LeaseLostError,
// *CorruptRecordError).
//
// Setting IDEMPOTENCY_DISABLED=true bypasses every guard with a warning, for
// users' unit tests; New reads it once.
//
// The full contract, whose sections the § references in this module's
// comments name, is docs/contract.md in the repository.
package idempotent
