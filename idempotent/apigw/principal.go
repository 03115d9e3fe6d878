package apigw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// The caller principal of each front (contract §4). Each detector returns
// the principal it finds, or else what credentials the request carries
// ("" for none): callerOf turns that into the principal, "" (anonymous:
// the request carries no credentials) or an *httpidem.UnidentifiedCallerError
// (credentials without a principal: refused, never the shared scope).

func callerOf[E any](ctx context.Context, scope func(context.Context, E) (string, error), ev *E, detect func(*E) (string, string), header func(string) []string) (string, error) {
	if scope != nil {
		return scope(ctx, *ev)
	}
	p, credentials := detect(ev)
	switch {
	case p != "":
		return p, nil
	case credentials != "":
		return "", &httpidem.UnidentifiedCallerError{Credentials: credentials}
	case len(header("Authorization")) > 0:
		return "", &httpidem.UnidentifiedCallerError{Credentials: "an Authorization header (credentials the function checks itself)"}
	}
	return "", nil
}

func jwtPrincipal(iss, sub string) string {
	if iss == "" {
		return "jwt:" + sub
	}
	return "jwt:" + iss + " " + sub
}

// iamPrincipal is the principal of IAM (SigV4) authentication: the Cognito
// identity when the credentials come from an identity pool (every identity
// of a pool shares one role session, CognitoIdentityCredentials), else the
// user ARN. Without an identity id, a Cognito role session is not a
// principal: why says so.
func iamPrincipal(poolID, identityID, userARN string) (principal, why string) {
	switch {
	case identityID != "":
		return "cognito:" + poolID + " " + identityID, ""
	case strings.Contains(userARN, ":assumed-role/") && strings.HasSuffix(userARN, "/CognitoIdentityCredentials"):
		return "", "IAM credentials of a Cognito identity pool (role session CognitoIdentityCredentials, shared by every identity) without the identity id"
	case userARN != "":
		return "iam:" + userARN, ""
	}
	return "", ""
}

// v2Principal: JWT sub (+ iss), IAM (Cognito identity, user ARN), Lambda
// authorizer principalId in its context. Any other authorizer (a JWT
// without sub, a Lambda authorizer context without principalId, an empty
// one) is refused.
func v2Principal(ev *events.APIGatewayV2HTTPRequest) (principal, credentials string) {
	a := ev.RequestContext.Authorizer
	if a == nil {
		return "", ""
	}
	if a.JWT != nil {
		if sub := a.JWT.Claims["sub"]; sub != "" {
			return jwtPrincipal(a.JWT.Claims["iss"], sub), ""
		}
	}
	var why string
	if a.IAM != nil {
		if principal, why = iamPrincipal(a.IAM.CognitoIdentity.IdentityPoolID, a.IAM.CognitoIdentity.IdentityID, a.IAM.UserARN); principal != "" {
			return principal, ""
		}
	}
	if p, ok := a.Lambda["principalId"].(string); ok && p != "" {
		return "lambda:" + p, ""
	}
	switch {
	case why != "":
		return "", why
	case a.JWT != nil:
		return "", "a JWT authorizer whose claims have no sub"
	case a.IAM != nil:
		return "", "IAM authorization without a user ARN"
	case a.Lambda != nil:
		return "", "an HTTP API Lambda authorizer whose context has no principalId"
	}
	return "", "an authorizer with no JWT, IAM or Lambda context (a Lambda authorizer that returned no context)"
}

func (r *v2Request) Principal(ctx context.Context) (string, error) {
	return callerOf(ctx, r.scope, r.ev, v2Principal, r.Header)
}

// v1Principal: Cognito user pool claims sub (+ iss), IAM (Cognito identity,
// user ARN), Lambda authorizer principalId, then the API key id. An
// authorizer context with none of these is refused.
func v1Principal(ev *events.APIGatewayProxyRequest) (principal, credentials string) {
	rc := &ev.RequestContext
	if claims, ok := rc.Authorizer["claims"].(map[string]any); ok {
		if sub, _ := claims["sub"].(string); sub != "" {
			iss, _ := claims["iss"].(string)
			return jwtPrincipal(iss, sub), ""
		}
	}
	principal, why := iamPrincipal(rc.Identity.CognitoIdentityPoolID, rc.Identity.CognitoIdentityID, rc.Identity.UserArn)
	if principal != "" {
		return principal, ""
	}
	if p, ok := rc.Authorizer["principalId"].(string); ok && p != "" {
		return "lambda:" + p, ""
	}
	if why != "" {
		return "", why
	}
	for _, v := range rc.Authorizer {
		if v != nil {
			return "", "a REST API authorizer context with neither claims.sub nor principalId"
		}
	}
	if rc.Identity.APIKeyID != "" {
		return "apikey:" + rc.Identity.APIKeyID, ""
	}
	return "", ""
}

