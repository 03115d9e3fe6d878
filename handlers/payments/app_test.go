package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

func TestMain(m *testing.M) { testdynamo.Main(m) }

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// crashStore makes the next Complete fail, as if the function died after
// its handler wrote the payment and before the record completed.
type crashStore struct {
	idempotent.Store
	crash atomic.Bool
}

func (s *crashStore) Complete(ctx context.Context, rec idempotent.Record) error {
	if s.crash.CompareAndSwap(true, false) {
		return errors.New("function crashed")
	}
	return s.Store.Complete(ctx, rec)
}

type testEnv struct {
	handle   func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
	payments *testdynamo.Counter // calls on the payments table
	admin    *dynamodb.Client
	table    string
	clock    *clock
	store    *crashStore
}

// newEnv builds the function over local servers; opts are apigw.Option
// and idempotent.Option values, for the adapter and the guard.
func newEnv(t *testing.T, opts ...any) *testEnv {
	t.Helper()
	var apiOpts []apigw.Option
	core := []idempotent.Option{idempotent.WithName("payments-test")}
	for _, o := range opts {
		switch o := o.(type) {
		case apigw.Option:
			apiOpts = append(apiOpts, o)
		case idempotent.Option:
			core = append(core, o)
		default:
			t.Fatalf("newEnv: option %T", o)
		}
	}
	admin := testdynamo.Client(t)
	paymentsClient, counter := testdynamo.CountingClient(t)
	// The idempotency table's layout (hash key id, S) is also the payments
	// table's.
	paymentsTable := testdynamo.NewTable(t, admin)
	idemTable := testdynamo.NewTable(t, admin)
	clk := &clock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	store := &crashStore{Store: dynamostore.New(testdynamo.Client(t), idemTable)}
	logger := slog.New(slog.DiscardHandler)
	return &testEnv{
		handle: newApp(appConfig{
			DB:            paymentsClient,
			PaymentsTable: paymentsTable,
			Store:         store,
			Options:       apiOpts,
			Core:          append(core, idempotent.WithClock(clk.Now)),
			Now:           clk.Now,
			Logger:        logger,
		}),
		payments: counter, admin: admin, table: paymentsTable, clock: clk, store: store,
	}
}

func sample(t *testing.T) events.APIGatewayV2HTTPRequest {
	t.Helper()
	b, err := os.ReadFile("../../events/apigw-v2-post-payment.json")
	if err != nil {
		t.Fatal(err)
	}
	var e events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func post(t *testing.T, key, body string) events.APIGatewayV2HTTPRequest {
	e := sample(t)
	e.Headers = map[string]string{"content-type": "application/json"}
	if key != "" {
		e.Headers["idempotency-key"] = key
	}
	e.Body = body
	return e
}

func get(t *testing.T, id string) events.APIGatewayV2HTTPRequest {
	e := sample(t)
	e.Headers = map[string]string{}
	e.Body = ""
	e.RouteKey = "GET /payments/{id}"
	e.RawPath = "/payments/" + id
	e.RequestContext.HTTP.Method = "GET"
	e.RequestContext.HTTP.Path = e.RawPath
	e.PathParameters = map[string]string{"id": id}
	return e
}

func (e *testEnv) do(t *testing.T, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	r, err := e.handle(context.Background(), req)
	if err != nil {
		t.Fatalf("handler error: %v", err)
	}
	return r
}

func (e *testEnv) count(t *testing.T) int {
	t.Helper()
	out, err := e.admin.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(e.table)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Items)
}

// onlyPutAndGet checks the function stays within its IAM grant on the
// payments table.
func (e *testEnv) onlyPutAndGet(t *testing.T) {
	t.Helper()
	for op := range e.payments.Counts() {
		if op != "PutItem" && op != "GetItem" {
			t.Fatalf("payments table called with %s; IAM grants PutItem and GetItem only", op)
		}
	}
}

func decode(t *testing.T, r events.APIGatewayV2HTTPResponse) payment {
	t.Helper()
	var p payment
	if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	return p
}

const body = `{"amount":1250,"currency":"EUR","customer":"c-1"}`

