package apigw_test

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
)

// The core's replay hook, typed with the adapter's response, decorates
// replays (before Idempotent-Replayed is added); observers see every
// request's status and the core's outcome.
func TestReplayHookAndHTTPEvents(t *testing.T) {
	var https []idempotent.HTTPReport
	var outcomes []idempotent.Outcome
	obs := idempotent.WithObserver(idempotent.Observer{
		Call: func(_ context.Context, e idempotent.Report) { outcomes = append(outcomes, e.Outcome) },
		HTTP: func(_ context.Context, e idempotent.HTTPReport) { https = append(https, e) },
	})
	hook := apigw.WithReplayHook(func(_ context.Context, r idempotent.Replay, resp events.APIGatewayV2HTTPResponse) events.APIGatewayV2HTTPResponse {
		h := make(map[string]string, len(resp.Headers)+1)
		for k, v := range resp.Headers {
			h[k] = v
		}
		h["X-Replayed-From"] = r.Outcome.String()
		resp.Headers = h
		return resp
	})
	w := apigw.WrapV2(idempotent.New(idempotent.NewMemoryStore(), obs), created, hook)
	ev := loadV2(t)
	first, err := w(context.Background(), ev)
	if err != nil || first.StatusCode != 201 || first.Headers["X-Replayed-From"] != "" {
		t.Fatalf("first = %+v, %v", first, err)
	}
	again, err := w(context.Background(), ev)
	if err != nil || again.Headers["X-Replayed-From"] != "replayed" || again.Headers[apigw.HeaderReplayed] != "true" || again.Body != first.Body {
		t.Fatalf("replay = %+v, %v", again, err)
	}
	get := ev
	get.RequestContext.HTTP.Method = "GET"
	if _, err := w(context.Background(), get); err != nil {
		t.Fatal(err)
	}
	if len(https) != 3 || https[0].Status != 201 || https[1].Status != 201 || https[2].Method != "GET" || https[0].StatusClass() != "2xx" {
		t.Fatalf("HTTP events = %+v", https)
	}
	if len(outcomes) != 2 || outcomes[0] != idempotent.OutcomeCompleted || outcomes[1] != idempotent.OutcomeReplayed {
		t.Fatalf("outcomes = %v (a GET is not guarded: no core event)", outcomes)
	}
}
