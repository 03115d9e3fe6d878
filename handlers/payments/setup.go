package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemlambda/idemlambda/handlers/internal/idemstore"
	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/emf"
)

// env is what setup reads from the environment.
type env struct {
	paymentsTable string
	idemTable     string
	ttl           time.Duration // 0: the library's default
	level         slog.Level
}

// readEnv validates the environment; every problem is reported at once.
func readEnv(getenv func(string) string) (env, error) {
	var e env
	var errs []error
	if e.paymentsTable = getenv("PAYMENTS_TABLE"); e.paymentsTable == "" {
		errs = append(errs, errors.New("PAYMENTS_TABLE is not set"))
	}
	if e.idemTable = getenv("IDEMPOTENCY_TABLE"); e.idemTable == "" {
		errs = append(errs, errors.New("IDEMPOTENCY_TABLE is not set"))
	}
	if v := getenv("IDEMPOTENCY_TTL"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > int64((100*365*24*time.Hour)/time.Second) {
			errs = append(errs, fmt.Errorf("IDEMPOTENCY_TTL %q is not a positive number of seconds", v))
		} else {
			e.ttl = time.Duration(n) * time.Second
		}
	}
	e.level = slog.LevelInfo
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := e.level.UnmarshalText([]byte(strings.TrimSpace(v))); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL %q is not DEBUG, INFO, WARN or ERROR", v))
		}
	}
	return e, errors.Join(errs...)
}

// setup builds the handler from the environment: JSON logs to out, one
// DynamoDB client for both tables.
func setup(ctx context.Context, getenv func(string) string, out io.Writer) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
	e, err := readEnv(getenv)
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: e.level}))
	slog.SetDefault(logger)
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	client := dynamodb.NewFromConfig(cfg)
	store, err := idemstore.New(getenv, client, e.idemTable)
	if err != nil {
		return nil, err
	}
	// CloudWatch metrics of the idempotency layer: one EMF line per
	// invocation on stdout, next to the logs (README, "Operating it").
	metrics, err := emf.New(func(o *emf.Options) { o.Writer = out })
	if err != nil {
		return nil, err
	}
	core := []idempotent.Option{metrics.Option()}
	if e.ttl > 0 {
		core = append(core, idempotent.WithTTL(e.ttl))
	}
	return emf.Wrap(metrics, newApp(appConfig{
		DB:            client,
		PaymentsTable: e.paymentsTable,
		Store:         store,
		Core:          core,
		Logger:        logger,
	})), nil
}