func (r *v1Request) Principal(ctx context.Context) (string, error) {
	return callerOf(ctx, r.scope, r.ev, v1Principal, r.Header)
}

// urlPrincipal: the IAM user ARN of a Function URL with AWS_IAM auth.
func urlPrincipal(ev *events.LambdaFunctionURLRequest) (principal, credentials string) {
	a := ev.RequestContext.Authorizer
	if a == nil {
		return "", ""
	}
	if a.IAM == nil {
		return "", "an authorizer with no IAM context"
	}
	principal, why := iamPrincipal("", "", a.IAM.UserARN)
	switch {
	case principal != "":
		return principal, ""
	case why != "":
		return "", why
	}
	return "", "IAM authorization without a user ARN"
}

func (r *urlRequest) Principal(ctx context.Context) (string, error) {
	return callerOf(ctx, r.scope, r.ev, urlPrincipal, r.Header)
}

// ALB authentication (authenticate-oidc, authenticate-cognito) passes the
// user in these headers. ALB sets them when the listener rule
// authenticates, but the event does not say whether it did, and a client
// can send them itself to a rule that does not: so the adapter neither
// trusts nor ignores them. A request that carries them is refused unless
// WithScope says who the caller is — WithScope(ALBOIDCScope) when every
// rule in front of the function authenticates.
const (
	headerOIDCIdentity = "x-amzn-oidc-identity"
	headerOIDCData     = "x-amzn-oidc-data"
	headerOIDCAccess   = "x-amzn-oidc-accesstoken"
)

// albPrincipal: none; ALB authentication headers are credentials.
func albPrincipal(ev *events.ALBTargetGroupRequest) (principal, credentials string) {
	for _, h := range [...]string{headerOIDCIdentity, headerOIDCData, headerOIDCAccess} {
		if len(httpidem.HeaderValues(ev.Headers, ev.MultiValueHeaders, h)) > 0 {
			return "", "ALB authentication headers (x-amzn-oidc-*), which the adapter cannot tell from ones a client sent"
		}
	}
	return "", ""
}

func (r *albRequest) Principal(ctx context.Context) (string, error) {
	return callerOf(ctx, r.scope, r.ev, albPrincipal, r.Header)
}

// ALBOIDCScope is a scope function for WrapALB behind a listener rule that
// authenticates every request (authenticate-oidc or authenticate-cognito):
//
//	apigw.WrapALB(idempotent.New(store), handle, apigw.WithScope(apigw.ALBOIDCScope))
//
// The principal is the user's subject from x-amzn-oidc-identity, with the
// issuer (iss) of the user claims in x-amzn-oidc-data when present. The
// headers are taken as ALB sets them, not verified: use it only where ALB
// authenticates, since a client can send these headers itself to a rule
// that does not (verify x-amzn-oidc-data's signature in your own scope
// function if you cannot rule that out). A request without the identity
// header is an error (500, nothing runs).
func ALBOIDCScope(_ context.Context, ev events.ALBTargetGroupRequest) (string, error) {
	header := func(n string) []string { return httpidem.HeaderValues(ev.Headers, ev.MultiValueHeaders, n) }
	ids := header(headerOIDCIdentity)
	if len(ids) != 1 || ids[0] == "" {
		return "", errors.New("apigw: ALBOIDCScope: no single x-amzn-oidc-identity header: is the request authenticated by the load balancer?")
	}
	iss := ""
	if data := header(headerOIDCData); len(data) > 0 {
		var err error
		if iss, err = jwtIssuer(data[0]); err != nil {
			return "", err
		}
	}
	return "oidc:" + iss + " " + ids[0], nil
}

// jwtIssuer reads the issuer of ALB's user-claims JWT, without verifying
// it: ALB puts the IdP's iss in the JWT header (next to signer, client,
// exp); a token with iss in its payload instead is read there.
func jwtIssuer(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("apigw: ALBOIDCScope: x-amzn-oidc-data is not a JWT")
	}
	iss := ""
	for _, seg := range parts[:2] {
		// ALB pads its base64url segments; the JWT standard does not.
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
		var v struct {
			Iss string `json:"iss"`
		}
		if err != nil || json.Unmarshal(b, &v) != nil {
			return "", errors.New("apigw: ALBOIDCScope: x-amzn-oidc-data is not a JWT of JSON objects")
		}
		if iss == "" {
			iss = v.Iss
		}
	}
	return iss, nil
}
