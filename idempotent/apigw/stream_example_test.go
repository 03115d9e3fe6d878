package apigw_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
)

// A streamed report: the first request runs the handler and streams its
// body; a duplicate gets the same stream, replayed.
func ExampleWrapURLStreaming() {
	runs := 0
	h := apigw.WrapURLStreaming(idempotent.New(idempotent.NewMemoryStore()), func(ctx context.Context, r events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		runs++
		pr, pw := io.Pipe()
		go func() {
			for i := range 3 {
				fmt.Fprintf(pw, "line %d\n", i)
			}
			pw.Close()
		}()
		return &events.LambdaFunctionURLStreamingResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "text/plain"}, Body: pr}, nil
	})
	req := events.LambdaFunctionURLRequest{
		Headers:        map[string]string{"idempotency-key": "report-1"},
		RequestContext: events.LambdaFunctionURLRequestContext{HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST", Path: "/reports"}},
	}
	for range 2 {
		resp, err := h(context.Background(), req)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body) // aws-lambda-go reads it so, then closes the response
		resp.Close()
		fmt.Printf("%d replayed=%q %s\n", resp.StatusCode, resp.Headers[apigw.HeaderReplayed], strings.Join(strings.Fields(string(body)), " "))
	}
	fmt.Println("runs:", runs)
	// Output:
	// 200 replayed="" line 0 line 1 line 2
	// 200 replayed="true" line 0 line 1 line 2
	// runs: 1
}
