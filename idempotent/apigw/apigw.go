package apigw

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// Header names and media type used by the adapters.
const (
	// HeaderKey is the request header that carries the idempotency key.
	HeaderKey = httpidem.HeaderKey
	// HeaderAttempt, with a number of 2 or more, marks a request as a retry
	// of one sent before with the same key (idemclient sends it on every
	// retry); such a request reads its record before writing, so a replay
	// costs a read. It changes no outcome.
	HeaderAttempt = httpidem.HeaderAttempt
	// HeaderReplayed is set to "true" on every replayed response.
	HeaderReplayed = httpidem.HeaderReplayed
	// ContentTypeProblem is the media type of the library's error responses
	// (RFC 9457).
	ContentTypeProblem = httpidem.ContentTypeProblem
)

// DefaultStored is the default stored-status policy: 2xx, 3xx and 4xx except
// 408, 409, 425 and 429.
func DefaultStored(status int) bool { return httpidem.DefaultStored(status) }

// WrapV2 makes an HTTP API (payload format 2.0) handler idempotent by the
// Idempotency-Key header; the result goes straight into lambda.Start:
//
//	lambda.Start(apigw.WrapV2(idempotent.New(store), handle))
//
// A guarded request (POST, PATCH) with a valid key runs h at most once per
// caller, method, path and key within the TTL (the same key on another
// method or path is another record); a duplicate with the same query and
// body replays the stored response with Idempotent-Replayed: true, a
// duplicate with another query or body gets 422, one that arrives while the
// first runs gets 409 with Retry-After: 1. A store failure before h runs
// answers 503 and h does not run; one after h ran (its response could not
// be stored) answers 503 "outcome unknown", and the key stays held until
// the lease ends. Responses that are not stored (5xx, 408, 409, 425, 429 by
// default) and errors returned by h release the key; h's error is returned
// as the same value (joined only with a failed release). Every error
// response made here is application/problem+json.
//
// The returned handler is safe for concurrent use.
func WrapV2(g *idempotent.Guard, h func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), opts ...Option) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	cfg, scope := build[events.APIGatewayV2HTTPRequest](g, h == nil, opts)
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return httpidem.Serve(ctx, cfg, g, &v2Request{ev: &ev, scope: scope}, v2Codec{}, func(ctx context.Context) (events.APIGatewayV2HTTPResponse, error) {
			return h(ctx, ev)
		})
	}
}

// WrapV1 is WrapV2 for REST APIs (Lambda proxy integration, payload format
// 1.0). Headers are read from headers and multiValueHeaders; a replay
// restores both.
func WrapV1(g *idempotent.Guard, h func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error), opts ...Option) func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	cfg, scope := build[events.APIGatewayProxyRequest](g, h == nil, opts)
	return func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		return httpidem.Serve(ctx, cfg, g, &v1Request{ev: &ev, scope: scope}, v1Codec{}, func(ctx context.Context) (events.APIGatewayProxyResponse, error) {
			return h(ctx, ev)
		})
	}
}

// WrapURL is WrapV2 for Lambda Function URLs (buffered invoke mode).
func WrapURL(g *idempotent.Guard, h func(context.Context, events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error), opts ...Option) func(context.Context, events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	cfg, scope := build[events.LambdaFunctionURLRequest](g, h == nil, opts)
	return func(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
		return httpidem.Serve(ctx, cfg, g, &urlRequest{ev: &ev, scope: scope}, urlCodec{}, func(ctx context.Context) (events.LambdaFunctionURLResponse, error) {
			return h(ctx, ev)
		})
	}
}

