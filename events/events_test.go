// Package events_test checks the sample events in this folder: each file
// decodes into its aws-lambda-go events type and encodes back without losing a
// field, so the samples are exactly what a Go handler sees.
package events_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// typeFor maps a file name prefix to the event type it holds.
var typeFor = []struct {
	prefix string
	new    func() any
}{
	{prefix: "apigw-v1-", new: func() any { return new(events.APIGatewayProxyRequest) }},
	{prefix: "apigw-v2-", new: func() any { return new(events.APIGatewayV2HTTPRequest) }},
	{prefix: "lambda-url-", new: func() any { return new(events.LambdaFunctionURLRequest) }},
	{prefix: "alb-", new: func() any { return new(events.ALBTargetGroupRequest) }},
	{prefix: "sqs-", new: func() any { return new(events.SQSEvent) }},
}

func decodeFile(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestEventsRoundTrip(t *testing.T) {
	files, err := filepath.Glob("*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events: %v", err)
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			var typed any
			for _, m := range typeFor {
				if strings.HasPrefix(file, m.prefix) {
					typed = m.new()
				}
			}
			if typed == nil {
				t.Fatalf("no event type for %s: name it with one of the known prefixes", file)
			}
			// DisallowUnknownFields: every field of the sample exists in the Go type.
			decodeFile(t, file, typed)
			out, err := json.Marshal(typed)
			if err != nil {
				t.Fatal(err)
			}
			var in, back any
			decodeFile(t, file, &in)
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatal(err)
			}
			checkSubset(t, "$", in, back)
		})
	}
}

// checkSubset reports every value of in that is missing or different in out.
// Fields the Go type adds on output must be zero values; a null in the
// sample equals an absent or zero field.
func checkSubset(t *testing.T, path string, in, out any) {
	t.Helper()
	switch in := in.(type) {
	case map[string]any:
		om, ok := out.(map[string]any)
		if !ok {
			if len(in) == 0 && isZero(out) {
				return
			}
			t.Errorf("%s: object became %#v", path, out)
			return
		}
		for k, v := range in {
			checkSubset(t, path+"."+k, v, om[k])
		}
		for k, v := range om {
			if _, ok := in[k]; !ok && !isZero(v) {
				t.Errorf("%s.%s: added non-zero value %#v", path, k, v)
			}
		}
	case []any:
		ol, ok := out.([]any)
		if !ok || len(ol) != len(in) {
			if len(in) == 0 && isZero(out) {
				return
			}
			t.Errorf("%s: list %#v became %#v", path, in, out)
			return
		}
		for i := range in {
			checkSubset(t, fmt.Sprintf("%s[%d]", path, i), in[i], ol[i])
		}
	case nil:
		if !isZero(out) {
			t.Errorf("%s: null became %#v", path, out)
		}
	default:
		if isZero(in) && isZero(out) {
			return // omitempty drops zero values; nothing is lost
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("%s: %#v became %#v", path, in, out)
		}
	}
}

func isZero(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case float64:
		return v == 0
	case bool:
		return !v
	case map[string]any:
		for _, e := range v {
			if !isZero(e) {
				return false
			}
		}
		return true
	case []any:
		return len(v) == 0
	}
	return false
}

