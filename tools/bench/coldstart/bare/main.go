// Command bare is the cold-start baseline of make bench's cold-start rows: an
// aws-lambda-go function that loads the SDK configuration and creates the
// same DynamoDB client as the example functions, with no idempotency library.
package main

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	client := dynamodb.NewFromConfig(cfg)
	lambda.Start(func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		_ = client
		return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
	})
}