func TestCreateReplayAndGet(t *testing.T) {
	e := newEnv(t)
	first := e.do(t, post(t, "pay-key-1", body))
	if first.StatusCode != 201 || first.Headers["Content-Type"] != "application/json" {
		t.Fatalf("%+v", first)
	}
	p := decode(t, first)
	if !idRE.MatchString(p.ID) || p.Amount != 1250 || p.Currency != "EUR" || p.Customer != "c-1" || p.CreatedAt != "2026-11-29T12:00:00Z" {
		t.Fatalf("payment %+v", p)
	}
	if first.Headers["Location"] != "/payments/"+p.ID {
		t.Fatalf("Location %q", first.Headers["Location"])
	}
	if e.payments.Count("PutItem") != 1 {
		t.Fatalf("PutItem calls %d", e.payments.Count("PutItem"))
	}

	// Same key, same payment written in another order: a replay, no write.
	second := e.do(t, post(t, "pay-key-1", `{ "customer": "c-1", "currency": "EUR", "amount": 1250 }`))
	if second.Headers[apigw.HeaderReplayed] != "true" || second.Body != first.Body || second.StatusCode != 201 || second.Headers["Location"] != first.Headers["Location"] {
		t.Fatalf("replay %+v", second)
	}
	if e.payments.Count("PutItem") != 1 || e.count(t) != 1 {
		t.Fatalf("PutItem %d, items %d", e.payments.Count("PutItem"), e.count(t))
	}

	// Same key, another amount: 422.
	other := e.do(t, post(t, "pay-key-1", `{"amount":999,"currency":"EUR","customer":"c-1"}`))
	if other.StatusCode != 422 || other.Headers["Content-Type"] != apigw.ContentTypeProblem {
		t.Fatalf("%+v", other)
	}

	got := e.do(t, get(t, p.ID))
	if got.StatusCode != 200 || decode(t, got) != p {
		t.Fatalf("GET %+v", got)
	}
	// GET is not guarded: no replay header even with a key.
	g := get(t, p.ID)
	g.Headers["idempotency-key"] = "pay-key-1"
	if r := e.do(t, g); r.StatusCode != 200 || r.Headers[apigw.HeaderReplayed] != "" {
		t.Fatalf("GET with key %+v", r)
	}
	e.onlyPutAndGet(t)
}

func TestGetMissing(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, id string
		status   int
	}{
		{name: "unknown id", id: "pay_00000000000000000000000000000000", status: 404},
		{name: "malformed id", id: "../../etc", status: 404},
		{name: "no id: GET /payments is not a route", id: "", status: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, get(t, tt.id))
			if r.StatusCode != tt.status || r.Headers["Content-Type"] != apigw.ContentTypeProblem {
				t.Fatalf("%+v", r)
			}
		})
	}
	e.onlyPutAndGet(t)
}

func TestValidation(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, body, pointer string
	}{
		{name: "not JSON", body: `amount=5`, pointer: ""},
		{name: "array", body: `[1]`, pointer: ""},
		{name: "null", body: `null`, pointer: ""},
		{name: "missing amount", body: `{"currency":"EUR"}`, pointer: "/amount"},
		{name: "zero amount", body: `{"amount":0,"currency":"EUR"}`, pointer: "/amount"},
		{name: "negative amount", body: `{"amount":-5,"currency":"EUR"}`, pointer: "/amount"},
		{name: "fractional amount", body: `{"amount":1.5,"currency":"EUR"}`, pointer: "/amount"},
		{name: "exponent amount", body: `{"amount":1e3,"currency":"EUR"}`, pointer: "/amount"},
		{name: "string amount", body: `{"amount":"10","currency":"EUR"}`, pointer: "/amount"},
		{name: "huge amount", body: `{"amount":99999999999999999999,"currency":"EUR"}`, pointer: "/amount"},
		{name: "missing currency", body: `{"amount":5}`, pointer: "/currency"},
		{name: "four-letter currency", body: `{"amount":5,"currency":"EURO"}`, pointer: "/currency"},
		{name: "two-letter currency", body: `{"amount":5,"currency":"eu"}`, pointer: "/currency"},
		{name: "currency with a digit", body: `{"amount":5,"currency":"E1R"}`, pointer: "/currency"},
		{name: "non-ASCII currency", body: `{"amount":5,"currency":"ÉUR"}`, pointer: "/currency"},
		{name: "empty currency", body: `{"amount":5,"currency":""}`, pointer: "/currency"},
		{name: "numeric currency", body: `{"amount":5,"currency":978}`, pointer: "/currency"},
		{name: "customer not a string", body: `{"amount":5,"currency":"EUR","customer":5}`, pointer: "/customer"},
		{name: "empty customer", body: `{"amount":5,"currency":"EUR","customer":""}`, pointer: "/customer"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "validation-" + strings.Repeat("x", i)
			r := e.do(t, post(t, key, tt.body))
			if r.StatusCode != 400 || r.Headers["Content-Type"] != apigw.ContentTypeProblem {
				t.Fatalf("%+v", r)
			}
			var p struct {
				Type, Title, Detail string
				Status              int
				Errors              []fieldError
			}
			if err := json.Unmarshal([]byte(r.Body), &p); err != nil || p.Status != 400 || p.Type == "" || p.Title == "" || p.Detail == "" || len(p.Errors) == 0 || p.Errors[0].Pointer != tt.pointer {
				t.Fatalf("problem %s (%v)", r.Body, err)
			}
			// A 400 is stored: the same request replays it.
			if again := e.do(t, post(t, key, tt.body)); again.Headers[apigw.HeaderReplayed] != "true" || again.Body != r.Body {
				t.Fatalf("400 not replayed: %+v", again)
			}
		})
	}
	if e.payments.Total() != 0 {
		t.Fatalf("invalid payments reached the table: %v", e.payments.Counts())
	}
}

