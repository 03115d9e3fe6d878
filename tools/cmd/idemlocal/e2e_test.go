package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// lockedBuffer collects the functions' logs from several processes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// e2eStack is the whole local stack as make run starts it (template, host
// builds, each function under aws-lambda-rie, HTTP API on a free port, DynamoDB from
// AWS_ENDPOINT_URL_DYNAMODB or a dynalite of its own), with the counting
// proxy in front of DynamoDB and tables of its own.
type e2eStack struct {
	*stack
	front  *dynamoFront
	prefix string
	db     *dynamodb.Client
}

func startE2EStack(t *testing.T) *e2eStack {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the functions and starts the local stack")
	}
	tpl := repoTemplate(t)
	logs := &lockedBuffer{}
	e := &e2eStack{prefix: "e2e-" + strings.ToLower(rand.Text()[:8]) + "-"}
	o := options{
		template:    "../../../template.yaml",
		buildDir:    t.TempDir(),
		dynalite:    "dynalite",
		region:      "us-east-1",
		params:      paramFlag{},
		port:        "0",
		instances:   2,
		tablePrefix: e.prefix,
		logs:        logs,
		dynamoFront: func(endpoint string) (string, error) {
			f, err := startDynamoFront(endpoint)
			if err != nil {
				return "", err
			}
			e.front = f
			return f.url, nil
		},
	}
	s, err := startStack(context.Background(), tpl, o, slog.New(slog.NewTextHandler(logs, nil)))
	if e.front != nil {
		t.Cleanup(e.front.close)
	}
	if err != nil {
		t.Fatalf("start the local stack: %v\n%s", err, logs)
	}
	t.Cleanup(func() {
		if err := s.close(); err != nil {
			t.Errorf("close the stack: %v", err)
		}
		if t.Failed() {
			t.Logf("the stack's logs:\n%s", logs)
		}
	})
	e.stack = s
	e.db = newDynamoClient(s.env.endpoint, o.region)
	return e
}

type httpAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (e *e2eStack) post(t *testing.T, path, key, body string) httpAnswer {
	t.Helper()
	req, err := http.NewRequest("POST", e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	return e.send(t, req)
}

func (e *e2eStack) send(t *testing.T, req *http.Request) httpAnswer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return httpAnswer{resp.StatusCode, resp.Header, body}
}

