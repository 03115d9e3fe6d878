package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent/apigw"
	"github.com/idemlambda/idemlambda/idempotent/sqsbatch"
)

func init() {
	pathMakers["http"] = func() path { return httpPath{} }
	pathMakers["sqs"] = func() path { return sqsPath{} }
}

// httpPath: a payment POSTed through an HTTP API (payload 2.0) handler
// built with apigw.WrapV2, keyed by the Idempotency-Key header. The final
// answer is a 201 and its body; 409, 5xx and Go errors are retried.
type httpPath struct{}

func (httpPath) name() string { return "http" }

type v2Handler = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

func (httpPath) call(ctx context.Context, w *workload, a *attempt) ([]byte, bool, error) {
	h := a.container.httpHandler(w, a.lease)
	body := fmt.Sprintf(`{"id":%q, "amount": %d}`, a.op.key, a.op.amount)
	if a.n%2 == 0 {
		// Same JSON, other spelling: the fingerprint canonicalises it.
		body = fmt.Sprintf(`{ "amount":%d,"id":%q }`, a.op.amount, a.op.key)
	}
	req := events.APIGatewayV2HTTPRequest{
		Version:  "2.0",
		RouteKey: "POST /payments",
		RawPath:  "/payments",
		Headers:  map[string]string{"idempotency-key": a.op.key, "content-type": "application/json"},
		Body:     body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodPost, Path: "/payments"},
		},
	}
	resp, err := h(context.WithValue(ctx, attemptKey{}, a), req)
	if err != nil {
		return nil, false, err
	}
	switch {
	case resp.StatusCode == http.StatusCreated:
		replayed := resp.Headers[apigw.HeaderReplayed] == "true"
		return []byte(resp.Body), !replayed && a.run != "" && runOf([]byte(resp.Body)) == a.run, nil
	case resp.StatusCode == http.StatusConflict, resp.StatusCode >= 500:
		return nil, false, fmt.Errorf("%w: HTTP %d %s", errRetryable, resp.StatusCode, resp.Body)
	default:
		return nil, false, fmt.Errorf("chaos: HTTP %d %s", resp.StatusCode, resp.Body)
	}
}

func (c *container) httpHandler(w *workload, lease time.Duration) v2Handler {
	key := "http/" + lease.String()
	if h, ok := c.paths.Load(key); ok {
		return h.(v2Handler)
	}
	h := apigw.WrapV2(c.guard("chaos-http", lease, w.logger), func(ctx context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		p, err := w.handle(ctx, ctx.Value(attemptKey{}).(*attempt))
		if err != nil {
			// A 5xx is not stored: it releases the key.
			return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusInternalServerError, Body: `{"error":"injected"}`}, nil
		}
		b, _ := json.Marshal(p)
		return events.APIGatewayV2HTTPResponse{
			StatusCode: http.StatusCreated,
			Headers:    map[string]string{"Content-Type": "application/json"},
			Body:       string(b),
		}, nil
	})
	actual, _ := c.paths.LoadOrStore(key, h)
	return actual.(v2Handler)
}

// sqsPath: a message delivered (and redelivered) to an SQS batch handler
// built with sqsbatch.Wrap, keyed by a JMESPath into the body. The final
// answer is the message's acknowledgement (absent from
// BatchItemFailures); it carries no run id, so completions are counted from
// the runs whose own batch acknowledged them.
type sqsPath struct{}

func (sqsPath) name() string { return "sqs" }

type sqsHandler = func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// ackAnswer is the final answer of a message.
var ackAnswer = []byte("ack")

func (sqsPath) call(ctx context.Context, w *workload, a *attempt) ([]byte, bool, error) {
	h := a.container.sqsHandler(w, a.lease)
	msg := events.SQSMessage{
		// Every delivery is a new receipt; redeliveries keep the id, here
		// the producer sends duplicates under fresh ids.
		MessageId:      a.op.key + "/" + a.caller.name + "/" + strconv.Itoa(a.n),
		ReceiptHandle:  "rh-" + strconv.Itoa(a.n),
		Body:           fmt.Sprintf(`{"orderId":%q,"amount":%d}`, a.op.key, a.op.amount),
		EventSource:    "aws:sqs",
		EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:chaos",
		AWSRegion:      "us-east-1",
	}
	ctx = context.WithValue(ctx, attemptKey{}, a)
	resp, err := h(ctx, events.SQSEvent{Records: []events.SQSMessage{msg}})
	if err != nil {
		return nil, false, err
	}
	for _, f := range resp.BatchItemFailures {
		if f.ItemIdentifier == msg.MessageId {
			return nil, false, fmt.Errorf("%w: message in BatchItemFailures", errRetryable)
		}
	}
	return ackAnswer, a.run != "" && a.handlerOK, nil
}

func (c *container) sqsHandler(w *workload, lease time.Duration) sqsHandler {
	key := "sqs/" + lease.String()
	if h, ok := c.paths.Load(key); ok {
		return h.(sqsHandler)
	}
	h := sqsbatch.Wrap(c.guard("chaos-sqs", lease, w.logger), func(ctx context.Context, _ events.SQSMessage) error {
		a := ctx.Value(attemptKey{}).(*attempt)
		_, err := w.handle(ctx, a)
		a.handlerOK = err == nil
		return err
	}, sqsbatch.WithBodyKey("orderId"))
	actual, _ := c.paths.LoadOrStore(key, h)
	return actual.(sqsHandler)
}
