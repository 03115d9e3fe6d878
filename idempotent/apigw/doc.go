// Package apigw makes HTTP handlers behind Amazon API Gateway (REST API v1,
// HTTP API v2), Lambda Function URLs and Application Load Balancers
// idempotent by the Idempotency-Key header (contract §4).
//
// The guarantee: for one caller, method, path and key, within the TTL, the
// handler runs to completion at most once (the same key on another method or
// path is another record); every duplicate with the same query and body gets
// the first response again — status, headers, multi-value headers, cookies,
// body and base64 flag — plus Idempotent-Replayed: true. Duplicates with
// another query or body get 422, those that arrive while the first runs get
// 409 with Retry-After: 1, and a store
// failure gets 503 without running the handler (or, when the store fails
// only after the handler ran, 503 "outcome unknown"). 5xx responses (and 408, 409,
// 425, 429) and Go errors are not stored: they release the key, so a retry
// runs again; the handler's error is returned as the same value. Error
// responses made by the library are RFC 9457 application/problem+json. The
// Idempotency-Key header's value is split at commas outside double quotes
// (HTTP API v2 and Function URLs join repeated headers that way): two
// different values are 400, identical repeats are one key.
//
// The semantics are implemented once (idempotent/internal/httpidem) and shared with the
// net/http middleware in idempotent/idemhttp.
//
// Usage:
//
//	store := dynamostore.New(dynamodb.NewFromConfig(cfg), os.Getenv("IDEMPOTENCY_TABLE"))
//	lambda.Start(apigw.WrapV2(idempotent.New(store, idempotent.WithTTL(24*time.Hour)), handle))
//
// The caller principal (key scope) is taken from the event, the first
// present of: JWT or Cognito user pool sub (with issuer); for IAM
// authentication the Cognito identity id, else the user ARN; the Lambda
// authorizer's principalId; the API key id (REST). WithScope overrides it. A
// request without any of these is "anonymous", a scope such callers share —
// but only when it carries no credentials: one whose authorizer has no
// recognisable principal (an HTTP API Lambda authorizer context without
// principalId, a JWT without sub), ALB authentication headers
// (x-amzn-oidc-*; see ALBOIDCScope) or an Authorization header is refused
// with 500 (problem type unidentified-caller, logged) until WithScope names
// the caller.
//
// The options are declared once for both HTTP packages: Option is the same
// type as idemhttp.Option.
//
// § references in this package's comments are to the contract,
// docs/contract.md in the repository.
package apigw
