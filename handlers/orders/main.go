package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemlambda/idemlambda/handlers/internal/idemstore"
	"github.com/idemlambda/idemlambda/idempotent/emf"
)

func main() {
	cfg, cfgErr := loadConfig(os.Getenv)
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.logLevel}))
	slog.SetDefault(logger)
	if cfgErr != nil {
		logger.Error("invalid configuration", slog.Any("error", cfgErr))
		os.Exit(1)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		logger.Error("load AWS configuration", slog.Any("error", err))
		os.Exit(1)
	}
	client := dynamodb.NewFromConfig(awsCfg)
	store, err := idemstore.New(os.Getenv, client, cfg.idempotencyTable)
	if err != nil {
		logger.Error("invalid configuration", slog.Any("error", err))
		os.Exit(1)
	}
	// CloudWatch metrics of the idempotency layer: one EMF line per
	// invocation on stdout, next to the logs (README, "Operating it").
	metrics, err := emf.New()
	if err != nil {
		logger.Error("metrics", slog.Any("error", err))
		os.Exit(1)
	}
	lambda.Start(emf.Wrap(metrics, newApp(cfg, client, store, logger, metrics.Option()).handle))
}