// WrapALB is WrapV2 for Application Load Balancer targets, in both header
// modes: when the target group has multi-value headers on (the request
// carries multiValueHeaders), the library's responses and the replay header
// use multiValueHeaders, else headers. ALB has no authorizer: the principal
// is "anonymous" unless WithScope says otherwise.
func WrapALB(g *idempotent.Guard, h func(context.Context, events.ALBTargetGroupRequest) (events.ALBTargetGroupResponse, error), opts ...Option) func(context.Context, events.ALBTargetGroupRequest) (events.ALBTargetGroupResponse, error) {
	cfg, scope := build[events.ALBTargetGroupRequest](g, h == nil, opts)
	return func(ctx context.Context, ev events.ALBTargetGroupRequest) (events.ALBTargetGroupResponse, error) {
		codec := albCodec{multi: len(ev.MultiValueHeaders) > 0}
		return httpidem.Serve(ctx, cfg, g, &albRequest{ev: &ev, scope: scope}, codec, func(ctx context.Context) (events.ALBTargetGroupResponse, error) {
			return h(ctx, ev)
		})
	}
}

// build applies opts and checks them for the adapter of event type E: the
// scope function's type, the guard, the handler.
func build[E Event](g *idempotent.Guard, nilHandler bool, opts []Option) (*httpidem.Config, func(context.Context, E) (string, error)) {
	cfg := httpidem.NewConfig(g, opts)
	scope := httpidem.ScopeFunc[func(context.Context, E) (string, error)](cfg, fmt.Sprintf("func(context.Context, %s) (string, error)", reflect.TypeFor[E]()))
	if cfg.MaxBody != 0 {
		cfg.Fail("WithStreamLimit", errors.New("it applies to WrapURLStreaming only: Lambda passes whole events"))
	}
	if nilHandler {
		cfg.Fail("handler", errors.New("nil handler"))
	}
	cfg.Finish()
	return cfg, scope
}

// ---- requests ----

func decodeBody(body string, b64 bool) ([]byte, error) {
	if !b64 {
		return []byte(body), nil
	}
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("isBase64Encoded is true but the body is not valid base64: %w", err)
	}
	return b, nil
}

type v2Request struct {
	ev    *events.APIGatewayV2HTTPRequest
	scope func(context.Context, events.APIGatewayV2HTTPRequest) (string, error)
}

func (r *v2Request) Method() string { return strings.ToUpper(r.ev.RequestContext.HTTP.Method) }
func (r *v2Request) Path() string {
	if r.ev.RawPath != "" {
		return r.ev.RawPath
	}
	return r.ev.RequestContext.HTTP.Path
}
func (r *v2Request) Query() string { return httpidem.CanonicalQuery(r.ev.RawQueryString) }
func (r *v2Request) Header(name string) []string {
	return httpidem.HeaderValues(r.ev.Headers, nil, name)
}
func (r *v2Request) Body() ([]byte, error) { return decodeBody(r.ev.Body, r.ev.IsBase64Encoded) }

type v1Request struct {
	ev    *events.APIGatewayProxyRequest
	scope func(context.Context, events.APIGatewayProxyRequest) (string, error)
}

func (r *v1Request) Method() string { return strings.ToUpper(r.ev.HTTPMethod) }
func (r *v1Request) Path() string   { return r.ev.Path }
func (r *v1Request) Query() string {
	return httpidem.CanonicalQueryMaps(r.ev.QueryStringParameters, r.ev.MultiValueQueryStringParameters, false)
}
func (r *v1Request) Header(name string) []string {
	return httpidem.HeaderValues(r.ev.Headers, r.ev.MultiValueHeaders, name)
}
func (r *v1Request) Body() ([]byte, error) { return decodeBody(r.ev.Body, r.ev.IsBase64Encoded) }

type urlRequest struct {
	ev    *events.LambdaFunctionURLRequest
	scope func(context.Context, events.LambdaFunctionURLRequest) (string, error)
}

func (r *urlRequest) Method() string { return strings.ToUpper(r.ev.RequestContext.HTTP.Method) }
func (r *urlRequest) Path() string {
	if r.ev.RawPath != "" {
		return r.ev.RawPath
	}
	return r.ev.RequestContext.HTTP.Path
}
func (r *urlRequest) Query() string { return httpidem.CanonicalQuery(r.ev.RawQueryString) }
func (r *urlRequest) Header(name string) []string {
	return httpidem.HeaderValues(r.ev.Headers, nil, name)
}
func (r *urlRequest) Body() ([]byte, error) { return decodeBody(r.ev.Body, r.ev.IsBase64Encoded) }

