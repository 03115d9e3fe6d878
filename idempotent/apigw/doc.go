// Package apigw makes HTTP handlers behind Amazon API Gateway (REST API v1,
// HTTP API v2), Lambda Function URLs and Application Load Balancers
// idempotent by the Idempotency-Key header (contract §4).
//
// The guarantee: for one caller, method, path and key, within the TTL, the
// handler runs to completion at most once; every duplicate with the same
// method, path, query and body gets the first response again — status,
// headers, multi-value headers, cookies, body and base64 flag — plus
// Idempotent-Replayed: true. Duplicates with another payload get 422, those
// that arrive while the first runs get 409 with Retry-After, and a store
// failure gets 503 without running the handler (or, when the store fails
// only after the handler ran, 503 "outcome unknown"). 5xx responses (and 408, 409,
// 425, 429) and Go errors are not stored: they release the key, so a retry
// runs again. Error responses made by the library are RFC 9457
// application/problem+json.
//
// The semantics are implemented once (idempotent/internal/httpidem) and shared with the
// net/http middleware in idempotent/idemhttp.
//
// Usage:
//
//	store := dynamostore.New(dynamodb.NewFromConfig(cfg), os.Getenv("IDEMPOTENCY_TABLE"))
//	lambda.Start(apigw.WrapV2(store, handle, apigw.WithTTL(24*time.Hour)))
//
// The caller principal (key scope) is taken from the event: JWT sub (with
// issuer), IAM user ARN, Lambda authorizer principalId, API key id — the
// first present — or "anonymous"; WithScope overrides it.
package apigw
