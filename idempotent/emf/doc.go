// Package emf turns the idempotency layer's reports into CloudWatch metrics
// with no API call: it writes records in the Embedded Metric Format (EMF),
// one JSON line per invocation, to stdout, where Lambda's log pipeline hands
// them to CloudWatch, which extracts the metrics.
//
// The guarantee: every guarded call, HTTP request and batch the layer
// reports (idempotent.Observer) is counted in exactly one record, and every
// record is a valid EMF document (one metric directive, at most 100 metrics,
// values at the root).
//
// Counts are batched per invocation: wrap the Lambda handler with Wrap, which
// writes the invocation's record when the handler returns (or panics).
// Reports made outside Wrap collect in the Metrics value until Flush.
//
//	m, err := emf.New(func(o *emf.Options) { o.Namespace = "payments" })
//	if err != nil { ... }
//	h := idempotent.Wrap(idempotent.New(store, m.Option()), handle, idempotent.WithKeyPath("orderId"))
//	lambda.Start(emf.Wrap(m, h))
//
// The metrics (unit Count unless stated): one per outcome of a guarded call —
// Completed, Failed, Panicked, Replayed, CacheReplayed, InProgress,
// WaitReplayed, Coalesced, WaitTimedOut, PayloadMismatch, Unguarded, NoKey, LeaseLost,
// StoreErrors (and StoreErrorsAcquire, StoreErrorsGet, StoreErrorsComplete,
// StoreErrorsRelease), CorruptRecords —, LeaseTakeovers, Calls, StoreTime and
// HandlerTime (Milliseconds, summed over the invocation's calls), HTTP2xx,
// HTTP3xx, HTTP4xx, HTTP5xx, and BatchRecords, BatchFailures, BatchReplays.
// A record carries only the metrics that are not zero; an invocation with
// nothing to report writes nothing.
//
// Every record has a "level" member (FATAL unless Options.Level says
// otherwise) and an RFC 3339 "timestamp": with LogFormat JSON, Lambda's
// application log-level filtering counts a JSON line without a level as
// INFO and drops it when ApplicationLogLevel is WARN or ERROR; FATAL is
// kept at every level. New refuses, with an *OptionError, a namespace or
// dimension CloudWatch would refuse (not 1–255 printable ASCII characters,
// blank, starting with ':'; values up to 1024).
package emf
