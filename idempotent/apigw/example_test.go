package apigw_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
)

// An HTTP API (payload format 2.0) route made idempotent by the
// Idempotency-Key header: the retry of a POST gets the first response again,
// marked Idempotent-Replayed, and the handler does not run twice; the same
// key with another body is refused with a 422 problem.
func ExampleWrapV2() {
	store := idempotent.NewMemoryStore() // dynamostore.New(client, table) in Lambda
	payments := 0
	create := func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		payments++
		return events.APIGatewayV2HTTPResponse{
			StatusCode: http.StatusCreated,
			Headers:    map[string]string{"Content-Type": "application/json"},
			Body:       fmt.Sprintf(`{"id":"pay-%d"}`, payments),
		}, nil
	}
	// In main: lambda.Start(apigw.WrapV2(idempotent.New(store), create)).
	h := apigw.WrapV2(idempotent.New(store), create)

	post := func(key, body string) events.APIGatewayV2HTTPResponse {
		req := events.APIGatewayV2HTTPRequest{
			RawPath: "/payments",
			Headers: map[string]string{"content-type": "application/json", "idempotency-key": key},
			Body:    body,
		}
		req.RequestContext.HTTP.Method = http.MethodPost
		req.RequestContext.HTTP.Path = "/payments"
		resp, err := h(context.Background(), req)
		if err != nil {
			panic(err)
		}
		return resp
	}
	first := post("order-42", `{"amount":1250,"currency":"EUR"}`)
	retry := post("order-42", `{"currency":"EUR", "amount":1250}`) // same JSON, other member order
	other := post("order-42", `{"amount":9999,"currency":"EUR"}`)
	fmt.Println(first.StatusCode, first.Headers[apigw.HeaderReplayed], first.Body)
	fmt.Println(retry.StatusCode, retry.Headers[apigw.HeaderReplayed], retry.Body)
	fmt.Println(other.StatusCode, other.Headers["Content-Type"])
	fmt.Println("payments created:", payments)
	// Output:
	// 201  {"id":"pay-1"}
	// 201 true {"id":"pay-1"}
	// 422 application/problem+json
	// payments created: 1
}

// A REST API (API Gateway v1) proxy integration, guarded the same way.
func ExampleWrapV1() {
	runs := 0
	create := func(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		runs++
		return events.APIGatewayProxyResponse{StatusCode: http.StatusCreated, Body: fmt.Sprintf(`{"run":%d}`, runs)}, nil
	}
	h := apigw.WrapV1(idempotent.New(idempotent.NewMemoryStore()), create)

	req := events.APIGatewayProxyRequest{
		HTTPMethod: http.MethodPost,
		Path:       "/orders",
		Headers:    map[string]string{"Idempotency-Key": "k-1"},
		Body:       `{"sku":"A-1"}`,
	}
	for range 2 {
		resp, _ := h(context.Background(), req)
		fmt.Println(resp.StatusCode, resp.Headers[apigw.HeaderReplayed], resp.Body)
	}
	// Output:
	// 201  {"run":1}
	// 201 true {"run":1}
}

// A Lambda Function URL. Methods other than POST and PATCH pass through
// unguarded (WithMethods changes the set).
func ExampleWrapURL() {
	runs := 0
	handle := func(ctx context.Context, req events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
		runs++
		return events.LambdaFunctionURLResponse{StatusCode: http.StatusOK, Body: fmt.Sprintf("%s run %d", req.RequestContext.HTTP.Method, runs)}, nil
	}
	h := apigw.WrapURL(idempotent.New(idempotent.NewMemoryStore()), handle)

	for _, method := range []string{http.MethodPost, http.MethodPost, http.MethodGet} {
		req := events.LambdaFunctionURLRequest{
			RawPath: "/jobs",
			Headers: map[string]string{"idempotency-key": "job-7"},
			Body:    `{"task":"resize"}`,
		}
		req.RequestContext.HTTP.Method = method
		req.RequestContext.HTTP.Path = "/jobs"
		resp, _ := h(context.Background(), req)
		fmt.Printf("%s: %d %q %s\n", method, resp.StatusCode, resp.Headers[apigw.HeaderReplayed], resp.Body)
	}
	// Output:
	// POST: 200 "" POST run 1
	// POST: 200 "true" POST run 1
	// GET: 200 "" GET run 2
}

// An Application Load Balancer target. With WithRequireKey, a guarded
// request without an Idempotency-Key is refused with a 400 problem instead
// of running unguarded.
func ExampleWrapALB() {
	runs := 0
	handle := func(ctx context.Context, req events.ALBTargetGroupRequest) (events.ALBTargetGroupResponse, error) {
		runs++
		return events.ALBTargetGroupResponse{StatusCode: http.StatusAccepted, StatusDescription: "202 Accepted", Body: fmt.Sprintf(`{"run":%d}`, runs)}, nil
	}
	h := apigw.WrapALB(idempotent.New(idempotent.NewMemoryStore()), handle, apigw.WithRequireKey())

	for _, key := range []string{"upload-1", "upload-1", ""} {
		req := events.ALBTargetGroupRequest{
			HTTPMethod: http.MethodPost,
			Path:       "/uploads",
			Headers:    map[string]string{"content-type": "application/json"},
			Body:       `{"file":"a.png"}`,
		}
		if key != "" {
			req.Headers["idempotency-key"] = key
		}
		resp, _ := h(context.Background(), req)
		fmt.Println(resp.StatusCode, resp.Headers[apigw.HeaderReplayed], resp.Headers["Content-Type"], runs)
	}
	// Output:
	// 202   1
	// 202 true  1
	// 400  application/problem+json 1
}
