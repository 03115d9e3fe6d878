package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/sqsbatch"
)

// config is the function's configuration, from its environment.
type config struct {
	ordersTable      string
	idempotencyTable string
	ttl              time.Duration // 0: the library's default
	logLevel         slog.Level
}

// loadConfig reads the configuration with getenv (os.Getenv in main).
// Missing tables, a TTL that is not a positive number of seconds and an
// unknown log level are errors; the log level is set even then, so the error
// can be logged.
func loadConfig(getenv func(string) string) (config, error) {
	var cfg config
	var errs []error
	if s := getenv("LOG_LEVEL"); s != "" {
		if err := cfg.logLevel.UnmarshalText([]byte(s)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL %q: want DEBUG, INFO, WARN or ERROR", s))
		}
	}
	cfg.ordersTable = getenv("ORDERS_TABLE")
	if cfg.ordersTable == "" {
		errs = append(errs, errors.New("ORDERS_TABLE is not set"))
	}
	cfg.idempotencyTable = getenv("IDEMPOTENCY_TABLE")
	if cfg.idempotencyTable == "" {
		errs = append(errs, errors.New("IDEMPOTENCY_TABLE is not set"))
	}
	if s := getenv("IDEMPOTENCY_TTL"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n > int64(time.Duration(1<<63-1)/time.Second) {
			errs = append(errs, fmt.Errorf("IDEMPOTENCY_TTL %q: want a positive number of seconds", s))
		} else {
			cfg.ttl = time.Duration(n) * time.Second
		}
	}
	return cfg, errors.Join(errs...)
}

// ordersAPI is the one call the function makes on the orders table; the SAM
// template grants exactly dynamodb:PutItem on it.
type ordersAPI interface {
	PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// order is the message body.
type order struct {
	OrderID  string `json:"orderId"`
	Customer string `json:"customer"`
	Amount   *int64 `json:"amount"` // minor units (cents)
}

// orderItem is an order as the orders table holds it, written with the
// SDK's attributevalue package from the struct tags.
type orderItem struct {
	ID         string `dynamodbav:"id"`
	Customer   string `dynamodbav:"customer"`
	Amount     int64  `dynamodbav:"amount"` // minor units (cents)
	MessageID  string `dynamodbav:"messageId"`
	RecordedAt string `dynamodbav:"recordedAt"` // RFC 3339, UTC
}

// invalidOrderError is the failure of a record whose body is not a valid
// order. It is permanent: the record goes to the dead-letter queue after
// maxReceiveCount deliveries.
type invalidOrderError struct {
	messageID string
	err       error
}

func (e *invalidOrderError) Error() string {
	return fmt.Sprintf("orders: message %s is not a valid order: %v", e.messageID, e.err)
}

func (e *invalidOrderError) Unwrap() error { return e.err }

// app records orders.
type app struct {
	orders ordersAPI
	table  string
	logger *slog.Logger
	now    func() time.Time
	// handle is the Lambda handler: recordOrder per record, under sqsbatch.
	handle func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)
}

// newApp builds the handler. core are added to the guard's options (main
// adds the metrics observer; tests, the core's name).
func newApp(cfg config, orders ordersAPI, store idempotent.Store, logger *slog.Logger, core ...idempotent.Option) *app {
	a := &app{orders: orders, table: cfg.ordersTable, logger: logger, now: time.Now}
	opts := []idempotent.Option{idempotent.WithLogger(logger)}
	if cfg.ttl > 0 {
		opts = append(opts, idempotent.WithTTL(cfg.ttl))
	}
	guard := idempotent.New(store, append(opts, core...)...)
	a.handle = sqsbatch.Wrap(guard, a.recordOrder, sqsbatch.WithBodyKey("orderId"))
	return a
}

// recordOrder writes the order of one message, once: a conditional PutItem
// that only creates. An order already in the table (recorded by an earlier
// run that crashed before completing its idempotency record, or sent again
// after the TTL) is a success.
func (a *app) recordOrder(ctx context.Context, m events.SQSMessage) error {
	o, err := parseOrder(m)
	if err != nil {
		return err
	}
	item, err := attributevalue.MarshalMap(orderItem{
		ID:         o.OrderID,
		Customer:   o.Customer,
		Amount:     *o.Amount,
		MessageID:  m.MessageId,
		RecordedAt: a.now().UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return fmt.Errorf("orders: encode order %s: %w", o.OrderID, err)
	}
	_, err = a.orders.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(a.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#id)"),
		ExpressionAttributeNames: map[string]string{"#id": "id"},
	})
	var exists *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &exists):
		a.logger.InfoContext(ctx, "order already recorded", slog.String("orderId", o.OrderID), slog.String("messageId", m.MessageId))
		return nil
	case err != nil:
		return fmt.Errorf("orders: record order %s: %w", o.OrderID, err)
	}
	a.logger.InfoContext(ctx, "order recorded", slog.String("orderId", o.OrderID), slog.String("messageId", m.MessageId))
	return nil
}

// parseOrder decodes and checks a message body.
func parseOrder(m events.SQSMessage) (order, error) {
	var o order
	d := json.NewDecoder(bytes.NewReader([]byte(m.Body)))
	if err := d.Decode(&o); err != nil {
		return o, &invalidOrderError{m.MessageId, err}
	}
	if _, err := d.Token(); err != io.EOF {
		return o, &invalidOrderError{m.MessageId, errors.New("data after the order")}
	}
	switch {
	case o.OrderID == "":
		return o, &invalidOrderError{m.MessageId, errors.New("no orderId")}
	case o.Customer == "":
		return o, &invalidOrderError{m.MessageId, errors.New("no customer")}
	case o.Amount == nil:
		return o, &invalidOrderError{m.MessageId, errors.New("no amount")}
	case *o.Amount < 0:
		return o, &invalidOrderError{m.MessageId, fmt.Errorf("negative amount %d", *o.Amount)}
	}
	return o, nil
}
