package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/tools/internal/rie"
)

// maxRequestBody is the largest request payload a Lambda function accepts.
const maxRequestBody = rie.MaxPayloadSize

// route is one HttpApi event: METHOD /path with {param} and {greedy+} segments.
type route struct {
	method   string // upper case, or ANY
	path     string // as in the template, or $default
	function string // logical id
}

func (r route) key() string {
	if r.path == "$default" {
		return "$default"
	}
	return r.method + " " + r.path
}

// match reports whether the route matches method and path, with its path
// parameters and a score: more literal segments win, a greedy route loses.
func (r route) match(method, path string) (params map[string]string, score int, ok bool) {
	if r.method != "ANY" && r.method != method {
		return nil, 0, false
	}
	if r.path == "$default" {
		return nil, -1, true
	}
	want := strings.Split(strings.Trim(r.path, "/"), "/")
	got := strings.Split(strings.Trim(path, "/"), "/")
	params = map[string]string{}
	for i, seg := range want {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "+}") {
			rest := strings.Join(got[min(i, len(got)):], "/")
			if rest == "" {
				return nil, 0, false
			}
			params[seg[1:len(seg)-2]] = rest
			return params, score, true
		}
		if i >= len(got) {
			return nil, 0, false
		}
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			if got[i] == "" {
				return nil, 0, false
			}
			params[seg[1:len(seg)-1]] = got[i]
			continue
		}
		if seg != got[i] {
			return nil, 0, false
		}
		score += 2
	}
	if len(got) != len(want) {
		return nil, 0, false
	}
	if len(params) == 0 {
		params = nil
	}
	return params, score + 1, true
}

// invoker runs a function by logical id.
type invoker func(ctx context.Context, function string, payload []byte) (rie.Result, error)

// httpAPI serves an HTTP API (payload format 2.0) in front of local functions.
type httpAPI struct {
	routes []route
	invoke invoker
	log    *slog.Logger
	now    func() time.Time
	newID  func() string
}

func (a *httpAPI) lookup(method, path string) (route, map[string]string, bool) {
	best, bestScore, found := route{}, 0, false
	var bestParams map[string]string
	for _, rt := range a.routes {
		params, score, ok := rt.match(method, path)
		if ok && (!found || score > bestScore) {
			best, bestScore, bestParams, found = rt, score, params, true
		}
	}
	return best, bestParams, found
}

// invokePrefix starts the Lambda Invoke API's path:
// POST /2015-03-31/functions/<name>/invocations.
const invokePrefix = "/2015-03-31/functions/"

// errNoFunction is the invoker's error for a function that is not running.
var errNoFunction = errors.New("no such function")

