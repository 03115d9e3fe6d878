package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/tools/internal/rie"
	"github.com/idemlambda/idemlambda/tools/internal/samtemplate"
)

var testRoutes = []route{
	{method: "POST", path: "/payments", function: "PaymentsFunction"},
	{method: "GET", path: "/payments/{id}", function: "PaymentsFunction"},
	{method: "GET", path: "/payments/latest", function: "Latest"},
	{method: "ANY", path: "/files/{proxy+}", function: "Files"},
}

func TestRouteMatching(t *testing.T) {
	api := &httpAPI{routes: testRoutes}
	tests := []struct {
		name, method, path string
		wantKey            string
		wantParams         map[string]string
		wantNone           bool
	}{
		{name: "literal", method: "POST", path: "/payments", wantKey: "POST /payments"},
		{name: "trailing slash", method: "POST", path: "/payments/", wantKey: "POST /payments"},
		{name: "path parameter", method: "GET", path: "/payments/p-42", wantKey: "GET /payments/{id}", wantParams: map[string]string{"id": "p-42"}},
		{name: "literal beats parameter", method: "GET", path: "/payments/latest", wantKey: "GET /payments/latest"},
		{name: "greedy", method: "DELETE", path: "/files/a/b/c.txt", wantKey: "ANY /files/{proxy+}", wantParams: map[string]string{"proxy": "a/b/c.txt"}},
		{name: "greedy needs a segment", method: "GET", path: "/files", wantNone: true},
		{name: "wrong method", method: "PUT", path: "/payments", wantNone: true},
		{name: "too deep", method: "GET", path: "/payments/p-42/refunds", wantNone: true},
		{name: "unknown", method: "GET", path: "/", wantNone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, params, ok := api.lookup(tt.method, tt.path)
			if tt.wantNone {
				if ok {
					t.Fatalf("matched %s", rt.key())
				}
				return
			}
			if !ok || rt.key() != tt.wantKey || !reflect.DeepEqual(params, tt.wantParams) {
				t.Errorf("lookup = %s %v %v, want %s %v", rt.key(), params, ok, tt.wantKey, tt.wantParams)
			}
		})
	}
}

func jwt(t *testing.T, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256", "kid": "k"}) + "." + enc(claims) + ".c2ln"
}

func testAPI(logs io.Writer, invoke invoker) *httpAPI {
	return &httpAPI{
		routes: testRoutes,
		invoke: invoke,
		log:    slog.New(slog.NewTextHandler(logs, nil)),
		now:    func() time.Time { return time.UnixMilli(1710343200123) },
		newID:  func() string { return "req-1" },
	}
}

