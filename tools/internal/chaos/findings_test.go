package chaos_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
)

// TestHTTPInvalidUTF8BodiesAreDifferentPayloads is a regression test for a
// bug in idempotent/internal/httpidem found while fuzzing the fingerprint:
// CanonicalJSON accepts JSON that is not valid UTF-8 and encoding/json
// replaces every invalid byte with U+FFFD, so the bodies {"note":"\xff"} and
// {"note":"\xfe"} get the same fingerprint. A second request with the same
// Idempotency-Key and the other body is then replayed (201,
// Idempotent-Replayed) instead of being refused with 422 (contract §4). A
// fix: treat a body that is not valid UTF-8 as raw bytes (RFC 8259 §8.1
// requires UTF-8), i.e. make CanonicalJSON return ok = false for it.
func TestHTTPInvalidUTF8BodiesAreDifferentPayloads(t *testing.T) {
	h := apigw.WrapV2(idempotent.New(idempotent.NewMemoryStore()), func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusCreated, Body: `{"ok":true}`}, nil
	})
	req := func(body string) events.APIGatewayV2HTTPRequest {
		return events.APIGatewayV2HTTPRequest{
			Version: "2.0", RawPath: "/notes", Body: body,
			Headers: map[string]string{"idempotency-key": "k-1", "content-type": "application/json"},
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodPost, Path: "/notes"},
			},
		}
	}
	first, err := h(context.Background(), req("{\"note\":\"\xff\"}"))
	if err != nil || first.StatusCode != http.StatusCreated {
		t.Fatalf("first request: %d, %v", first.StatusCode, err)
	}
	second, err := h(context.Background(), req("{\"note\":\"\xfe\"}"))
	if err != nil {
		t.Fatal(err)
	}
	if second.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("same key, other body: status %d (replayed: %q), want 422", second.StatusCode, second.Headers[apigw.HeaderReplayed])
	}
}
