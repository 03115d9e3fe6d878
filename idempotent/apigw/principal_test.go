package apigw

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

func TestPrincipal(t *testing.T) {
	jwt := &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": "u-1", "iss": "https://issuer"}}
	iam := &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserARN: "arn:aws:iam::1:user/a"}
	tests := []struct {
		name string
		req  interface {
			Principal(context.Context) (string, error)
		}
		want string
		// unidentified: the request is refused (*httpidem.UnidentifiedCallerError)
		unidentified bool
	}{
		{name: "v2 none", req: &v2Request{ev: &events.APIGatewayV2HTTPRequest{}}, want: ""},
		{name: "v2 JWT sub and issuer", req: &v2Request{ev: &events.APIGatewayV2HTTPRequest{RequestContext: events.APIGatewayV2HTTPRequestContext{
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: jwt, IAM: iam}}}}, want: "jwt:https://issuer u-1"},
		{name: "v2 JWT without sub falls to IAM", req: &v2Request{ev: &events.APIGatewayV2HTTPRequest{RequestContext: events.APIGatewayV2HTTPRequestContext{
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"iss": "x"}}, IAM: iam}}}}, want: "iam:arn:aws:iam::1:user/a"},
		{name: "v2 Lambda principalId", req: &v2Request{ev: &events.APIGatewayV2HTTPRequest{RequestContext: events.APIGatewayV2HTTPRequestContext{
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: map[string]any{"principalId": "p-9"}}}}}, want: "lambda:p-9"},
		{name: "v2 Lambda without principalId", req: &v2Request{ev: &events.APIGatewayV2HTTPRequest{RequestContext: events.APIGatewayV2HTTPRequestContext{
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: map[string]any{"key": "value"}}}}}, unidentified: true},
		{name: "v2 Cognito identity before the shared role session", req: &v2Request{ev: &events.APIGatewayV2HTTPRequest{RequestContext: events.APIGatewayV2HTTPRequestContext{
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
				UserARN:         "arn:aws:sts::1:assumed-role/R/CognitoIdentityCredentials",
				CognitoIdentity: events.APIGatewayV2HTTPRequestContextAuthorizerCognitoIdentity{IdentityID: "id-1", IdentityPoolID: "pool"}}}}}}, want: "cognito:pool id-1"},
		{name: "v1 shared role session, API key present", req: &v1Request{ev: &events.APIGatewayProxyRequest{RequestContext: events.APIGatewayProxyRequestContext{
			Identity: events.APIGatewayRequestIdentity{UserArn: "arn:aws:sts::1:assumed-role/R/CognitoIdentityCredentials", APIKeyID: "k"}}}}, unidentified: true},
		{name: "v1 Cognito claims", req: &v1Request{ev: &events.APIGatewayProxyRequest{RequestContext: events.APIGatewayProxyRequestContext{
			Authorizer: map[string]any{"claims": map[string]any{"sub": "u-2", "iss": "https://cognito"}, "principalId": "ignored"}}}}, want: "jwt:https://cognito u-2"},
		{name: "v1 IAM user before principalId", req: &v1Request{ev: &events.APIGatewayProxyRequest{RequestContext: events.APIGatewayProxyRequestContext{
			Identity: events.APIGatewayRequestIdentity{UserArn: "arn:aws:iam::1:user/b", APIKeyID: "k"}, Authorizer: map[string]any{"principalId": "p"}}}}, want: "iam:arn:aws:iam::1:user/b"},
		{name: "v1 Lambda authorizer principalId", req: &v1Request{ev: &events.APIGatewayProxyRequest{RequestContext: events.APIGatewayProxyRequestContext{
			Identity: events.APIGatewayRequestIdentity{APIKeyID: "k"}, Authorizer: map[string]any{"principalId": "admin"}}}}, want: "lambda:admin"},
		{name: "v1 API key id", req: &v1Request{ev: &events.APIGatewayProxyRequest{RequestContext: events.APIGatewayProxyRequestContext{
			Identity: events.APIGatewayRequestIdentity{APIKeyID: "key-id-1"}}}}, want: "apikey:key-id-1"},
		{name: "URL IAM", req: &urlRequest{ev: &events.LambdaFunctionURLRequest{RequestContext: events.LambdaFunctionURLRequestContext{
			Authorizer: &events.LambdaFunctionURLRequestContextAuthorizerDescription{IAM: &events.LambdaFunctionURLRequestContextAuthorizerIAMDescription{UserARN: "arn:u"}}}}}, want: "iam:arn:u"},
		{name: "URL none", req: &urlRequest{ev: &events.LambdaFunctionURLRequest{}}, want: ""},
		{name: "ALB none", req: &albRequest{ev: &events.ALBTargetGroupRequest{}}, want: ""},
		{name: "scope function overrides", req: &v2Request{ev: &events.APIGatewayV2HTTPRequest{RequestContext: events.APIGatewayV2HTTPRequestContext{
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: jwt}}},
			scope: func(context.Context, events.APIGatewayV2HTTPRequest) (string, error) { return "tenant-7", nil }}, want: "tenant-7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.req.Principal(context.Background())
			if tt.unidentified {
				if _, ok := errors.AsType[*httpidem.UnidentifiedCallerError](err); !ok || got != "" {
					t.Fatalf("Principal() = %q, %v; want an *UnidentifiedCallerError", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Principal() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
