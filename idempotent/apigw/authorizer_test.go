package apigw_test

// Contract §4, scope: from the real sample events aws-lambda-go ships
// (testdata/, one per authorizer kind), two callers with different
// identities who pick one key never share a record, and a request whose
// credentials carry no recognisable principal is refused — never put in the
// shared anonymous scope.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
)

func fixture[E any](t *testing.T, file string) E {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var e E
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return e
}

// out is a response in neutral terms.
type out struct {
	status int
	header map[string]string
	body   string
}

func (o out) replayed() bool { return o.header[apigw.HeaderReplayed] == "true" }

// front sends a POST with Idempotency-Key "shared" as the caller id (""
// sends the fixture's own identity) and counts the handler's runs.
type front func(t *testing.T, runs *atomic.Int64, opts ...apigw.Option) func(id string) out

func handlerBody(runs *atomic.Int64) string { return fmt.Sprintf(`{"run":%d}`, runs.Add(1)) }

func v2Front(file string, set func(e *events.APIGatewayV2HTTPRequest, id string), core ...idempotent.Option) front {
	return func(t *testing.T, runs *atomic.Int64, opts ...apigw.Option) func(string) out {
		w := apigw.WrapV2(idempotent.New(idempotent.NewMemoryStore(), core...), func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{StatusCode: 201, Body: handlerBody(runs)}, nil
		}, opts...)
		return func(id string) out {
			e := fixture[events.APIGatewayV2HTTPRequest](t, file) // a deep copy
			e.RequestContext.HTTP.Method = "POST"
			if e.Headers == nil {
				e.Headers = map[string]string{}
			}
			e.Headers["idempotency-key"] = "shared"
			if set != nil {
				set(&e, id)
			}
			r, err := w(context.Background(), e)
			if err != nil {
				t.Fatal(err)
			}
			return out{r.StatusCode, r.Headers, r.Body}
		}
	}
}

func v1Front(set func(e *events.APIGatewayProxyRequest, id string)) front {
	return func(t *testing.T, runs *atomic.Int64, opts ...apigw.Option) func(string) out {
		w := apigw.WrapV1(idempotent.New(idempotent.NewMemoryStore()), func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 201, Body: handlerBody(runs)}, nil
		}, opts...)
		return func(id string) out {
			e := fixture[events.APIGatewayProxyRequest](t, "apigw-request.json")
			e.MultiValueHeaders["Idempotency-Key"] = []string{"shared"}
			set(&e, id)
			r, err := w(context.Background(), e)
			if err != nil {
				t.Fatal(err)
			}
			return out{r.StatusCode, r.Headers, r.Body}
		}
	}
}

func urlFront(set func(e *events.LambdaFunctionURLRequest, id string)) front {
	return func(t *testing.T, runs *atomic.Int64, opts ...apigw.Option) func(string) out {
		w := apigw.WrapURL(idempotent.New(idempotent.NewMemoryStore()), func(context.Context, events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
			return events.LambdaFunctionURLResponse{StatusCode: 201, Body: handlerBody(runs)}, nil
		}, opts...)
		return func(id string) out {
			e := fixture[events.LambdaFunctionURLRequest](t, "lambda-urls-request.json")
			e.Headers["idempotency-key"] = "shared"
			set(&e, id)
			r, err := w(context.Background(), e)
			if err != nil {
				t.Fatal(err)
			}
			return out{r.StatusCode, r.Headers, r.Body}
		}
	}
}

func albFront(file string, set func(e *events.ALBTargetGroupRequest, id string)) front {
	return func(t *testing.T, runs *atomic.Int64, opts ...apigw.Option) func(string) out {
		w := apigw.WrapALB(idempotent.New(idempotent.NewMemoryStore()), func(context.Context, events.ALBTargetGroupRequest) (events.ALBTargetGroupResponse, error) {
			return events.ALBTargetGroupResponse{StatusCode: 201, Body: handlerBody(runs)}, nil
		}, opts...)
		return func(id string) out {
			e := fixture[events.ALBTargetGroupRequest](t, file)
			e.HTTPMethod = "POST"
			setALB(&e, "idempotency-key", "shared")
			if set != nil {
				set(&e, id)
			}
			r, err := w(context.Background(), e)
			if err != nil {
				t.Fatal(err)
			}
			h := r.Headers
			if r.MultiValueHeaders != nil {
				h = map[string]string{}
				for k, v := range r.MultiValueHeaders {
					h[k] = v[0]
				}
			}
			return out{r.StatusCode, h, r.Body}
		}
	}
}

