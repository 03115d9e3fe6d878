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
//	mw := idemhttp.Middleware(store, idemhttp.WithScope(func(r *http.Request) (string, error) {
//		return userFrom(r.Context()), nil
//	}))
//	http.ListenAndServe(":8080", mw(mux))
//
// # Client
//
// NewTransport (and NewClient) is the caller's half: for POST and PATCH it
// attaches an Idempotency-Key (a UUID v4 made once per logical request, or
// the caller's own, validated) and sends it on every attempt; it retries
// transport errors and 408, 409, 425, 429, 500, 502, 503 and 504 with
// capped exponential backoff and full jitter or the server's Retry-After
// (capped), within the request context's deadline, a bounded number of
// attempts and an optional RetryBudget shared by a fleet; it sends the body
// again from GetBody or a bounded buffer. A replayed answer
// (Idempotent-Replayed: true) is final. Other methods pass through
// untouched, even with a key: the transport only retries what it guards.
// Below it, net/http's Transport also resends a request that carries an
// Idempotency-Key when a reused keep-alive connection fails before the
// answer; such resends carry the same key and are not counted as attempts.
//
//	client := idemhttp.NewClient(idemhttp.WithRetryBudget(idemhttp.NewRetryBudget(500)))
//	resp, err := client.Post(url, "application/json", body)
//	key, attempts := idemhttp.KeyOf(resp), idemhttp.AttemptsOf(resp)
//
// Why no library: github.com/cenkalti/backoff/v5 (read at v5.0.3) gives
// Retry with a RetryAfterError, but its timer and clock are unexported (no
// injected time: tests would sleep), its jitter is ±50% around the interval
// rather than full jitter and draws from the global math/rand, a
// RetryAfterError replaces the backoff uncapped, it starts a wait that ends
// past the context's deadline and then returns the context's error instead
// of the last response, and it has no shared budget; what would be used of
// it is the ten-line interval formula. github.com/hashicorp/go-retryablehttp
// (v0.7.8) has CheckRetry/Backoff hooks, but its RoundTripper buffers the
// whole body without a limit, sleeps on real timers, retries 409 only
// through a custom policy, has no budget, and brings go-cleanhttp and
// go-hclog into every user's module graph. Keys are 10 lines over
// crypto/rand rather than github.com/google/uuid: one function of it would
// be used. The core library module stays dependency-light for every user.
//
// § references in this package's comments are to the contract,
// docs/contract.md in the repository.
package idemhttp
