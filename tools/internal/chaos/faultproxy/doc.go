// Package faultproxy is a seeded, reproducible fault-injecting HTTP proxy for
// the DynamoDB JSON protocol. It listens on 127.0.0.1 and sits between an AWS
// SDK client and a local server (dynalite), and for each request decides —
// from the seed and the request's sequence number only — whether to forward
// it untouched or to inject one fault:
//
//   - Reset: the connection is reset before the request is forwarded (the
//     write did not happen);
//   - Drop: the request is forwarded and the server's answer thrown away, the
//     connection reset (the write happened and the caller does not know: the
//     hardest case for an idempotency layer);
//   - Delay: the request is held for a random time, then forwarded;
//   - InternalError: 500 InternalServerError, not forwarded;
//   - Throttle: 400 ThrottlingException, not forwarded;
//   - ProvisionedThroughput: 400 ProvisionedThroughputExceededException, not
//     forwarded.
//
// The rate of each kind is a parameter; the proxy counts what it injected,
// per kind and per DynamoDB operation. SetEnabled(false) turns faults off (to
// let a workload drain) without restarting the proxy.
//
// Decisions are reproducible per request number: request n of a run with
// seed s gets the same decision in every run. Which request gets number n
// depends on the scheduling of concurrent clients, so a concurrent workload
// is reproducible in its fault mix, not in its exact interleaving.
//
// Usage:
//
//	p, err := faultproxy.Start("http://127.0.0.1:8000", faultproxy.Config{
//		Seed:  1,
//		Rates: map[faultproxy.Kind]float64{faultproxy.Drop: 0.05},
//	})
//	if err != nil { ... }
//	defer p.Close()
//	client := dynamodb.New(dynamodb.Options{BaseEndpoint: aws.String(p.URL()), ...})
package faultproxy