func setALB(e *events.ALBTargetGroupRequest, k, v string) {
	if e.MultiValueHeaders != nil {
		e.MultiValueHeaders[k] = []string{v}
		return
	}
	e.Headers[k] = v
}

// albOIDCData is an x-amzn-oidc-data value as ALB sends it: base64url
// segments with padding, the IdP's iss in the JWT header.
func albOIDCData(sub string) string {
	seg := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.URLEncoding.EncodeToString(b)
	}
	return seg(map[string]any{"alg": "ES256", "kid": "k", "signer": "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/x/y", "iss": "https://idp.example", "client": "c", "exp": 1}) +
		"." + seg(map[string]any{"sub": sub, "email": sub + "@example.com"}) + ".c2ln"
}

func TestTwoIdentitiesNeverShareARecord(t *testing.T) {
	tests := []struct {
		name  string
		front front
		opts  []apigw.Option
	}{
		{name: "v2 JWT authorizer sub", front: v2Front("apigw-v2-request-jwt-authorizer.json", func(e *events.APIGatewayV2HTTPRequest, id string) {
			e.RequestContext.Authorizer.JWT.Claims["sub"] = id
		})},
		{name: "v2 IAM, Cognito identities behind one role session", front: v2Front("apigw-v2-request-iam.json", func(e *events.APIGatewayV2HTTPRequest, id string) {
			e.RequestContext.Authorizer.IAM.UserARN = "arn:aws:sts::1234567890:assumed-role/Cognito_Auth_Role/CognitoIdentityCredentials"
			e.RequestContext.Authorizer.IAM.CognitoIdentity.IdentityID = "us-east-1:" + id
		})},
		{name: "v2 IAM user ARN", front: v2Front("apigw-v2-request-iam.json", func(e *events.APIGatewayV2HTTPRequest, id string) {
			e.RequestContext.Authorizer.IAM.CognitoIdentity = events.APIGatewayV2HTTPRequestContextAuthorizerCognitoIdentity{}
			e.RequestContext.Authorizer.IAM.UserARN = "arn:aws:iam::1234567890:user/" + id
		})},
		{name: "v2 Lambda authorizer principalId", front: v2Front("apigw-v2-request-lambda-authorizer.json", func(e *events.APIGatewayV2HTTPRequest, id string) {
			e.RequestContext.Authorizer.Lambda["principalId"] = id
		})},
		{name: "v2 Lambda authorizer without principalId, WithScope", front: v2Front("apigw-v2-request-lambda-authorizer.json", func(e *events.APIGatewayV2HTTPRequest, id string) {
			e.RequestContext.Authorizer.Lambda["userId"] = id
		}), opts: []apigw.Option{apigw.WithScope(func(_ context.Context, e events.APIGatewayV2HTTPRequest) (string, error) {
			return e.RequestContext.Authorizer.Lambda["userId"].(string), nil
		})}},
		{name: "v1 Lambda authorizer principalId", front: v1Front(func(e *events.APIGatewayProxyRequest, id string) {
			e.RequestContext.Identity = events.APIGatewayRequestIdentity{}
			e.RequestContext.Authorizer["principalId"] = id
		})},
		{name: "v1 Cognito user pool claims", front: v1Front(func(e *events.APIGatewayProxyRequest, id string) {
			e.RequestContext.Identity = events.APIGatewayRequestIdentity{}
			e.RequestContext.Authorizer = map[string]any{"claims": map[string]any{"sub": id, "iss": "https://cognito-idp.example"}}
		})},
		{name: "v1 IAM Cognito identity", front: v1Front(func(e *events.APIGatewayProxyRequest, id string) {
			e.RequestContext.Authorizer = nil
			e.RequestContext.Identity.CognitoIdentityID = id
		})},
		{name: "v1 IAM user ARN", front: v1Front(func(e *events.APIGatewayProxyRequest, id string) {
			e.RequestContext.Authorizer = nil
			e.RequestContext.Identity.CognitoIdentityID = ""
			e.RequestContext.Identity.UserArn = "arn:aws:iam::1:user/" + id
		})},
		{name: "Function URL IAM", front: urlFront(func(e *events.LambdaFunctionURLRequest, id string) {
			e.RequestContext.Authorizer.IAM.UserARN = "arn:aws:iam::111122223333:user/" + id
		})},
		{name: "ALB OIDC with ALBOIDCScope", front: albFront("alb-lambda-target-request-headers-only.json", func(e *events.ALBTargetGroupRequest, id string) {
			setALB(e, "x-amzn-oidc-identity", id)
			setALB(e, "x-amzn-oidc-data", albOIDCData(id))
		}), opts: []apigw.Option{apigw.WithScope(apigw.ALBOIDCScope)}},
		{name: "ALB multi-value OIDC with ALBOIDCScope", front: albFront("alb-lambda-target-request-multivalue-headers.json", func(e *events.ALBTargetGroupRequest, id string) {
			setALB(e, "x-amzn-oidc-identity", id)
		}), opts: []apigw.Option{apigw.WithScope(apigw.ALBOIDCScope)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs atomic.Int64
			send := tt.front(t, &runs, tt.opts...)
			alice, bob := send("alice"), send("bob")
			if alice.status != 201 || bob.status != 201 {
				t.Fatalf("statuses %d (%s), %d (%s)", alice.status, alice.body, bob.status, bob.body)
			}
			if bob.replayed() || bob.body == alice.body || runs.Load() != 2 {
				t.Fatalf("bob got alice's record: %+v / %+v (runs %d)", alice, bob, runs.Load())
			}
			if again := send("alice"); !again.replayed() || again.body != alice.body {
				t.Fatalf("alice's retry: %+v", again)
			}
		})
	}
}

