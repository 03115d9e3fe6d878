// Package httpidem is the one implementation of the HTTP idempotency
// semantics of the contract (§4), shared by the API Gateway / Function URL /
// ALB adapters (idempotent/apigw) and the net/http middleware
// (idempotent/idemhttp). Adapters translate their request into a Request and
// their response type through a Codec; Serve does everything else: guarded
// methods, the Idempotency-Key header, scope, fingerprint, the call to
// idempotent.Do, what is stored, replays and the problem+json error
// responses.
//
// The flow of one request in Serve:
//
//  1. a method that is not guarded, or a request without the header (unless
//     the key is required), runs the handler unguarded;
//  2. an invalid header value (or two different values: repeated headers,
//     or commas outside quotes) is answered 400 without running the handler;
//  3. key material = principal + method + path + key, fingerprint =
//     canonical query, canonical body (+ configured headers); a request with
//     credentials but no principal is refused (UnidentifiedCallerError);
//  4. idempotent.Do runs the handler; a response the policy does not store
//     leaves Do as a private error that carries it, so Do releases the key,
//     and Serve unwraps it and answers with it; a 2xx the adapter delivered
//     while it was written and could not keep (DeliveredCodec) is stored as
//     a marker instead, and duplicates get 410 (TypeNotStored);
//  5. Do's errors become problem responses: 422 payload mismatch, 409 in
//     progress (Retry-After: 1), 503 store failure (Retry-After; after the handler ran, the lease end), 500 corrupt
//     record or misconfiguration. A Go error of the handler is returned as
//     the same value (after the key was released; joined only with a failed
//     release).
//
// The adapters' options are declared once, in options.go: apigw.Option and
// idemhttp.Option are aliases of Option.
//
// § references in this package's comments are to the contract,
// docs/contract.md in the repository.
package httpidem