// TestLocalStackEndToEnd drives the local stack over real HTTP: the payments
// API through the HTTP API emulation and the orders consumer through the
// Invoke API and the invoke subcommand, asserting the contract's answers and
// what the functions wrote to DynamoDB.
func TestLocalStackEndToEnd(t *testing.T) {
	e := startE2EStack(t)
	paymentsTable, ordersTable := e.prefix+"PaymentsTable", e.prefix+"OrdersTable"
	const body = `{"amount":1250,"currency":"EUR","customer":"c-1"}`
	key := "e2e-" + rand.Text()

	var first httpAnswer
	var created struct {
		ID     string
		Amount int64
	}
	t.Run("first POST creates", func(t *testing.T) {
		before := e.front.snapshot()
		first = e.post(t, "/payments", key, body)
		if first.status != http.StatusCreated || first.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("got %d %v %s, want 201 without Idempotent-Replayed", first.status, first.header, first.body)
		}
		if err := json.Unmarshal(first.body, &created); err != nil || created.ID == "" || created.Amount != 1250 {
			t.Fatalf("body %s: %v", first.body, err)
		}
		if got := writes(e.front.since(before), paymentsTable); got != 1 {
			t.Errorf("%d writes to the payments table, want 1", got)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	t.Run("second POST replays", func(t *testing.T) {
		before := e.front.snapshot()
		got := e.post(t, "/payments", key, body)
		if got.status != first.status || !bytes.Equal(got.body, first.body) || got.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("got %d %v %s, want %d %s with Idempotent-Replayed: true", got.status, got.header, got.body, first.status, first.body)
		}
		if got.header.Get("Location") != first.header.Get("Location") {
			t.Errorf("Location %q, want %q", got.header.Get("Location"), first.header.Get("Location"))
		}
		if n := writes(e.front.since(before), paymentsTable); n != 0 {
			t.Errorf("the handler ran again: %d writes to the payments table", n)
		}
	})
	t.Run("same key other body is 422", func(t *testing.T) {
		got := e.post(t, "/payments", key, `{"amount":9999,"currency":"EUR","customer":"c-1"}`)
		var problem struct{ Status int }
		if got.status != http.StatusUnprocessableEntity || !strings.HasPrefix(got.header.Get("Content-Type"), "application/problem+json") ||
			json.Unmarshal(got.body, &problem) != nil || problem.Status != 422 {
			t.Errorf("got %d %v %s, want a 422 problem+json", got.status, got.header, got.body)
		}
	})
	t.Run("GET reads the payment", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.url+"/payments/"+created.ID, nil)
		got := e.send(t, req)
		if got.status != http.StatusOK || !bytes.Equal(got.body, first.body) {
			t.Errorf("got %d %s, want 200 %s", got.status, got.body, first.body)
		}
	})
	t.Run("duplicate while the first runs is 409", func(t *testing.T) {
		d := &demoRun{out: io.Discard, base: e.url, http: http.DefaultClient, front: e.front, prefix: e.prefix, run: strings.ToLower(rand.Text()[:6])}
		if err := d.concurrentHeld(context.Background()); err != nil {
			t.Error(err)
		}
	})

	event, err := os.ReadFile("../../../events/sqs-orders.json")
	if err != nil {
		t.Fatal(err)
	}
	var batch events.SQSEvent
	if err := json.Unmarshal(event, &batch); err != nil {
		t.Fatal(err)
	}
	var recorded map[string]string // order id -> recordedAt
	t.Run("SQS batch through the Invoke API, twice", func(t *testing.T) {
		for delivery, wantPuts := range []int{len(batch.Records), 0} {
			before := e.front.snapshot()
			req, _ := http.NewRequest("POST", e.url+invokePrefix+"OrdersFunction/invocations", bytes.NewReader(event))
			got := e.send(t, req)
			if got.status != http.StatusOK || got.header.Get("X-Amz-Function-Error") != "" {
				t.Fatalf("delivery %d: %d %v %s", delivery+1, got.status, got.header, got.body)
			}
			var res events.SQSEventResponse
			if err := json.Unmarshal(got.body, &res); err != nil || len(res.BatchItemFailures) != 0 {
				t.Errorf("delivery %d: %s (%v), want no batch item failures", delivery+1, got.body, err)
			}
			if n := writes(e.front.since(before), ordersTable); n != wantPuts {
				t.Errorf("delivery %d: %d writes to the orders table, want %d", delivery+1, n, wantPuts)
			}
		}
		recorded = scanOrders(t, e.db, ordersTable)
		if len(recorded) != len(batch.Records) {
			t.Errorf("orders table %v, want %d orders", recorded, len(batch.Records))
		}
	})
	t.Run("SQS batch through the invoke subcommand", func(t *testing.T) {
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", e.env.endpoint)
		var out bytes.Buffer
		logs := &lockedBuffer{}
		err := run(context.Background(), []string{
			"invoke", "-template", "../../../template.yaml", "-build-dir", t.TempDir(), "-table-prefix", e.prefix,
			"-fn", "OrdersFunction", "-event", "../../../events/sqs-orders.json",
		}, &out, slog.New(slog.NewTextHandler(logs, nil)))
		if err != nil {
			t.Fatalf("invoke: %v\n%s", err, logs)
		}
		var res events.SQSEventResponse
		if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res.BatchItemFailures) != 0 {
			t.Errorf("printed %s (%v), want no batch item failures", out.Bytes(), err)
		}
		if got := scanOrders(t, e.db, ordersTable); !maps.Equal(got, recorded) {
			t.Errorf("orders table %v after the redelivery, want it unchanged: %v", got, recorded)
		}
	})
	t.Run("SQS batch through make invoke URL= (this stack)", func(t *testing.T) {
		before := e.front.snapshot()
		var out bytes.Buffer
		err := run(context.Background(), []string{
			"invoke", "-template", "../../../template.yaml",
			"FN=OrdersFunction", "EVENT=../../../events/sqs-orders.json", "-url", e.url, // make invoke's order
		}, &out, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("invoke -url: %v", err)
		}
		var res events.SQSEventResponse
		if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res.BatchItemFailures) != 0 {
			t.Errorf("printed %s (%v), want no batch item failures", out.Bytes(), err)
		}
		if got := e.front.since(before); len(got) == 0 {
			t.Error("the stack's functions made no DynamoDB call: the invocation did not reach this stack")
		}
		if n := writes(e.front.since(before), ordersTable); n != 0 {
			t.Errorf("%d writes to the orders table on a redelivery, want 0", n)
		}
	})
	// make demo's steps, on this stack (fresh keys and order ids), so the
	// demo keeps working: every step's expectation must hold.
	t.Run("demo", func(t *testing.T) {
		var out bytes.Buffer
		d := &demoRun{
			out: &out, base: e.url, http: http.DefaultClient, front: e.front, prefix: e.prefix, db: e.db,
			root: filepath.Join("..", "..", ".."), run: strings.ToLower(rand.Text()[:6]), suffixIDs: true,
		}
		if err := d.steps(context.Background()); err != nil {
			t.Errorf("%v\n%s", err, out.String())
		}
	})
}

// scanOrders returns the orders table as order id -> recordedAt.
func scanOrders(t *testing.T, db *dynamodb.Client, table string) map[string]string {
	t.Helper()
	out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, it := range out.Items {
		id, _ := it["id"].(*types.AttributeValueMemberS)
		at, _ := it["recordedAt"].(*types.AttributeValueMemberS)
		if id == nil || at == nil {
			t.Fatalf("malformed order item %v", it)
		}
		m[id.Value] = at.Value
	}
	return m
}