func TestCredentialsWithoutPrincipalAreRefused(t *testing.T) {
	bearer := func(e *events.APIGatewayV2HTTPRequest, _ string) { e.Headers["authorization"] = "Bearer opaque-token" }
	tests := []struct {
		name  string
		front front
		want  string // in the problem detail; "": served (anonymous)
	}{
		{name: "v2 Lambda authorizer context without principalId (the sample)", front: v2Front("apigw-v2-request-lambda-authorizer.json", nil), want: "Lambda authorizer whose context has no principalId"},
		{name: "v2 Lambda authorizer that returned no context", front: v2Front("apigw-v2-request-lambda-authorizer.json", func(e *events.APIGatewayV2HTTPRequest, _ string) {
			e.RequestContext.Authorizer.Lambda = nil
		}), want: "no JWT, IAM or Lambda context"},
		{name: "v2 JWT authorizer without sub (the sample)", front: v2Front("apigw-v2-request-jwt-authorizer.json", nil), want: "no sub"},
		{name: "v2 IAM Cognito role session without identity id", front: v2Front("apigw-v2-request-iam.json", func(e *events.APIGatewayV2HTTPRequest, _ string) {
			e.RequestContext.Authorizer.IAM.CognitoIdentity = events.APIGatewayV2HTTPRequestContextAuthorizerCognitoIdentity{}
			e.RequestContext.Authorizer.IAM.UserARN = "arn:aws:sts::1234567890:assumed-role/Cognito_Auth_Role/CognitoIdentityCredentials"
		}), want: "CognitoIdentityCredentials"},
		{name: "v2 no authorizer, Authorization header", front: v2Front("apigw-v2-request-no-authorizer.json", bearer), want: "Authorization header"},
		{name: "v2 no authorizer (the sample)", front: v2Front("apigw-v2-request-no-authorizer.json", nil)},
		{name: "v1 authorizer context without principalId", front: v1Front(func(e *events.APIGatewayProxyRequest, _ string) {
			e.RequestContext.Identity = events.APIGatewayRequestIdentity{APIKeyID: "k"}
			delete(e.RequestContext.Authorizer, "principalId")
		}), want: "neither claims.sub nor principalId"},
		{name: "v1 API key only", front: v1Front(func(e *events.APIGatewayProxyRequest, _ string) {
			e.RequestContext.Identity = events.APIGatewayRequestIdentity{APIKeyID: "k"}
			e.RequestContext.Authorizer = nil
		})},
		{name: "Function URL IAM without user ARN", front: urlFront(func(e *events.LambdaFunctionURLRequest, _ string) {
			e.RequestContext.Authorizer.IAM.UserARN = ""
		}), want: "without a user ARN"},
		{name: "Function URL without auth", front: urlFront(func(e *events.LambdaFunctionURLRequest, _ string) {
			e.RequestContext.Authorizer = nil
		})},
		{name: "ALB OIDC headers without WithScope", front: albFront("alb-lambda-target-request-headers-only.json", func(e *events.ALBTargetGroupRequest, _ string) {
			setALB(e, "x-amzn-oidc-identity", "alice")
		}), want: "x-amzn-oidc"},
		{name: "ALB Authorization header", front: albFront("alb-lambda-target-request-multivalue-headers.json", func(e *events.ALBTargetGroupRequest, _ string) {
			setALB(e, "Authorization", "Bearer t")
		}), want: "Authorization header"},
		{name: "ALB (the sample)", front: albFront("alb-lambda-target-request-headers-only.json", nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs atomic.Int64
			send := tt.front(t, &runs)
			first, second := send(""), send("")
			if tt.want == "" {
				if first.status != 201 || !second.replayed() || runs.Load() != 1 {
					t.Fatalf("want served anonymously: %+v / %+v", first, second)
				}
				return
			}
			for _, r := range []out{first, second} {
				if r.status != 500 || r.header["Content-Type"] != apigw.ContentTypeProblem ||
					!strings.Contains(r.body, "#unidentified-caller") || !strings.Contains(r.body, "WithScope") || !strings.Contains(r.body, tt.want) {
					t.Fatalf("want the unidentified-caller problem naming %q and WithScope, got %+v", tt.want, r)
				}
			}
			if runs.Load() != 0 {
				t.Fatalf("handler ran %d times", runs.Load())
			}
		})
	}
}

