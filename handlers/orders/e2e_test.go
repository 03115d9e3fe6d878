package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

func TestMain(m *testing.M) { testdynamo.Main(m) }

// countingOrders counts the PutItem calls on the orders table and can make
// the ones for chosen orders fail.
type countingOrders struct {
	api  ordersAPI
	mu   sync.Mutex
	puts []string // order ids, in call order
	fail map[string]bool
}

func (c *countingOrders) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	var o orderItem
	if err := attributevalue.UnmarshalMap(in.Item, &o); err != nil {
		return nil, err
	}
	id := o.ID
	c.mu.Lock()
	c.puts = append(c.puts, id)
	fail := c.fail[id]
	c.mu.Unlock()
	if fail {
		return nil, errors.New("injected failure")
	}
	return c.api.PutItem(ctx, in, optFns...)
}

func (c *countingOrders) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.puts
	c.puts = nil
	slices.Sort(p)
	if p == nil {
		p = []string{}
	}
	return p
}

// env is one function deployed against the local server: fresh tables.
type env struct {
	client *dynamodb.Client
	cfg    config
	orders *countingOrders
	app    *app
}

func newEnv(t *testing.T) *env {
	t.Helper()
	client := testdynamo.Client(t)
	e := &env{client: client, orders: &countingOrders{api: client, fail: map[string]bool{}}}
	e.cfg = config{
		ordersTable:      createOrdersTable(t, client),
		idempotencyTable: testdynamo.NewTable(t, client),
		ttl:              time.Hour,
	}
	store := dynamostore.New(client, e.cfg.idempotencyTable)
	e.app = newApp(e.cfg, e.orders, store, quiet, idempotent.WithName("orders-e2e"))
	return e
}

func createOrdersTable(t *testing.T, client *dynamodb.Client) string {
	t.Helper()
	table := "orders-" + rand.Text()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("create orders table: %v", err)
	}
	if err := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, time.Second
	}).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, time.Minute); err != nil {
		t.Fatalf("orders table: %v", err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	return table
}

func (e *env) scanOrders(t *testing.T) []orderItem {
	t.Helper()
	out, err := e.client.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(e.cfg.ordersTable), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var items []orderItem
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &items); err != nil {
		t.Fatalf("orders table: %v", err)
	}
	for i, it := range items {
		if _, err := time.Parse(time.RFC3339Nano, it.RecordedAt); err != nil {
			t.Errorf("order %s: recordedAt: %v", it.ID, err)
		}
		items[i].RecordedAt = "" // the wall clock's; compared as present above
	}
	slices.SortFunc(items, func(a, b orderItem) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return items
}

// invoke calls the handler as Lambda does: with a deadline.
func (e *env) invoke(t *testing.T, ev events.SQSEvent) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := e.app.handle(ctx, ev)
	if err != nil {
		t.Fatalf("handler error: %v", err)
	}
	got := []string{}
	for _, f := range resp.BatchItemFailures {
		got = append(got, f.ItemIdentifier)
	}
	return got
}

