package main

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
)

var quiet = slog.New(slog.DiscardHandler)

func TestLoadConfig(t *testing.T) {
	full := map[string]string{"ORDERS_TABLE": "orders", "IDEMPOTENCY_TABLE": "idem"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for k, v := range full {
			m[k] = v
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    config
		wantErr bool
	}{
		{name: "minimal", env: full, want: config{ordersTable: "orders", idempotencyTable: "idem"}},
		{name: "ttl and level", env: with("IDEMPOTENCY_TTL", "86400"), want: config{ordersTable: "orders", idempotencyTable: "idem", ttl: 24 * time.Hour}},
		{name: "debug", env: with("LOG_LEVEL", "debug"), want: config{ordersTable: "orders", idempotencyTable: "idem", logLevel: slog.LevelDebug}},
		{name: "warn", env: with("LOG_LEVEL", "WARN"), want: config{ordersTable: "orders", idempotencyTable: "idem", logLevel: slog.LevelWarn}},
		{name: "no orders table", env: map[string]string{"IDEMPOTENCY_TABLE": "idem"}, wantErr: true},
		{name: "no idempotency table", env: map[string]string{"ORDERS_TABLE": "orders"}, wantErr: true},
		{name: "ttl not a number", env: with("IDEMPOTENCY_TTL", "1h"), wantErr: true},
		{name: "ttl zero", env: with("IDEMPOTENCY_TTL", "0"), wantErr: true},
		{name: "ttl negative", env: with("IDEMPOTENCY_TTL", "-5"), wantErr: true},
		{name: "ttl overflows", env: with("IDEMPOTENCY_TTL", "99999999999999"), wantErr: true},
		{name: "unknown level", env: with("LOG_LEVEL", "LOUD"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadConfig(func(k string) string { return tt.env[k] })
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("config %+v, want %+v", got, tt.want)
			}
		})
	}
}

// fakeOrders is an orders table in memory with PutItem's create-only
// condition.
type fakeOrders struct {
	mu    sync.Mutex
	items map[string]map[string]types.AttributeValue
	puts  int
	err   error
}

func (f *fakeOrders) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	if f.err != nil {
		return nil, f.err
	}
	if in.ConditionExpression == nil || *in.ConditionExpression != "attribute_not_exists(#id)" || in.ExpressionAttributeNames["#id"] != "id" {
		return nil, errors.New("fake: unexpected condition")
	}
	id := in.Item["id"].(*types.AttributeValueMemberS).Value
	if _, ok := f.items[id]; ok {
		return nil, &types.ConditionalCheckFailedException{Message: new("The conditional request failed")}
	}
	f.items[id] = in.Item
	return &dynamodb.PutItemOutput{}, nil
}