func TestUnidentifiedCallerIsLogged(t *testing.T) {
	var buf bytes.Buffer
	var runs atomic.Int64
	send := v2Front("apigw-v2-request-lambda-authorizer.json", nil, idempotent.WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))(t, &runs)
	if r := send(""); r.status != 500 {
		t.Fatalf("%+v", r)
	}
	if log := buf.String(); !strings.Contains(log, `"level":"ERROR"`) || !strings.Contains(log, "WithScope") || !strings.Contains(log, "principalId") {
		t.Fatalf("log: %s", log)
	}
}

func TestALBOIDCScope(t *testing.T) {
	ev := func(h map[string]string) events.ALBTargetGroupRequest {
		return events.ALBTargetGroupRequest{Headers: h}
	}
	tests := []struct {
		name    string
		ev      events.ALBTargetGroupRequest
		want    string
		wantErr bool
	}{
		{name: "identity and data", ev: ev(map[string]string{"x-amzn-oidc-identity": "u-1", "x-amzn-oidc-data": albOIDCData("u-1")}), want: "oidc:https://idp.example u-1"},
		{name: "identity only", ev: ev(map[string]string{"X-Amzn-Oidc-Identity": "u-1"}), want: "oidc: u-1"},
		{name: "multi-value", ev: events.ALBTargetGroupRequest{MultiValueHeaders: map[string][]string{"x-amzn-oidc-identity": {"u-2"}}}, want: "oidc: u-2"},
		{name: "no identity", ev: ev(map[string]string{"x-amzn-oidc-data": albOIDCData("u-1")}), wantErr: true},
		{name: "two identities", ev: events.ALBTargetGroupRequest{MultiValueHeaders: map[string][]string{"x-amzn-oidc-identity": {"a", "b"}}}, wantErr: true},
		{name: "data not a JWT", ev: ev(map[string]string{"x-amzn-oidc-identity": "u-1", "x-amzn-oidc-data": "nope"}), wantErr: true},
		{name: "data not JSON", ev: ev(map[string]string{"x-amzn-oidc-identity": "u-1", "x-amzn-oidc-data": "e30.!!!.x"}), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := apigw.ALBOIDCScope(context.Background(), tt.ev)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("got %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// payError is a user's error type.
type payError struct{ code string }

func (e *payError) Error() string { return "payment declined: " + e.code }

type failingRelease struct{ idempotent.Store }

var errRelease = errors.New("release failed")

func (failingRelease) Release(context.Context, string, string) error { return errRelease }

// TestHandlerErrorKeepsIdentity: the handler's error comes back as the same
// value (Lambda's errorType is its type), joined only with a failed release.
func TestHandlerErrorKeepsIdentity(t *testing.T) {
	want := &payError{code: "card_declined"}
	h := func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{}, want
	}
	_, err := apigw.WrapV2(idempotent.New(idempotent.NewMemoryStore()), h)(context.Background(), loadV2(t))
	if err != want {
		t.Fatalf("error %T %v, want the handler's own value %T", err, err, want)
	}
	if pe, ok := errors.AsType[*payError](err); !ok || pe.code != "card_declined" {
		t.Fatalf("errors.As: %v", err)
	}

	_, err = apigw.WrapV2(idempotent.New(failingRelease{idempotent.NewMemoryStore()}), h)(context.Background(), loadV2(t))
	if _, ok := errors.AsType[*payError](err); !ok || !errors.Is(err, errRelease) {
		t.Fatalf("with a failed release: %v, want both errors", err)
	}
}
