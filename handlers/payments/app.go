package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
)

// paymentsAPI is every call the function makes on the payments table; the
// SAM template grants exactly dynamodb:PutItem and dynamodb:GetItem.
type paymentsAPI interface {
	PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// appConfig is what newApp needs; tests fill it with a local server.
type appConfig struct {
	DB            paymentsAPI
	PaymentsTable string
	Store         idempotent.Store
	Options       []apigw.Option
	// Core are the guard's options, after WithLogger(Logger).
	Core   []idempotent.Option
	Now    func() time.Time
	Logger *slog.Logger
}

// payment is the resource, as answered (json) and as stored (dynamodbav, read
// and written with the SDK's attributevalue package). Currency is always the
// upper-case ISO 4217 code, whatever case the request used.
type payment struct {
	ID        string `json:"id" dynamodbav:"id"`
	Amount    int64  `json:"amount" dynamodbav:"amount"`
	Currency  string `json:"currency" dynamodbav:"currency"`
	Customer  string `json:"customer,omitempty" dynamodbav:"customer,omitempty"`
	CreatedAt string `json:"createdAt" dynamodbav:"created_at"`
}

// decodePayment reads a payment item. attributevalue rejects members of the
// wrong type; an item that lacks a member this function always writes, or
// holds a value it never writes, is an error too (fail closed: the function
// answers 500, never a half-read payment).
func decodePayment(item map[string]types.AttributeValue) (payment, error) {
	var p payment
	if err := attributevalue.UnmarshalMap(item, &p); err != nil {
		return payment{}, fmt.Errorf("payment item: %w", err)
	}
	var errs []error
	if !idRE.MatchString(p.ID) {
		errs = append(errs, fmt.Errorf("payment item: id %q", p.ID))
	}
	if p.Amount <= 0 {
		errs = append(errs, fmt.Errorf("payment item: amount %d", p.Amount))
	}
	if !currencyRE.MatchString(p.Currency) || p.Currency != strings.ToUpper(p.Currency) {
		errs = append(errs, fmt.Errorf("payment item: currency %q", p.Currency))
	}
	if _, err := time.Parse(time.RFC3339, p.CreatedAt); err != nil {
		errs = append(errs, fmt.Errorf("payment item: created_at: %w", err))
	}
	return p, errors.Join(errs...)
}

type app struct {
	db    paymentsAPI
	table *string
	now   func() time.Time
	log   *slog.Logger
}

// newApp returns the function's handler: routes, wrapped by apigw.WrapV2 so
// that POST /payments is idempotent by the Idempotency-Key header.
func newApp(c appConfig) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	a := &app{db: c.DB, table: aws.String(c.PaymentsTable), now: c.Now, log: c.Logger}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	guard := idempotent.New(c.Store, append([]idempotent.Option{idempotent.WithLogger(a.log)}, c.Core...)...)
	return apigw.WrapV2(guard, a.route, c.Options...)
}

func (a *app) route(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	method := req.RequestContext.HTTP.Method
	path := strings.TrimSuffix(req.RawPath, "/")
	if path == "" {
		path = req.RequestContext.HTTP.Path
	}
	switch {
	case strings.HasSuffix(path, "/payments"):
		if method != http.MethodPost {
			return problem(http.StatusMethodNotAllowed, "method-not-allowed", "Use POST to create a payment.", nil), nil
		}
		return a.create(ctx, req)
	case strings.Contains(path, "/payments/"):
		if method != http.MethodGet {
			return problem(http.StatusMethodNotAllowed, "method-not-allowed", "Use GET to read a payment.", nil), nil
		}
		id := req.PathParameters["id"]
		if id == "" {
			id = path[strings.LastIndex(path, "/payments/")+len("/payments/"):]
		}
		return a.get(ctx, id)
	}
	return problem(http.StatusNotFound, "not-found", "No route for "+method+" "+path+".", nil), nil
}

// fieldError is one validation failure, a member of the problem's "errors".
type fieldError struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

// currencyRE is an ISO 4217 alphabetic code in any case: like Stripe, which
// takes "usd", the API accepts "usd", "Usd" and "USD" and stores and answers
// "USD".
var currencyRE = regexp.MustCompile(`^[A-Za-z]{3}$`)

// parsePayment validates a POST body: {"amount": int > 0, "currency": three
// letters, any case, "customer"?: string}. Other members are ignored. The
// currency comes back upper-case.
//
// Idempotency sees the body as sent (canonical JSON: member order and
// whitespace do not matter, values do), not as parsed here: a request with
// "usd" and a later one with "USD" under the same Idempotency-Key have two
// fingerprints, so the second is a 422, as Stripe answers a key reused with
// other parameters. A retry resends the same body and replays.
func parsePayment(body []byte) (payment, []fieldError) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return payment{}, []fieldError{{Pointer: "", Detail: "the body must be a JSON object"}}
	}
	var p payment
	var errs []fieldError
	if raw, ok := doc["amount"]; !ok {
		errs = append(errs, fieldError{"/amount", "required"})
	} else if n, err := strconv.ParseInt(string(raw), 10, 64); err != nil || n <= 0 {
		errs = append(errs, fieldError{"/amount", "must be a positive integer (minor units)"})
	} else {
		p.Amount = n
	}
	if raw, ok := doc["currency"]; !ok {
		errs = append(errs, fieldError{"/currency", "required"})
	} else if err := json.Unmarshal(raw, &p.Currency); err != nil || !currencyRE.MatchString(p.Currency) {
		errs = append(errs, fieldError{"/currency", "must be a three-letter ISO 4217 currency code, e.g. EUR or usd"})
	} else {
		p.Currency = strings.ToUpper(p.Currency)
	}
	if raw, ok := doc["customer"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &p.Customer); err != nil || p.Customer == "" || len(p.Customer) > 256 {
			errs = append(errs, fieldError{"/customer", "must be a string of 1 to 256 bytes"})
		}
	}
	return p, errs
}