func sqsMessage(id, body string) events.SQSMessage {
	return events.SQSMessage{MessageId: id, Body: body, EventSource: "aws:sqs", EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:orders"}
}

func TestRecordOrder(t *testing.T) {
	tests := []struct {
		name       string
		preset     []string // order ids already in the table
		putErr     error
		batch      []events.SQSMessage
		wantFailed []string
		wantOrders []string
		wantPuts   int
	}{
		{
			name:       "valid orders are recorded",
			batch:      []events.SQSMessage{sqsMessage("m1", `{"orderId":"o-1","customer":"c-1","amount":1250}`), sqsMessage("m2", `{"orderId":"o-2","customer":"c-2","amount":0}`)},
			wantFailed: []string{},
			wantOrders: []string{"o-1", "o-2"},
			wantPuts:   2,
		},
		{
			name:       "already recorded is a success",
			preset:     []string{"o-1"},
			batch:      []events.SQSMessage{sqsMessage("m1", `{"orderId":"o-1","customer":"c-1","amount":1250}`)},
			wantFailed: []string{},
			wantOrders: []string{"o-1"},
			wantPuts:   1,
		},
		{
			name: "malformed orders fail alone",
			batch: []events.SQSMessage{
				sqsMessage("m1", `{"orderId":"o-1","customer":"c-1","amount":1250}`),
				sqsMessage("m2", `{"orderId":"o-2","customer":"c-2","amount":"12.50"}`),
				sqsMessage("m3", `{"orderId":"o-3","amount":1}`),
				sqsMessage("m4", `{"orderId":"o-4","customer":"c-4"}`),
				sqsMessage("m5", `{"orderId":"o-5","customer":"c-5","amount":-1}`),
				sqsMessage("m6", `{"orderId":"o-6","customer":"c-6","amount":1.5}`),
				sqsMessage("m7", `{"orderId":"o-7","customer":"c-7","amount":1}{}`),
				sqsMessage("m8", `{"customer":"c-8","amount":1}`),
				sqsMessage("m9", `<order/>`),
				sqsMessage("m10", `{"orderId":"o-10","customer":"c-10","amount":10}`),
			},
			wantFailed: []string{"m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"},
			wantOrders: []string{"o-1", "o-10"},
			wantPuts:   2,
		},
		{
			name:       "a table error fails the record",
			putErr:     errors.New("throttled"),
			batch:      []events.SQSMessage{sqsMessage("m1", `{"orderId":"o-1","customer":"c-1","amount":1250}`)},
			wantFailed: []string{"m1"},
			wantOrders: []string{},
			wantPuts:   1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orders := &fakeOrders{items: map[string]map[string]types.AttributeValue{}, err: tt.putErr}
			for _, id := range tt.preset {
				orders.items[id] = map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}}
			}
			cfg := config{ordersTable: "orders", idempotencyTable: "idem", ttl: time.Hour}
			a := newApp(cfg, orders, idempotent.NewMemoryStore(), quiet, idempotent.WithName("orders"))
			resp, err := a.handle(context.Background(), events.SQSEvent{Records: tt.batch})
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, f := range resp.BatchItemFailures {
				got = append(got, f.ItemIdentifier)
			}
			if !slices.Equal(got, tt.wantFailed) {
				t.Errorf("failures %q, want %q", got, tt.wantFailed)
			}
			ids := []string{}
			for id := range orders.items {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, tt.wantOrders) {
				t.Errorf("orders %q, want %q", ids, tt.wantOrders)
			}
			if orders.puts != tt.wantPuts {
				t.Errorf("%d PutItem calls, want %d", orders.puts, tt.wantPuts)
			}
		})
	}
}

func TestParseOrderErrorIsTyped(t *testing.T) {
	_, err := parseOrder(sqsMessage("m1", `nope`))
	var ie *invalidOrderError
	if !errors.As(err, &ie) || ie.messageID != "m1" {
		t.Errorf("error %v (%T), want an *invalidOrderError for m1", err, err)
	}
}

// TestOrderItemLayout pins the item attributevalue writes from orderItem's
// tags: the names and types the orders table has always held.
func TestOrderItemLayout(t *testing.T) {
	orders := &fakeOrders{items: map[string]map[string]types.AttributeValue{}}
	a := newApp(config{ordersTable: "orders"}, orders, idempotent.NewMemoryStore(), quiet, idempotent.WithName("orders"))
	a.now = func() time.Time { return time.Date(2026, 11, 29, 12, 0, 0, 5, time.FixedZone("CET", 3600)) }
	resp, err := a.handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{sqsMessage("m1", `{"orderId":"o-1","customer":"c-1","amount":1250}`)}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%+v %v", resp, err)
	}
	want := map[string]types.AttributeValue{
		"id":         &types.AttributeValueMemberS{Value: "o-1"},
		"customer":   &types.AttributeValueMemberS{Value: "c-1"},
		"amount":     &types.AttributeValueMemberN{Value: "1250"},
		"messageId":  &types.AttributeValueMemberS{Value: "m1"},
		"recordedAt": &types.AttributeValueMemberS{Value: "2026-11-29T11:00:00.000000005Z"},
	}
	if got := orders.items["o-1"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("item %#v\nwant %#v", got, want)
	}
}
