package apigw_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
)

type upstreamError struct{ Service string }

func (e *upstreamError) Error() string { return e.Service + " is down" }

// TestHandlerErrorKeepsIdentity: a handler's Go error leaves the adapter as
// the same value (not joined, not wrapped), so Lambda's errorType and
// errors.As see the user's type (issue 10, defect 4); the key is released.
func TestHandlerErrorKeepsIdentity(t *testing.T) {
	userErr := &upstreamError{Service: "psp"}
	runs := 0
	h := apigw.WrapV2(idempotent.NewMemoryStore(), func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		runs++
		return events.APIGatewayV2HTTPResponse{}, userErr
	})
	ev := loadV2(t)
	for range 2 {
		_, err := h(context.Background(), ev)
		if err != userErr {
			t.Fatalf("WrapV2 returned %T %v, want the handler's error value itself", err, err)
		}
		if ue, ok := errors.AsType[*upstreamError](err); !ok || ue.Service != "psp" {
			t.Fatalf("errors.As = %v, %v", ue, ok)
		}
	}
	if runs != 2 {
		t.Fatalf("runs = %d, want 2 (the error released the key)", runs)
	}
}