func TestKeylessPostsCreateDistinctPayments(t *testing.T) {
	e := newEnv(t)
	a, b := e.do(t, post(t, "", body)), e.do(t, post(t, "", body))
	if a.StatusCode != 201 || b.StatusCode != 201 || decode(t, a).ID == decode(t, b).ID || e.count(t) != 2 {
		t.Fatalf("%+v %+v", a, b)
	}
}

func TestRequiredKey(t *testing.T) {
	e := newEnv(t, apigw.WithRequireKey())
	if r := e.do(t, post(t, "", body)); r.StatusCode != 400 || e.payments.Total() != 0 {
		t.Fatalf("%+v", r)
	}
}

// TestRerunAfterCrash: the function dies after writing the payment and
// before completing the idempotency record. Once the lease ends, the retry
// runs the handler again; the conditional put finds the payment and the
// answer is that payment — one payment, same id and time.
func TestRerunAfterCrash(t *testing.T) {
	e := newEnv(t, idempotent.WithLease(5*time.Second))
	e.store.crash.Store(true)
	first := e.do(t, post(t, "crash-key", body))
	if first.StatusCode != 503 {
		t.Fatalf("crashed run: %+v", first)
	}
	// While the lease runs, a retry is told to come back in a second (contract §4: short, capped by the lease end).
	if r := e.do(t, post(t, "crash-key", body)); r.StatusCode != 409 || r.Headers["Retry-After"] != "1" {
		t.Fatalf("during the lease: %+v", r)
	}
	e.clock.Advance(6 * time.Second)
	retry := e.do(t, post(t, "crash-key", body))
	if retry.StatusCode != 201 || retry.Headers[apigw.HeaderReplayed] != "" {
		t.Fatalf("retry: %+v", retry)
	}
	p := decode(t, retry)
	if p.CreatedAt != "2026-11-29T12:00:00Z" || e.count(t) != 1 {
		t.Fatalf("payment %+v, items %d", p, e.count(t))
	}
	if e.payments.Count("PutItem") != 2 {
		t.Fatalf("PutItem calls %d, want 2", e.payments.Count("PutItem"))
	}
	// Now completed: replayed.
	if r := e.do(t, post(t, "crash-key", body)); r.Headers[apigw.HeaderReplayed] != "true" || r.Body != retry.Body {
		t.Fatalf("after completion: %+v", r)
	}
	e.onlyPutAndGet(t)
}

func TestReadEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		ttl     time.Duration
		level   slog.Level
	}{
		{name: "minimal", env: map[string]string{"PAYMENTS_TABLE": "p", "IDEMPOTENCY_TABLE": "i"}, level: slog.LevelInfo},
		{name: "all", env: map[string]string{"PAYMENTS_TABLE": "p", "IDEMPOTENCY_TABLE": "i", "IDEMPOTENCY_TTL": "86400", "LOG_LEVEL": "debug"}, ttl: 24 * time.Hour, level: slog.LevelDebug},
		{name: "missing tables", env: map[string]string{}, wantErr: "PAYMENTS_TABLE"},
		{name: "bad TTL", env: map[string]string{"PAYMENTS_TABLE": "p", "IDEMPOTENCY_TABLE": "i", "IDEMPOTENCY_TTL": "1h"}, wantErr: "IDEMPOTENCY_TTL"},
		{name: "zero TTL", env: map[string]string{"PAYMENTS_TABLE": "p", "IDEMPOTENCY_TABLE": "i", "IDEMPOTENCY_TTL": "0"}, wantErr: "IDEMPOTENCY_TTL"},
		{name: "bad level", env: map[string]string{"PAYMENTS_TABLE": "p", "IDEMPOTENCY_TABLE": "i", "LOG_LEVEL": "LOUD"}, wantErr: "LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := readEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || e.ttl != tt.ttl || e.level != tt.level {
				t.Fatalf("%+v %v", e, err)
			}
		})
	}
}