func TestHTTPEventsCarryAnIdempotencyKey(t *testing.T) {
	const key = "8e03978e-40d5-43e8-bc93-6894a57f9324"
	var v1 events.APIGatewayProxyRequest
	decodeFile(t, "apigw-v1-post-payment.json", &v1)
	var v2, v2jwt events.APIGatewayV2HTTPRequest
	decodeFile(t, "apigw-v2-post-payment.json", &v2)
	decodeFile(t, "apigw-v2-post-payment-jwt.json", &v2jwt)
	var url events.LambdaFunctionURLRequest
	decodeFile(t, "lambda-url-post-payment.json", &url)
	var alb, albMulti events.ALBTargetGroupRequest
	decodeFile(t, "alb-post-payment.json", &alb)
	decodeFile(t, "alb-post-payment-multivalue.json", &albMulti)
	tests := []struct {
		name, method, path, key, body string
	}{
		{name: "REST v1", method: v1.HTTPMethod, path: v1.Path, key: v1.Headers["Idempotency-Key"], body: v1.Body},
		{name: "REST v1 multi-value", method: v1.HTTPMethod, path: v1.Path, key: strings.Join(v1.MultiValueHeaders["Idempotency-Key"], ","), body: v1.Body},
		{name: "HTTP API v2", method: v2.RequestContext.HTTP.Method, path: v2.RawPath, key: v2.Headers["idempotency-key"], body: v2.Body},
		{name: "HTTP API v2 JWT", method: v2jwt.RequestContext.HTTP.Method, path: v2jwt.RawPath, key: v2jwt.Headers["idempotency-key"], body: v2jwt.Body},
		{name: "Function URL", method: url.RequestContext.HTTP.Method, path: url.RawPath, key: url.Headers["idempotency-key"], body: url.Body},
		{name: "ALB", method: alb.HTTPMethod, path: alb.Path, key: alb.Headers["idempotency-key"], body: alb.Body},
		{name: "ALB multi-value", method: albMulti.HTTPMethod, path: albMulti.Path, key: strings.Join(albMulti.MultiValueHeaders["idempotency-key"], ","), body: albMulti.Body},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.method != "POST" || tt.path != "/payments" || tt.key != key {
				t.Errorf("method %q path %q key %q; want POST /payments with key %s", tt.method, tt.path, tt.key, key)
			}
			if !json.Valid([]byte(tt.body)) {
				t.Errorf("body %q is not JSON", tt.body)
			}
		})
	}
	claims := v2jwt.RequestContext.Authorizer.JWT.Claims
	if claims["sub"] == "" || claims["iss"] == "" {
		t.Errorf("JWT claims %v lack sub or iss", claims)
	}
	if v2.RequestContext.Authorizer != nil {
		t.Errorf("the no-authorizer sample has an authorizer: %+v", v2.RequestContext.Authorizer)
	}
	if len(albMulti.MultiValueHeaders["accept"]) < 2 {
		t.Error("the multi-value ALB sample has no header with several values")
	}
}

type order struct {
	OrderID  string `json:"orderId"`
	Customer string `json:"customer"`
	Amount   int    `json:"amount"`
}

func checkRecords(t *testing.T, ev events.SQSEvent) {
	t.Helper()
	ids := map[string]bool{}
	for _, r := range ev.Records {
		var o order
		dec := json.NewDecoder(strings.NewReader(r.Body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil || o.OrderID == "" || o.Customer == "" || o.Amount <= 0 {
			t.Errorf("record %s: body %q is not an order (%v)", r.MessageId, r.Body, err)
		}
		sum := md5.Sum([]byte(r.Body))
		if r.Md5OfBody != hex.EncodeToString(sum[:]) {
			t.Errorf("record %s: md5OfBody does not match the body", r.MessageId)
		}
		if ids[r.MessageId] {
			t.Errorf("message id %s repeats", r.MessageId)
		}
		ids[r.MessageId] = true
	}
}

func TestSQSOrders(t *testing.T) {
	var ev events.SQSEvent
	decodeFile(t, "sqs-orders.json", &ev)
	if len(ev.Records) != 3 {
		t.Fatalf("%d records, want 3", len(ev.Records))
	}
	checkRecords(t, ev)
	for _, r := range ev.Records {
		if strings.HasSuffix(r.EventSourceARN, ".fifo") || r.Attributes["MessageGroupId"] != "" {
			t.Errorf("record %s looks like FIFO", r.MessageId)
		}
	}
}

func TestSQSOrdersFIFO(t *testing.T) {
	var ev events.SQSEvent
	decodeFile(t, "sqs-orders-fifo.json", &ev)
	checkRecords(t, ev)
	groups := map[string]int{}
	for _, r := range ev.Records {
		if !strings.HasSuffix(r.EventSourceARN, ".fifo") {
			t.Errorf("record %s: eventSourceARN %s is not a FIFO queue", r.MessageId, r.EventSourceARN)
		}
		if r.Attributes["MessageDeduplicationId"] == "" || r.Attributes["SequenceNumber"] == "" {
			t.Errorf("record %s lacks MessageDeduplicationId or SequenceNumber", r.MessageId)
		}
		groups[r.Attributes["MessageGroupId"]]++
	}
	if len(groups) != 2 || groups[""] != 0 {
		t.Errorf("message groups %v, want two named groups", groups)
	}
	for g, n := range groups {
		if n < 2 {
			t.Errorf("group %s has %d record(s); want several so ordering within a group matters", g, n)
		}
	}
}
