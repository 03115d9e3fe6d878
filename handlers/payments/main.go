// Command payments is the payments Lambda function of the example stack: an
// HTTP API (payload format 2.0) with
//
//	POST /payments       create a payment, idempotent by the Idempotency-Key header
//	GET  /payments/{id}  read one
//
// It builds to bootstrap for the provided.al2023 runtime. Environment:
// PAYMENTS_TABLE and IDEMPOTENCY_TABLE (required), REDIS_URL (optional: keep
// the idempotency records in Redis/Valkey instead of IDEMPOTENCY_TABLE),
// IDEMPOTENCY_TTL (seconds, optional), LOG_LEVEL (DEBUG, INFO, WARN, ERROR; default INFO); the AWS
// configuration (region, credentials, AWS_ENDPOINT_URL_DYNAMODB) comes from
// the SDK's defaults.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	h, err := setup(context.Background(), os.Getenv, os.Stdout)
	if err != nil {
		slog.Error("payments: setup failed", slog.Any("error", err))
		os.Exit(1)
	}
	lambda.Start(h)
}
