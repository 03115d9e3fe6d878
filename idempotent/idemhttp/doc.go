// Package idemhttp is net/http middleware that makes handlers idempotent by
// the Idempotency-Key header, with the same semantics as the API Gateway
// adapters in idempotent/apigw (contract §4; both use one implementation).
//
// The guarantee: for one principal, method, path and key, within the TTL,
// the handler runs to completion at most once (the same key on another
// method or path is another record); every duplicate with the same query and
// body gets the first response again (status, headers, body) plus
// Idempotent-Replayed: true. Another query or body gets 422, a duplicate
// while the first runs 409 with Retry-After: 1, a store failure 503
// (before the handler runs, or "outcome unknown" after it ran).
// 5xx responses (and 408, 409, 425, 429) are not stored and release the key.
// Responses are buffered up to WithMaxBody (6 MB by default); a flushed one is
// stored while it stays within that limit, and a 2xx streamed past it
// completes the key without a stored response (never rerun; duplicates get
// 410). Headers and trailers are stored and replayed byte for byte.
//
// The principal comes from WithScope (typically the user an authentication
// middleware put in the context); without it every caller is "anonymous",
// except that a request carrying an Authorization header or a TLS client
// certificate is refused (500, problem type unidentified-caller) rather than
// put in that shared scope. Several Idempotency-Key values (header lines, or
// commas outside double quotes) are 400 unless they are equal.
//
// Usage:
//
//	store := idempotent.NewMemoryStore()
//	mw := idemhttp.Middleware(idempotent.New(store), idemhttp.WithScope(func(r *http.Request) (string, error) {
//		return userFrom(r.Context()), nil
//	}))
//	http.ListenAndServe(":8080", mw(mux))
//
// # Client
//
// The caller's half, a retrying client that makes one key per logical
// request and sends it on every retry and redirect, is package
// idempotent/idemclient.
//
// § references in this package's comments are to the contract,
// docs/contract.md in the repository.
package idemhttp