func (a *httpAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, invokePrefix) {
		a.serveInvoke(w, r)
		return
	}
	rt, params, ok := a.lookup(r.Method, r.URL.Path)
	if !ok {
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		writeMessage(w, http.StatusBadRequest, "Bad Request")
		return
	}
	if len(body) > maxRequestBody {
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	ev := a.toEvent(r, body, rt, params)
	payload, err := json.Marshal(ev)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	log := a.log.With("route", rt.key(), "function", rt.function, "requestId", ev.RequestContext.RequestID)
	w.Header().Set("Apigw-Requestid", ev.RequestContext.RequestID)
	res, err := a.invoke(r.Context(), rt.function, payload)
	switch {
	case errors.Is(err, rie.ErrTimeout):
		log.Error("function timed out", "err", err)
		writeMessage(w, http.StatusServiceUnavailable, "Service Unavailable")
		return
	case err != nil:
		log.Error("invocation failed", "err", err)
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	case res.Err != nil:
		log.Error("function returned an error", "errorType", res.Err.Type, "errorMessage", res.Err.Message)
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	if err := writeResponse(w, res.Payload); err != nil {
		log.Error("malformed function response", "err", err)
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	log.Info("request", "method", r.Method, "path", r.URL.Path)
}

// serveInvoke is the Lambda Invoke API (RequestResponse only), as
// `sam local start-lambda` serves it: the body is the event, the answer the
// function's payload; a handler error is a 200 with X-Amz-Function-Error:
// Unhandled and the error document as body.
func (a *httpAPI) serveInvoke(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, invokePrefix), "/invocations")
	if !ok || name == "" || strings.Contains(name, "/") || r.Method != http.MethodPost {
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	if t := r.Header.Get("X-Amz-Invocation-Type"); t != "" && t != "RequestResponse" {
		writeMessage(w, http.StatusBadRequest, "only RequestResponse invocations are supported locally")
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil || len(payload) > maxRequestBody || !json.Valid(payload) {
		writeMessage(w, http.StatusBadRequest, "the event must be JSON of at most 6 MB")
		return
	}
	res, err := a.invoke(r.Context(), name, payload)
	switch {
	case errors.Is(err, errNoFunction):
		writeMessage(w, http.StatusNotFound, err.Error())
		return
	case err != nil:
		a.log.Error("invocation failed", "function", name, "err", err)
		writeMessage(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	if res.RequestID != "" {
		w.Header().Set("X-Amzn-Requestid", res.RequestID)
	}
	if res.Err != nil {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(res.Err)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Payload)
	a.log.Info("invoke", "function", name, "requestId", res.RequestID)
}

// toEvent builds the HTTP API payload format 2.0 event for r.
func (a *httpAPI) toEvent(r *http.Request, body []byte, rt route, params map[string]string) events.APIGatewayV2HTTPRequest {
	now := a.now()
	headers := map[string]string{}
	var cookies []string
	for name, values := range r.Header {
		lower := strings.ToLower(name)
		if lower == "cookie" {
			for _, v := range values {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[lower] = strings.Join(values, ",")
	}
	host := r.Host
	headers["host"] = host
	sourceIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		sourceIP = r.RemoteAddr
	}
	headers["x-forwarded-for"] = sourceIP
	headers["x-forwarded-proto"] = "http"
	if _, port, err := net.SplitHostPort(host); err == nil {
		headers["x-forwarded-port"] = port
	}
	var query map[string]string
	if values, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(values) > 0 {
		query = map[string]string{}
		for k, v := range values {
			query[k] = strings.Join(v, ",")
		}
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              rt.key(),
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     rt.key(),
			AccountID:    "000000000000",
			Stage:        "$default",
			RequestID:    a.newID(),
			APIID:        "local",
			DomainName:   hostname(host),
			DomainPrefix: strings.Split(hostname(host), ".")[0],
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if isText(r.Header.Get("Content-Type"), body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	if claims, ok := a.bearerClaims(r.Header.Get("Authorization")); ok {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims},
		}
	}
	return ev
}

func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// isText reports whether API Gateway would pass the body as text: a textual
// media type, or no media type and valid UTF-8. Anything else is base64.
func isText(contentType string, body []byte) bool {
	if !utf8.Valid(body) {
		return false
	}
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"),
		mt == "application/json", mt == "application/xml", mt == "application/javascript",
		mt == "application/x-www-form-urlencoded", mt == "application/graphql", mt == "application/yaml":
		return true
	}
	return false
}

// bearerClaims decodes the payload of a JWT bearer token WITHOUT verifying it
// and returns its claims as API Gateway's JWT authorizer presents them (every
// value as text). Locally there is no authorizer; in AWS, API Gateway verifies
// the token before the function runs.
func (a *httpAPI) bearerClaims(authorization string) (map[string]string, bool) {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, false
	}
	claims, err := decodeJWTClaims(strings.TrimSpace(token))
	if err != nil {
		a.log.Warn("ignoring a malformed bearer token (local only)", "err", err)
		return nil, false
	}
	a.log.Warn("JWT claims passed on UNVERIFIED: local only, no authorizer checks the signature",
		"sub", claims["sub"], "iss", claims["iss"])
	return claims, true
}

func decodeJWTClaims(token string) (map[string]string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("a JWT has 3 parts, this one %d", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("JWT payload: %w", err)
	}
	var payload map[string]json.RawMessage
	if err := json.Unmarshal(raw, &payload); err != nil {
		return nil, fmt.Errorf("JWT payload: %w", err)
	}
	claims := make(map[string]string, len(payload))
	for k, v := range payload {
		claims[k] = claimText(v)
	}
	return claims, nil
}

// claimText renders a claim as API Gateway does: strings as is, numbers and
// booleans as their JSON text, arrays as "[a b]", objects as JSON.
func claimText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var list []json.RawMessage
	if json.Unmarshal(v, &list) == nil {
		parts := make([]string, len(list))
		for i, e := range list {
			parts[i] = claimText(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return string(v)
}

// writeResponse turns a function's answer into the HTTP response, as HTTP API
// does for payload format 2.0: a JSON object with statusCode is a structured
// response; any other valid JSON is the body of a 200 application/json response.
func writeResponse(w http.ResponseWriter, payload []byte) error {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(payload, &probe); err != nil || probe["statusCode"] == nil {
		if !json.Valid(payload) {
			return fmt.Errorf("the response is not JSON: %.100q", payload)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(payload)
		return nil
	}
	var res events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(payload, &res); err != nil {
		return fmt.Errorf("the response does not match the 2.0 format: %w", err)
	}
	if res.StatusCode < 100 || res.StatusCode > 599 {
		return fmt.Errorf("statusCode %d", res.StatusCode)
	}
	body := []byte(res.Body)
	if res.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(res.Body); err != nil {
			return fmt.Errorf("isBase64Encoded body: %w", err)
		}
	}
	h := w.Header()
	for _, k := range sortedKeys(res.MultiValueHeaders) {
		for _, v := range res.MultiValueHeaders[k] {
			h.Add(k, v)
		}
	}
	for _, k := range sortedKeys(res.Headers) {
		h.Set(k, res.Headers[k])
	}
	for _, c := range res.Cookies {
		h.Add("Set-Cookie", c)
	}
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(body)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeMessage writes API Gateway's own error shape, {"message": "..."}.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// newRequestID returns an id shaped like HTTP API's (base64 of random bytes).
func newRequestID() string {
	b := make([]byte, 11)
	_, _ = rand.Read(b)
	return base64.URLEncoding.EncodeToString(b)
}