func loadEvent(t *testing.T, name string) events.SQSEvent {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

// wantOrders is what the fixtures' bodies say.
func wantOrders(t *testing.T, ev events.SQSEvent) []orderItem {
	t.Helper()
	var want []orderItem
	for _, m := range ev.Records {
		o, err := parseOrder(m)
		if err != nil {
			t.Fatalf("fixture %s: %v", m.MessageId, err)
		}
		want = append(want, orderItem{ID: o.OrderID, Customer: o.Customer, Amount: *o.Amount, MessageID: m.MessageId})
	}
	slices.SortFunc(want, func(a, b orderItem) int {
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return want
}

func TestEndToEndRecordsEachOrderOnce(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
	}{
		{name: "standard queue", fixture: "sqs-orders.json"},
		{name: "FIFO queue", fixture: "sqs-orders-fifo.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ev := loadEvent(t, tt.fixture)
			want := wantOrders(t, ev)
			ids := []string{}
			for _, o := range want {
				ids = append(ids, o.ID)
			}

			if got := e.invoke(t, ev); len(got) != 0 {
				t.Fatalf("first invocation: failures %q", got)
			}
			if got := e.orders.take(); !slices.Equal(got, ids) {
				t.Errorf("first invocation wrote %q, want %q", got, ids)
			}
			if got := e.invoke(t, ev); len(got) != 0 {
				t.Fatalf("second invocation: failures %q", got)
			}
			if got := e.orders.take(); len(got) != 0 {
				t.Errorf("second invocation wrote %q, want nothing (every record replays)", got)
			}
			if got := e.scanOrders(t); !slices.Equal(got, want) {
				t.Errorf("orders table %+v, want %+v", got, want)
			}
		})
	}
}

func TestEndToEndDuplicatesAndMalformed(t *testing.T) {
	e := newEnv(t)
	ev := loadEvent(t, "sqs-orders.json")
	want := wantOrders(t, ev)
	dup := ev.Records[0]
	dup.MessageId = "producer-duplicate-of-first"
	bad := ev.Records[1]
	bad.MessageId = "malformed"
	bad.Body = `{"orderId":"o-bad","customer":"c-9","amount":"lots"}`
	ev.Records = append(ev.Records, dup, bad)

	for i := range 2 {
		if got := e.invoke(t, ev); !slices.Equal(got, []string{"malformed"}) {
			t.Fatalf("invocation %d: failures %q, want [malformed]", i+1, got)
		}
	}
	// Invocation 1 wrote the three orders; the duplicate replayed; the
	// malformed record never reached the table. Invocation 2 wrote nothing.
	if got, wantPuts := e.orders.take(), []string{"o-1", "o-2", "o-3"}; !slices.Equal(got, wantPuts) {
		t.Errorf("PutItem calls %q, want %q", got, wantPuts)
	}
	if got := e.scanOrders(t); !slices.Equal(got, want) {
		t.Errorf("orders table %+v, want %+v", got, want)
	}
}

func TestEndToEndFIFOGroupStopAndRedelivery(t *testing.T) {
	e := newEnv(t)
	ev := loadEvent(t, "sqs-orders-fifo.json")
	// Group c-1 holds o-1 then o-3; group c-2 holds o-2 then o-4.
	e.orders.fail["o-1"] = true
	failedFirst := []string{ev.Records[0].MessageId, ev.Records[2].MessageId}
	if got := e.invoke(t, ev); !slices.Equal(got, failedFirst) {
		t.Fatalf("first invocation: failures %q, want %q (o-1 and, unrun, o-3)", got, failedFirst)
	}
	if got, want := e.orders.take(), []string{"o-1", "o-2", "o-4"}; !slices.Equal(got, want) {
		t.Errorf("first invocation wrote %q, want %q", got, want)
	}

	// The table recovers; SQS redelivers the failed records of group c-1.
	delete(e.orders.fail, "o-1")
	redelivered := events.SQSEvent{Records: []events.SQSMessage{ev.Records[0], ev.Records[2]}}
	if got := e.invoke(t, redelivered); len(got) != 0 {
		t.Fatalf("redelivery: failures %q", got)
	}
	if got, want := e.orders.take(), []string{"o-1", "o-3"}; !slices.Equal(got, want) {
		t.Errorf("redelivery wrote %q, want %q", got, want)
	}
	// The whole batch once more: nothing runs.
	if got := e.invoke(t, ev); len(got) != 0 {
		t.Fatalf("third invocation: failures %q", got)
	}
	if got := e.orders.take(); len(got) != 0 {
		t.Errorf("third invocation wrote %q, want nothing", got)
	}
	if got := e.scanOrders(t); !slices.Equal(got, wantOrders(t, ev)) {
		t.Errorf("orders table %+v, want %+v", got, wantOrders(t, ev))
	}
}

// TestEndToEndOrderAlreadyRecorded: the idempotency record is gone (TTL
// passed, or a run crashed after its write) but the order is in the table:
// the conditional write keeps the first version and the record succeeds.
func TestEndToEndOrderAlreadyRecorded(t *testing.T) {
	e := newEnv(t)
	ev := loadEvent(t, "sqs-orders.json")
	first := events.SQSEvent{Records: ev.Records[:1]}
	if got := e.invoke(t, first); len(got) != 0 {
		t.Fatalf("failures %q", got)
	}
	// A new idempotency table: every record is new to the library.
	e.app = newApp(config{ordersTable: e.cfg.ordersTable, ttl: time.Hour}, e.orders,
		dynamostore.New(e.client, testdynamo.NewTable(t, e.client)), quiet, idempotent.WithName("orders-e2e"))
	again := ev.Records[0]
	again.MessageId = "sent-again-after-ttl"
	if got := e.invoke(t, events.SQSEvent{Records: []events.SQSMessage{again}}); len(got) != 0 {
		t.Fatalf("failures %q", got)
	}
	got := e.scanOrders(t)
	if len(got) != 1 || got[0].MessageID != ev.Records[0].MessageId {
		t.Errorf("orders table %+v, want o-1 once, as first recorded", got)
	}
}