func (a *app) create(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return problem(http.StatusBadRequest, "validation-error", "The body is not valid base64.", nil), nil
		}
		body = b
	}
	p, errs := parsePayment(body)
	if len(errs) > 0 {
		details := make([]string, len(errs))
		for i, e := range errs {
			details[i] = strings.TrimPrefix(e.Pointer, "/") + " " + e.Detail
		}
		return problem(http.StatusBadRequest, "validation-error", "Invalid payment: "+strings.Join(details, "; ")+".", errs), nil
	}
	id, err := paymentID(ctx)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	p.ID = id
	p.CreatedAt = a.now().UTC().Format(time.RFC3339)
	item, err := attributevalue.MarshalMap(p)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("payments: encode payment: %w", err)
	}
	// Database-level idempotency: the id comes from the idempotency record,
	// so a re-run after a crash (lease ended, record never completed) finds
	// the payment it wrote before and answers with it.
	_, err = a.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           a.table,
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(id)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if ccf, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
		existing, err := a.existing(ctx, id, ccf.Item)
		if err != nil {
			return a.unavailable(ctx, "read existing payment", err), nil
		}
		if existing.Amount != p.Amount || existing.Currency != p.Currency || existing.Customer != p.Customer {
			return problem(http.StatusUnprocessableEntity, "payment-conflict", "A different payment was already created with this Idempotency-Key.", nil), nil
		}
		a.log.InfoContext(ctx, "payment existed; answering with it", slog.String("id", id))
		p = existing
	} else if err != nil {
		return a.unavailable(ctx, "put payment", err), nil
	}
	return jsonResponse(http.StatusCreated, p, map[string]string{"Location": "/payments/" + p.ID}), nil
}

// existing returns the payment a failed conditional put found: the ALL_OLD
// item when the server sends it, else a consistent read.
func (a *app) existing(ctx context.Context, id string, item map[string]types.AttributeValue) (payment, error) {
	if item == nil {
		out, err := a.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      a.table,
			Key:            paymentKey(id),
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return payment{}, err
		}
		if out.Item == nil {
			return payment{}, fmt.Errorf("payment %s vanished after a failed conditional put", id)
		}
		item = out.Item
	}
	return decodePayment(item)
}

var idRE = regexp.MustCompile(`^pay_[0-9a-f]{32}$`)

// paymentKey is the payments table's key of one payment.
func paymentKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}}
}

func (a *app) get(ctx context.Context, id string) (events.APIGatewayV2HTTPResponse, error) {
	notFound := problem(http.StatusNotFound, "not-found", "No payment with this id.", nil)
	if !idRE.MatchString(id) {
		return notFound, nil
	}
	out, err := a.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: a.table,
		Key:       paymentKey(id),
	})
	if err != nil {
		return a.unavailable(ctx, "get payment", err), nil
	}
	if out.Item == nil {
		return notFound, nil
	}
	p, err := decodePayment(out.Item)
	if err != nil {
		a.log.ErrorContext(ctx, "undecodable payment", slog.String("id", id), slog.Any("error", err))
		return problem(http.StatusInternalServerError, "internal-error", "The payment cannot be read.", nil), nil
	}
	return jsonResponse(http.StatusOK, p, nil), nil
}

// paymentID derives the payment id from the idempotency record key, so
// every run for one key writes the same item; a request without a key gets
// a random id.
func paymentID(ctx context.Context) (string, error) {
	if k, ok := idempotent.RecordIDFromContext(ctx); ok {
		sum := sha256.Sum256([]byte("payment:" + k))
		return "pay_" + hex.EncodeToString(sum[:16]), nil
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("payments: random id: %w", err)
	}
	return "pay_" + hex.EncodeToString(b[:]), nil
}

// unavailable answers a payments-table failure 503: not stored by the
// idempotency layer, so a retry with the same key runs again (and the
// conditional put keeps it from paying twice).
func (a *app) unavailable(ctx context.Context, op string, err error) events.APIGatewayV2HTTPResponse {
	a.log.ErrorContext(ctx, "payments table failed", slog.String("op", op), slog.Any("error", err))
	r := problem(http.StatusServiceUnavailable, "unavailable", "Payments are unavailable; retry with the same Idempotency-Key.", nil)
	r.Headers["Retry-After"] = "1"
	return r
}

const problemBase = "https://github.com/idemlambda/idemlambda/blob/main/docs/http.md#payments-"

func problem(status int, typ, detail string, errs []fieldError) events.APIGatewayV2HTTPResponse {
	body, _ := json.Marshal(struct {
		Type   string       `json:"type"`
		Title  string       `json:"title"`
		Status int          `json:"status"`
		Detail string       `json:"detail"`
		Errors []fieldError `json:"errors,omitempty"`
	}{problemBase + typ, http.StatusText(status), status, detail, errs})
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": apigw.ContentTypeProblem},
		Body:       string(body),
	}
}

func jsonResponse(status int, v any, headers map[string]string) events.APIGatewayV2HTTPResponse {
	body, _ := json.Marshal(v) // payment: strings and an integer
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range headers {
		h[k] = v
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: h, Body: string(body)}
}