func TestToEvent(t *testing.T) {
	var logs bytes.Buffer
	api := testAPI(&logs, nil)
	body := []byte(`{"amount":1250}`)
	r := httptest.NewRequest("POST", "http://localhost:3000/payments?a=1&a=2&b=x%20y", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Idempotency-Key", "k-1")
	r.Header.Add("X-Multi", "one")
	r.Header.Add("X-Multi", "two")
	r.Header.Add("Cookie", "c1=v1; c2=v2")
	r.Header.Set("Authorization", "Bearer "+jwt(t, map[string]any{
		"sub": "user-1", "iss": "https://issuer.example", "exp": 1710346700, "groups": []string{"a", "b"}, "email_verified": true,
	}))
	rt, params, _ := api.lookup("POST", "/payments")
	ev := api.toEvent(r, body, rt, params)

	if ev.Version != "2.0" || ev.RouteKey != "POST /payments" || ev.RawPath != "/payments" || ev.RawQueryString != "a=1&a=2&b=x%20y" {
		t.Errorf("version %q routeKey %q rawPath %q rawQueryString %q", ev.Version, ev.RouteKey, ev.RawPath, ev.RawQueryString)
	}
	if want := map[string]string{"a": "1,2", "b": "x y"}; !reflect.DeepEqual(ev.QueryStringParameters, want) {
		t.Errorf("query = %v, want %v", ev.QueryStringParameters, want)
	}
	for k, want := range map[string]string{
		"idempotency-key": "k-1", "x-multi": "one,two", "content-type": "application/json", "host": "localhost:3000",
	} {
		if got := ev.Headers[k]; got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if _, ok := ev.Headers["cookie"]; ok {
		t.Error("the cookie header is passed in headers; HTTP API moves it to cookies")
	}
	if want := []string{"c1=v1", "c2=v2"}; !reflect.DeepEqual(ev.Cookies, want) {
		t.Errorf("cookies = %v, want %v", ev.Cookies, want)
	}
	if ev.Body != string(body) || ev.IsBase64Encoded {
		t.Errorf("body %q base64 %v; want the JSON text", ev.Body, ev.IsBase64Encoded)
	}
	rc := ev.RequestContext
	if rc.RequestID != "req-1" || rc.TimeEpoch != 1710343200123 || rc.Time != "13/Mar/2024:15:20:00 +0000" || rc.Stage != "$default" || rc.RouteKey != "POST /payments" {
		t.Errorf("requestContext = %+v", rc)
	}
	if rc.HTTP.Method != "POST" || rc.HTTP.Path != "/payments" || rc.HTTP.Protocol != "HTTP/1.1" || rc.HTTP.SourceIP == "" {
		t.Errorf("requestContext.http = %+v", rc.HTTP)
	}
	if rc.Authorizer == nil || rc.Authorizer.JWT == nil {
		t.Fatal("no JWT authorizer context")
	}
	wantClaims := map[string]string{"sub": "user-1", "iss": "https://issuer.example", "exp": "1710346700", "groups": "[a b]", "email_verified": "true"}
	if !reflect.DeepEqual(rc.Authorizer.JWT.Claims, wantClaims) {
		t.Errorf("claims = %v, want %v", rc.Authorizer.JWT.Claims, wantClaims)
	}
	if !strings.Contains(logs.String(), "UNVERIFIED") {
		t.Errorf("no warning that the claims are unverified in the log:\n%s", logs.String())
	}
}

func TestToEventBodies(t *testing.T) {
	binary := []byte{0x89, 'P', 'N', 'G', 0x00, 0xff}
	tests := []struct {
		name, contentType string
		body              []byte
		wantBody          string
		wantBase64        bool
	}{
		{name: "json", contentType: "application/json; charset=utf-8", body: []byte(`{"a":1}`), wantBody: `{"a":1}`},
		{name: "problem json", contentType: "application/problem+json", body: []byte(`{}`), wantBody: `{}`},
		{name: "text", contentType: "text/plain", body: []byte("héllo"), wantBody: "héllo"},
		{name: "form", contentType: "application/x-www-form-urlencoded", body: []byte("a=1"), wantBody: "a=1"},
		{name: "no content type", body: []byte("plain"), wantBody: "plain"},
		{name: "binary type", contentType: "application/octet-stream", body: []byte("abc"), wantBody: "YWJj", wantBase64: true},
		{name: "invalid utf-8 as text", contentType: "text/plain", body: binary, wantBody: base64.StdEncoding.EncodeToString(binary), wantBase64: true},
		{name: "empty", contentType: "application/json", body: nil, wantBody: ""},
	}
	api := testAPI(io.Discard, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/payments", bytes.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			ev := api.toEvent(r, tt.body, testRoutes[0], nil)
			if ev.Body != tt.wantBody || ev.IsBase64Encoded != tt.wantBase64 {
				t.Errorf("body %q base64 %v, want %q %v", ev.Body, ev.IsBase64Encoded, tt.wantBody, tt.wantBase64)
			}
		})
	}
}

