// Package idemotel traces the idempotency layer with OpenTelemetry: each
// guarded call becomes a span "idempotent" with children
// "idempotent.acquire", "idempotent.run", "idempotent.complete" and
// "idempotent.release", and the call's outcome as attributes (idempotent.outcome,
// idempotent.record, idempotent.takeover, …). The guarded function runs
// inside the run span, so its own spans nest under it. ADOT and X-Ray users
// see, per invocation, whether it replayed, how long the store took and
// whether it took over a crashed run's lease.
//
// A span whose phase failed has status Error and error.type (OpenTelemetry
// semantic conventions): the core's sentinel by name
// ("idempotent.ErrLeaseLost", "idempotent.ErrInProgress",
// "idempotent.ErrPayloadMismatch", "idempotent.ErrNoKey",
// "idempotent.ErrCorruptRecord"), "*idempotent.StoreError" for a store
// failure, else the Go type of the handler's error. The tracer's scope is
// ScopeName at Version. A nil TracerProvider means the global one.
//
// It is a module of its own, so the OpenTelemetry API stays out of the
// dependency graph of programs that import only the core or the stores.
//
//	guard := idempotent.New(store, idemotel.Option(otel.GetTracerProvider()))
//	h := idempotent.Wrap(guard, handle, idempotent.WithKeyPath("orderId"))
//
// The raw idempotency key is never recorded, only the record id (a hash).
package idemotel