// TestSetup builds the real handler from the environment against the local
// server and serves one request through it.
func TestSetup(t *testing.T) {
	admin := testdynamo.Client(t)
	envs := map[string]string{
		"PAYMENTS_TABLE":            testdynamo.NewTable(t, admin),
		"IDEMPOTENCY_TABLE":         testdynamo.NewTable(t, admin),
		"IDEMPOTENCY_TTL":           "60",
		"LOG_LEVEL":                 "INFO",
		"AWS_ENDPOINT_URL_DYNAMODB": testdynamo.Endpoint(t),
		"AWS_REGION":                testdynamo.Region,
		"AWS_ACCESS_KEY_ID":         "test",
		"AWS_SECRET_ACCESS_KEY":     "test",
	}
	for k, v := range envs {
		t.Setenv(k, v)
	}
	var logs bytes.Buffer
	h, err := setup(context.Background(), os.Getenv, &logs)
	defer slog.SetDefault(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		r, err := h(context.Background(), post(t, "setup-key", body))
		if err != nil || r.StatusCode != 201 || (i == 1) != (r.Headers[apigw.HeaderReplayed] == "true") {
			t.Fatalf("call %d: %+v %v", i, r, err)
		}
	}
}

// TestCurrencyAnyCase: the currency is accepted in any case (Stripe takes
// "usd") and stored and answered upper-case. Idempotency compares the body
// as sent: the same key with "USD" after "usd" is another request (422),
// while the same body again is a replay.
func TestCurrencyAnyCase(t *testing.T) {
	e := newEnv(t)
	first := e.do(t, post(t, "usd-key", `{"amount":500,"currency":"usd"}`))
	if first.StatusCode != 201 {
		t.Fatalf("lower-case currency: %+v", first)
	}
	p := decode(t, first)
	if p.Currency != "USD" {
		t.Fatalf("answered currency %q, want USD", p.Currency)
	}
	if got := decode(t, e.do(t, get(t, p.ID))); got != p {
		t.Fatalf("GET %+v, want %+v", got, p)
	}
	item := e.item(t, p.ID)
	if c, ok := item["currency"].(*types.AttributeValueMemberS); !ok || c.Value != "USD" {
		t.Fatalf("stored currency %#v, want S USD", item["currency"])
	}

	if again := e.do(t, post(t, "usd-key", `{"currency":"usd","amount":500}`)); again.Headers[apigw.HeaderReplayed] != "true" || again.Body != first.Body {
		t.Fatalf("same body again: %+v", again)
	}
	upper := e.do(t, post(t, "usd-key", `{"amount":500,"currency":"USD"}`))
	var prob struct{ Type string }
	if err := json.Unmarshal([]byte(upper.Body), &prob); err != nil || upper.StatusCode != 422 || !strings.HasSuffix(prob.Type, "payload-mismatch") {
		t.Fatalf("same key, USD after usd: %+v (%v)", upper, err)
	}

	for i, c := range []string{"USD", "Usd", "uSd"} {
		r := e.do(t, post(t, "case-"+strconv.Itoa(i), `{"amount":500,"currency":"`+c+`"}`))
		if r.StatusCode != 201 || decode(t, r).Currency != "USD" {
			t.Fatalf("%s: %+v", c, r)
		}
	}
	if e.payments.Count("PutItem") != 4 || e.count(t) != 4 {
		t.Fatalf("PutItem %d, items %d; want 4 and 4", e.payments.Count("PutItem"), e.count(t))
	}
	e.onlyPutAndGet(t)
}

// item reads one payment item as stored.
func (e *testEnv) item(t *testing.T, id string) map[string]types.AttributeValue {
	t.Helper()
	out, err := e.admin.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(e.table), Key: paymentKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil || out.Item == nil {
		t.Fatalf("item %s: %v %v", id, out, err)
	}
	return out.Item
}

