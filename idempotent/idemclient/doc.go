// Package idemclient is the caller's half of idempotency: an HTTP client
// (an http.RoundTripper, or an *http.Client around one) that makes POST and
// PATCH requests safe to retry, and retries them.
//
// The guarantee: every attempt of one logical request carries the same
// Idempotency-Key, so a server that dedupes by that key (the idemhttp
// middleware, the apigw adapters, or any API that follows the IETF draft or
// Stripe's convention) runs it at most once however many attempts reach
// it. A request without the header gets a key, a UUID v4 from crypto/rand
// made once per logical request; a caller's own header, under any spelling
// of its name, is validated (the server's rules, contract §4; otherwise
// *InvalidKeyError and nothing is sent) and sent as it is. Only what carries a key is retried: transport
// errors (the request may or may not have reached the server) and 408,
// 409, 425, 429, 500, 502, 503 and 504, with capped exponential backoff
// and full jitter or the server's Retry-After (one over the cap ends the
// retries), within the request context's deadline, a bounded number of
// attempts and an optional RetryBudget shared by a fleet. The body is sent
// again from GetBody or a bounded buffer. A replayed answer
// (Idempotent-Replayed: true) is final, and so is a 500 that our server
// marks permanent (a misconfigured endpoint, an unidentified caller, a
// corrupt record): it is returned as it is. Other methods pass through
// untouched, even with a key.
//
// Redirects followed by an http.Client (NewClient's or your own, with or
// without a CheckRedirect) are part of the logical request: a 307 or 308
// hop carries the first hop's key, and the attempts bound counts over all
// hops; a 301, 302 or 303, which turns the request into a GET of another
// resource, is sent with no key (not even the caller's) and once. A hop is
// a request whose Response field is a redirect response the transport
// returned, followed by one request only; any other request, even one
// cloned from an earlier hop, is a new logical request. The key goes with a
// 307 or 308 hop to any host, also where net/http drops credentials:
// servers scope keys by caller, and the body goes there anyway. Below it,
// net/http's Transport also resends a request that carries an
// Idempotency-Key when a reused keep-alive connection fails before the
// answer; such resends carry the same key and are not counted as attempts.
//
// Usage:
//
//	client := idemclient.NewClient(idemclient.WithRetryBudget(idemclient.NewRetryBudget(500)))
//	resp, err := client.Post(url, "application/json", body)
//	if err != nil {
//		var ae *idemclient.AttemptError // the key to learn the outcome with later
//		...
//	}
//	key, attempts := idemclient.KeyOf(resp), idemclient.AttemptsOf(resp)
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
package idemclient