type albRequest struct {
	ev    *events.ALBTargetGroupRequest
	scope func(context.Context, events.ALBTargetGroupRequest) (string, error)
}

func (r *albRequest) Method() string { return strings.ToUpper(r.ev.HTTPMethod) }
func (r *albRequest) Path() string   { return r.ev.Path }
func (r *albRequest) Query() string {
	return httpidem.CanonicalQueryMaps(r.ev.QueryStringParameters, r.ev.MultiValueQueryStringParameters, true)
}
func (r *albRequest) Header(name string) []string {
	return httpidem.HeaderValues(r.ev.Headers, r.ev.MultiValueHeaders, name)
}
func (r *albRequest) Body() ([]byte, error) { return decodeBody(r.ev.Body, r.ev.IsBase64Encoded) }

// ---- responses ----

func withHeader(h map[string]string, k, v string) map[string]string {
	if h == nil {
		h = make(map[string]string, 1)
	}
	h[k] = v
	return h
}

type v2Codec struct{}

func (v2Codec) Status(r events.APIGatewayV2HTTPResponse) int { return r.StatusCode }
func (v2Codec) Problem(p httpidem.Problem) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: p.Status, Headers: p.Headers(), Body: p.Body()}
}
func (v2Codec) Replayed(r events.APIGatewayV2HTTPResponse) events.APIGatewayV2HTTPResponse {
	r.Headers = withHeader(r.Headers, HeaderReplayed, "true")
	return r
}

type v1Codec struct{}

func (v1Codec) Status(r events.APIGatewayProxyResponse) int { return r.StatusCode }
func (v1Codec) Problem(p httpidem.Problem) events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{StatusCode: p.Status, Headers: p.Headers(), Body: p.Body()}
}
func (v1Codec) Replayed(r events.APIGatewayProxyResponse) events.APIGatewayProxyResponse {
	r.Headers = withHeader(r.Headers, HeaderReplayed, "true")
	return r
}

type urlCodec struct{}

func (urlCodec) Status(r events.LambdaFunctionURLResponse) int { return r.StatusCode }
func (urlCodec) Problem(p httpidem.Problem) events.LambdaFunctionURLResponse {
	return events.LambdaFunctionURLResponse{StatusCode: p.Status, Headers: p.Headers(), Body: p.Body()}
}
func (urlCodec) Replayed(r events.LambdaFunctionURLResponse) events.LambdaFunctionURLResponse {
	r.Headers = withHeader(r.Headers, HeaderReplayed, "true")
	return r
}

// albCodec writes headers in the target group's mode: with multi-value
// headers on, ALB reads only multiValueHeaders.
type albCodec struct{ multi bool }

func (albCodec) Status(r events.ALBTargetGroupResponse) int { return r.StatusCode }
func (c albCodec) Problem(p httpidem.Problem) events.ALBTargetGroupResponse {
	r := events.ALBTargetGroupResponse{
		StatusCode:        p.Status,
		StatusDescription: fmt.Sprintf("%d %s", p.Status, http.StatusText(p.Status)),
		Body:              p.Body(),
	}
	if c.multi {
		r.MultiValueHeaders = make(map[string][]string)
		for k, v := range p.Headers() {
			r.MultiValueHeaders[k] = []string{v}
		}
	} else {
		r.Headers = p.Headers()
	}
	return r
}
func (c albCodec) Replayed(r events.ALBTargetGroupResponse) events.ALBTargetGroupResponse {
	if c.multi {
		if r.MultiValueHeaders == nil {
			r.MultiValueHeaders = make(map[string][]string, 1)
		}
		r.MultiValueHeaders[HeaderReplayed] = []string{"true"}
	} else {
		r.Headers = withHeader(r.Headers, HeaderReplayed, "true")
	}
	return r
}