func TestBearerTokens(t *testing.T) {
	tests := []struct {
		name, header string
		wantClaims   bool
	}{
		{name: "none", header: ""},
		{name: "basic auth", header: "Basic dXNlcjpwYXNz"},
		{name: "two parts", header: "Bearer a.b"},
		{name: "payload not base64", header: "Bearer a.!!!.c"},
		{name: "payload not an object", header: "Bearer a." + base64.RawURLEncoding.EncodeToString([]byte(`[1]`)) + ".c"},
		{name: "lower-case scheme", header: "bearer a." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"s"}`)) + ".c", wantClaims: true},
	}
	api := testAPI(io.Discard, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, ok := api.bearerClaims(tt.header)
			if ok != tt.wantClaims {
				t.Errorf("claims %v ok %v, want ok %v", claims, ok, tt.wantClaims)
			}
		})
	}
}

func TestWriteResponse(t *testing.T) {
	tests := []struct {
		name       string
		payload    string
		wantStatus int
		wantHeader http.Header
		wantBody   string
		wantErr    bool
	}{
		{
			name:       "structured",
			payload:    `{"statusCode":201,"headers":{"Content-Type":"application/json","Idempotent-Replayed":"true"},"multiValueHeaders":{"X-Multi":["a","b"]},"cookies":["s=1; Path=/","t=2"],"body":"{\"id\":\"p-1\"}"}`,
			wantStatus: 201,
			wantHeader: http.Header{"Content-Type": {"application/json"}, "Idempotent-Replayed": {"true"}, "X-Multi": {"a", "b"}, "Set-Cookie": {"s=1; Path=/", "t=2"}},
			wantBody:   `{"id":"p-1"}`,
		},
		{
			name:       "base64 body",
			payload:    `{"statusCode":200,"headers":{"Content-Type":"image/png"},"body":"iVBORw==","isBase64Encoded":true}`,
			wantStatus: 200,
			wantHeader: http.Header{"Content-Type": {"image/png"}},
			wantBody:   "\x89PNG",
		},
		{
			name:       "inferred from plain JSON",
			payload:    `{"id":"p-1"}`,
			wantStatus: 200,
			wantHeader: http.Header{"Content-Type": {"application/json"}},
			wantBody:   `{"id":"p-1"}`,
		},
		{name: "bad status", payload: `{"statusCode":0}`, wantErr: true},
		{name: "bad base64", payload: `{"statusCode":200,"body":"!!","isBase64Encoded":true}`, wantErr: true},
		{name: "not json", payload: `nope`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			err := writeResponse(rec, []byte(tt.payload))
			if tt.wantErr {
				if err == nil {
					t.Error("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody || !reflect.DeepEqual(rec.Header(), tt.wantHeader) {
				t.Errorf("got %d %v %q, want %d %v %q", rec.Code, rec.Header(), rec.Body.String(), tt.wantStatus, tt.wantHeader, tt.wantBody)
			}
		})
	}
}

func TestServeHTTPErrors(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		res        rie.Result
		err        error
		wantStatus int
		wantMsg    string
	}{
		{name: "no route", path: "/nope", wantStatus: 404, wantMsg: "Not Found"},
		{name: "handler error", path: "/payments", res: rie.Result{Err: &rie.FunctionError{Type: "boom", Message: "x"}}, wantStatus: 500, wantMsg: "Internal Server Error"},
		{name: "timeout", path: "/payments", err: rie.ErrTimeout, wantStatus: 503, wantMsg: "Service Unavailable"},
		{name: "crash", path: "/payments", err: rie.ErrExited, wantStatus: 500, wantMsg: "Internal Server Error"},
		{name: "malformed response", path: "/payments", res: rie.Result{Payload: []byte(`{"statusCode":"x"}`)}, wantStatus: 500, wantMsg: "Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := testAPI(io.Discard, func(context.Context, string, []byte) (rie.Result, error) { return tt.res, tt.err })
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, httptest.NewRequest("POST", tt.path, strings.NewReader(`{}`)))
			var msg map[string]string
			_ = json.Unmarshal(rec.Body.Bytes(), &msg)
			if rec.Code != tt.wantStatus || msg["message"] != tt.wantMsg {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantStatus, tt.wantMsg)
			}
		})
	}
}

// TestServeThroughRealFunction sends real HTTP requests through the API to a
// real aws-lambda-go function run by rie.
func TestServeThroughRealFunction(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, "./testdata/apiecho")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	emulator, err := rie.Locate("../../..")
	if err != nil {
		t.Fatal(err) // never a skip: make test installs it
	}
	fn, err := rie.Start(context.Background(), rie.Config{RIE: emulator, Binary: bin, Name: "PaymentsFunction", Output: io.Discard, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fn.Close() })
	api := testAPI(io.Discard, func(ctx context.Context, _ string, payload []byte) (rie.Result, error) {
		return fn.Invoke(ctx, payload, "")
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	req, _ := http.NewRequest("GET", srv.URL+"/payments/p-7?x=1", nil)
	req.Header.Set("Idempotency-Key", "k")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ev events.APIGatewayV2HTTPRequest
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 201 || !reflect.DeepEqual(resp.Header.Values("X-Multi"), []string{"a", "b"}) || resp.Header.Get("Set-Cookie") != "session=abc; Path=/" {
		t.Errorf("response %d %v", resp.StatusCode, resp.Header)
	}
	if resp.Header.Get("Apigw-Requestid") != "req-1" {
		t.Errorf("Apigw-Requestid = %q", resp.Header.Get("Apigw-Requestid"))
	}
	if ev.RouteKey != "GET /payments/{id}" || ev.PathParameters["id"] != "p-7" || ev.Headers["idempotency-key"] != "k" || ev.QueryStringParameters["x"] != "1" {
		t.Errorf("the function saw %+v", ev)
	}
}

func repoTemplate(t *testing.T) *samtemplate.Template {
	t.Helper()
	tpl, err := samtemplate.ParseFile("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestRoutesFromTemplate(t *testing.T) {
	got := routes(repoTemplate(t))
	want := []route{
		{method: "POST", path: "/payments", function: "PaymentsFunction"},
		{method: "GET", path: "/payments/{id}", function: "PaymentsFunction"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("routes = %+v, want %+v", got, want)
	}
}

func TestLocalEnvironment(t *testing.T) {
	tpl := repoTemplate(t)
	r := localResolver(tpl, options{region: "eu-west-1", params: paramFlag{"LogLevel": "DEBUG"}})
	fn, _ := tpl.Function("PaymentsFunction")
	got := map[string]string{}
	for k, v := range fn.Environment {
		s, err := r.Resolve(v)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		got[k] = s
	}
	want := map[string]string{"IDEMPOTENCY_TABLE": "IdempotencyTable", "PAYMENTS_TABLE": "PaymentsTable", "IDEMPOTENCY_TTL": "3600", "LOG_LEVEL": "DEBUG"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("environment = %v, want %v", got, want)
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"deploy"}, {"invoke", "-template", "../../../template.yaml"}, {"invoke", "-template", "../../../template.yaml", "BOGUS=1"}} {
		if err := run(context.Background(), args, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || errors.Is(err, errFunctionError) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}