// TestPaymentItemLayout pins the stored layout that attributevalue writes
// from the struct tags: the attribute names and types the table has always
// held (a customer-less payment has no customer attribute).
func TestPaymentItemLayout(t *testing.T) {
	e := newEnv(t)
	p := decode(t, e.do(t, post(t, "layout-1", `{"amount":1250,"currency":"eur","customer":"c-1"}`)))
	want := map[string]types.AttributeValue{
		"id":         &types.AttributeValueMemberS{Value: p.ID},
		"amount":     &types.AttributeValueMemberN{Value: "1250"},
		"currency":   &types.AttributeValueMemberS{Value: "EUR"},
		"customer":   &types.AttributeValueMemberS{Value: "c-1"},
		"created_at": &types.AttributeValueMemberS{Value: "2026-11-29T12:00:00Z"},
	}
	if got := e.item(t, p.ID); !reflect.DeepEqual(got, want) {
		t.Fatalf("item %#v\nwant %#v", got, want)
	}
	q := decode(t, e.do(t, post(t, "layout-2", `{"amount":7,"currency":"JPY"}`)))
	if _, ok := e.item(t, q.ID)["customer"]; ok {
		t.Fatal("a payment without customer stored a customer attribute")
	}
}

// TestUndecodablePayment: an item the function cannot read as a payment is
// a 500, never a half-filled payment.
func TestUndecodablePayment(t *testing.T) {
	e := newEnv(t)
	good := func() map[string]types.AttributeValue {
		return map[string]types.AttributeValue{
			"id":         &types.AttributeValueMemberS{Value: "pay_0123456789abcdef0123456789abcdef"},
			"amount":     &types.AttributeValueMemberN{Value: "1250"},
			"currency":   &types.AttributeValueMemberS{Value: "EUR"},
			"created_at": &types.AttributeValueMemberS{Value: "2026-11-29T12:00:00Z"},
		}
	}
	if p, err := decodePayment(good()); err != nil || p.Amount != 1250 || p.Currency != "EUR" {
		t.Fatalf("good item: %+v %v", p, err)
	}
	tests := []struct {
		name   string
		mutate func(map[string]types.AttributeValue)
	}{
		{"amount missing", func(m map[string]types.AttributeValue) { delete(m, "amount") }},
		{"amount a string", func(m map[string]types.AttributeValue) { m["amount"] = &types.AttributeValueMemberS{Value: "1250"} }},
		{"amount fractional", func(m map[string]types.AttributeValue) { m["amount"] = &types.AttributeValueMemberN{Value: "12.5"} }},
		{"currency missing", func(m map[string]types.AttributeValue) { delete(m, "currency") }},
		{"currency lower-case", func(m map[string]types.AttributeValue) { m["currency"] = &types.AttributeValueMemberS{Value: "eur"} }},
		{"currency a number", func(m map[string]types.AttributeValue) { m["currency"] = &types.AttributeValueMemberN{Value: "978"} }},
		{"created_at missing", func(m map[string]types.AttributeValue) { delete(m, "created_at") }},
		{"customer a list", func(m map[string]types.AttributeValue) { m["customer"] = &types.AttributeValueMemberL{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			item := good()
			tt.mutate(item)
			if p, err := decodePayment(item); err == nil {
				t.Fatalf("decoded %+v", p)
			}
			if _, err := e.admin.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
				t.Fatal(err)
			}
			if r := e.do(t, get(t, "pay_0123456789abcdef0123456789abcdef")); r.StatusCode != 500 || r.Headers["Content-Type"] != apigw.ContentTypeProblem {
				t.Fatalf("GET %+v", r)
			}
		})
	}
}

// TestCurrencyCaseAfterRecordExpired: once the idempotency record has
// expired, the same key runs the handler again; the payment it derives from
// the key exists, and "USD" now matches the "usd" it was created with, so the
// answer is that payment, not a payment conflict.
func TestCurrencyCaseAfterRecordExpired(t *testing.T) {
	e := newEnv(t, idempotent.WithTTL(time.Hour))
	first := e.do(t, post(t, "expired-key", `{"amount":500,"currency":"usd","customer":"c-9"}`))
	if first.StatusCode != 201 {
		t.Fatalf("%+v", first)
	}
	e.clock.Advance(2 * time.Hour)
	again := e.do(t, post(t, "expired-key", `{"amount":500,"currency":"USD","customer":"c-9"}`))
	if again.StatusCode != 201 || again.Headers[apigw.HeaderReplayed] != "" || decode(t, again) != decode(t, first) {
		t.Fatalf("after expiry: %+v, want the first payment %s", again, first.Body)
	}
	if e.payments.Count("PutItem") != 2 || e.count(t) != 1 {
		t.Fatalf("PutItem %d, items %d; want 2 and 1", e.payments.Count("PutItem"), e.count(t))
	}
}
