package httpidem_test

// The adapters under test, behind one neutral request/response shape, so the
// whole §4 matrix (matrix_test.go) runs through every one of them: API
// Gateway REST v1, HTTP API v2, Function URL, ALB (single- and multi-value
// headers) from the real sample events in events/, and net/http over real
// HTTP (httptest).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
)

// req is a request in adapter-neutral terms.
type req struct {
	Method string
	Query  string  // raw query string
	Key    *string // Idempotency-Key; nil: no header
	// Keys are repeated Idempotency-Key headers, as each front delivers
	// them: joined with a comma (v2, Function URL, ALB without multi-value
	// headers), a multi-value list (v1, ALB multi-value), several lines
	// (net/http).
	Keys    []string
	Path    string // "": /payments
	Headers map[string]string
	Body    string // as sent (base64 text when Base64)
	Base64  bool
	User    string // caller principal; "": the sample's own (or none)
}

// resp is a response in adapter-neutral terms.
type resp struct {
	Status  int
	Headers map[string]string
	Multi   map[string][]string
	Cookies []string
	Body    string
	Base64  bool
}

type handler func(ctx context.Context, r req) (resp, error)

// opts are the options every adapter translates into its own.
type opts struct {
	clock     func() time.Time
	require   bool
	wait      time.Duration
	fpHeaders []string
	stored    func(int) bool
	methods   []string
}

type adapter struct {
	name string
	// goErrors: the adapter returns the handler's Go errors (Lambda); the
	// net/http adapter's test handler answers them 500 instead.
	goErrors bool
	build    func(t *testing.T, store idempotent.Store, h handler, o opts) func(context.Context, req) (resp, error)
}

func ptr(s string) *string { return &s }

func loadEvent[E any](t *testing.T, file string) E {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "events", file))
	if err != nil {
		t.Fatal(err)
	}
	var e E
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return e
}

// guardOf is the guard of every front: the matrix's clock, name and wait.
func guardOf(store idempotent.Store, o opts) *idempotent.Guard {
	core := []idempotent.Option{idempotent.WithClock(o.clock), idempotent.WithName("matrix")}
	if o.wait > 0 {
		core = append(core, idempotent.WithWait(o.wait))
	}
	return idempotent.New(store, core...)
}

func apigwOpts(o opts, scope apigw.Option) []apigw.Option {
	var out []apigw.Option
	if o.require {
		out = append(out, apigw.WithRequireKey())
	}
	if o.fpHeaders != nil {
		out = append(out, apigw.WithFingerprintHeaders(o.fpHeaders...))
	}
	if o.stored != nil {
		out = append(out, apigw.WithStoredStatus(o.stored))
	}
	if o.methods != nil {
		out = append(out, apigw.WithMethods(o.methods...))
	}
	if scope != nil {
		out = append(out, scope)
	}
	return out
}

// setHeaders replaces the Idempotency-Key and adds the extra headers in an
// event's maps (either may be nil).
func setHeaders(single map[string]string, multi map[string][]string, r req) (map[string]string, map[string][]string) {
	del := func(name string) {
		for k := range single {
			if strings.EqualFold(k, name) {
				delete(single, k)
			}
		}
		for k := range multi {
			if strings.EqualFold(k, name) {
				delete(multi, k)
			}
		}
	}
	del("idempotency-key")
	set := func(k, v string) {
		del(k)
		if single != nil {
			single[k] = v
		}
		if multi != nil {
			multi[k] = []string{v}
		}
	}
	if r.Key != nil {
		set("Idempotency-Key", *r.Key)
	}
	if r.Keys != nil {
		del("Idempotency-Key")
		if single != nil {
			single["Idempotency-Key"] = strings.Join(r.Keys, ",")
		}
		if multi != nil {
			multi["Idempotency-Key"] = r.Keys
		}
	}
	for k, v := range r.Headers {
		set(k, v)
	}
	if r.User != "" {
		set("x-test-user", r.User)
	}
	return single, multi
}

func path(r req) string {
	if r.Path == "" {
		return "/payments"
	}
	return r.Path
}

func method(r req) string {
	if r.Method == "" {
		return http.MethodPost
	}
	return r.Method
}

// testUser is the scope function of the adapters without an authorizer.
func testUser(header func(string) []string) string {
	if v := header("x-test-user"); len(v) > 0 {
		return "user:" + v[0]
	}
	return ""
}

func queryMaps(raw string) (map[string]string, map[string][]string) {
	if raw == "" {
		return nil, nil
	}
	single, multi := map[string]string{}, map[string][]string{}
	for _, kv := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(kv, "=")
		single[k] = v
		multi[k] = append(multi[k], v)
	}
	return single, multi
}

var adapters = []adapter{
	{
		name: "v2", goErrors: true,
		build: func(t *testing.T, store idempotent.Store, h handler, o opts) func(context.Context, req) (resp, error) {
			base := loadEvent[events.APIGatewayV2HTTPRequest](t, "apigw-v2-post-payment.json")
			w := apigw.WrapV2(guardOf(store, o), func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				r, err := h(ctx, req{Method: e.RequestContext.HTTP.Method, Query: e.RawQueryString, Body: e.Body, Base64: e.IsBase64Encoded})
				return events.APIGatewayV2HTTPResponse{StatusCode: r.Status, Headers: r.Headers, MultiValueHeaders: r.Multi, Cookies: r.Cookies, Body: r.Body, IsBase64Encoded: r.Base64}, err
			}, apigwOpts(o, nil)...)
			return func(ctx context.Context, r req) (resp, error) {
				e := base
				e.Headers = maps.Clone(base.Headers)
				e.Headers, _ = setHeaders(e.Headers, nil, r)
				e.RequestContext.HTTP.Method = method(r)
				e.RawPath, e.RequestContext.HTTP.Path = path(r), path(r)
				e.RawQueryString = r.Query
				e.Body, e.IsBase64Encoded = r.Body, r.Base64
				if r.User != "" {
					e.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
						JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": r.User, "iss": "https://issuer.example"}},
					}
				}
				out, err := w(ctx, e)
				return resp{Status: out.StatusCode, Headers: out.Headers, Multi: out.MultiValueHeaders, Cookies: out.Cookies, Body: out.Body, Base64: out.IsBase64Encoded}, err
			}
		},
	},
	{
		name: "v1", goErrors: true,
		build: func(t *testing.T, store idempotent.Store, h handler, o opts) func(context.Context, req) (resp, error) {
			base := loadEvent[events.APIGatewayProxyRequest](t, "apigw-v1-post-payment.json")
			w := apigw.WrapV1(guardOf(store, o), func(ctx context.Context, e events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
				r, err := h(ctx, req{Method: e.HTTPMethod, Body: e.Body, Base64: e.IsBase64Encoded})
				return events.APIGatewayProxyResponse{StatusCode: r.Status, Headers: r.Headers, MultiValueHeaders: r.Multi, Body: r.Body, IsBase64Encoded: r.Base64}, err
			}, apigwOpts(o, nil)...)
			return func(ctx context.Context, r req) (resp, error) {
				e := base
				e.Headers, e.MultiValueHeaders = setHeaders(maps.Clone(base.Headers), maps.Clone(base.MultiValueHeaders), r)
				e.HTTPMethod = method(r)
				e.Path = path(r)
				e.QueryStringParameters, e.MultiValueQueryStringParameters = queryMaps(r.Query)
				e.Body, e.IsBase64Encoded = r.Body, r.Base64
				if r.User != "" {
					e.RequestContext.Authorizer = map[string]any{"principalId": r.User}
				}
				out, err := w(ctx, e)
				return resp{Status: out.StatusCode, Headers: out.Headers, Multi: out.MultiValueHeaders, Body: out.Body, Base64: out.IsBase64Encoded}, err
			}
		},
	},
	{
		name: "url", goErrors: true,
		build: func(t *testing.T, store idempotent.Store, h handler, o opts) func(context.Context, req) (resp, error) {
			base := loadEvent[events.LambdaFunctionURLRequest](t, "lambda-url-post-payment.json")
			w := apigw.WrapURL(guardOf(store, o), func(ctx context.Context, e events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
				r, err := h(ctx, req{Method: e.RequestContext.HTTP.Method, Query: e.RawQueryString, Body: e.Body, Base64: e.IsBase64Encoded})
				return events.LambdaFunctionURLResponse{StatusCode: r.Status, Headers: r.Headers, Cookies: r.Cookies, Body: r.Body, IsBase64Encoded: r.Base64}, err
			}, apigwOpts(o, nil)...)
			return func(ctx context.Context, r req) (resp, error) {
				e := base
				e.Headers, _ = setHeaders(maps.Clone(base.Headers), nil, r)
				e.RequestContext.HTTP.Method = method(r)
				e.RawPath, e.RequestContext.HTTP.Path = path(r), path(r)
				e.RawQueryString = r.Query
				e.Body, e.IsBase64Encoded = r.Body, r.Base64
				if r.User != "" {
					e.RequestContext.Authorizer = &events.LambdaFunctionURLRequestContextAuthorizerDescription{
						IAM: &events.LambdaFunctionURLRequestContextAuthorizerIAMDescription{UserARN: "arn:aws:iam::111122223333:user/" + r.User},
					}
				}
				out, err := w(ctx, e)
				return resp{Status: out.StatusCode, Headers: out.Headers, Cookies: out.Cookies, Body: out.Body, Base64: out.IsBase64Encoded}, err
			}
		},
	},
	albAdapter("alb", "alb-post-payment.json"),
	albAdapter("alb-multi", "alb-post-payment-multivalue.json"),
	{
		name: "net/http",
		build: func(t *testing.T, store idempotent.Store, h handler, o opts) func(context.Context, req) (resp, error) {
			mo := []idemhttp.Option{idemhttp.WithScope(func(r *http.Request) (string, error) { return testUser(r.Header.Values), nil })}
			if o.require {
				mo = append(mo, idemhttp.WithRequireKey())
			}
			if o.fpHeaders != nil {
				mo = append(mo, idemhttp.WithFingerprintHeaders(o.fpHeaders...))
			}
			if o.stored != nil {
				mo = append(mo, idemhttp.WithStoredStatus(o.stored))
			}
			if o.methods != nil {
				mo = append(mo, idemhttp.WithMethods(o.methods...))
			}
			srv := httptest.NewServer(idemhttp.Middleware(guardOf(store, o), mo...)(http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
				body, _ := io.ReadAll(hr.Body)
				r, err := h(hr.Context(), req{Method: hr.Method, Query: hr.URL.RawQuery, Body: string(body)})
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				for k, v := range r.Headers {
					w.Header().Set(k, v)
				}
				for k, vs := range r.Multi {
					for _, v := range vs {
						w.Header().Add(k, v)
					}
				}
				for _, c := range r.Cookies {
					w.Header().Add("Set-Cookie", c)
				}
				w.WriteHeader(r.Status)
				b := []byte(r.Body)
				if r.Base64 {
					b, _ = base64.StdEncoding.DecodeString(r.Body)
				}
				_, _ = w.Write(b)
			})))
			t.Cleanup(srv.Close)
			return func(ctx context.Context, r req) (resp, error) {
				body := []byte(r.Body)
				if r.Base64 {
					body, _ = base64.StdEncoding.DecodeString(r.Body)
				}
				u := srv.URL + path(r)
				if r.Query != "" {
					u += "?" + r.Query
				}
				hr, err := http.NewRequestWithContext(ctx, method(r), u, bytes.NewReader(body))
				if err != nil {
					return resp{}, err
				}
				hr.Header.Set("Content-Type", "application/json")
				_, _ = setHeaders(nil, hr.Header, r)
				if r.Keys != nil {
					hr.Header.Del("Idempotency-Key")
					for _, k := range r.Keys {
						hr.Header.Add("Idempotency-Key", k) // one header line each
					}
				}
				res, err := srv.Client().Do(hr)
				if err != nil {
					return resp{}, err
				}
				defer res.Body.Close()
				b, err := io.ReadAll(res.Body)
				if err != nil {
					return resp{}, err
				}
				res.Header.Del("Date") // set by the server on every response
				return resp{Status: res.StatusCode, Multi: res.Header, Body: string(b)}, nil
			}
		},
	},
}

func albAdapter(name, file string) adapter {
	return adapter{
		name: name, goErrors: true,
		build: func(t *testing.T, store idempotent.Store, h handler, o opts) func(context.Context, req) (resp, error) {
			base := loadEvent[events.ALBTargetGroupRequest](t, file)
			scope := apigw.WithScope(func(_ context.Context, e events.ALBTargetGroupRequest) (string, error) {
				return testUser(func(n string) []string {
					if v, ok := e.MultiValueHeaders[n]; ok {
						return v
					}
					if v, ok := e.Headers[n]; ok {
						return []string{v}
					}
					return nil
				}), nil
			})
			w := apigw.WrapALB(guardOf(store, o), func(ctx context.Context, e events.ALBTargetGroupRequest) (events.ALBTargetGroupResponse, error) {
				r, err := h(ctx, req{Method: e.HTTPMethod, Body: e.Body, Base64: e.IsBase64Encoded})
				return events.ALBTargetGroupResponse{StatusCode: r.Status, Headers: r.Headers, MultiValueHeaders: r.Multi, Body: r.Body, IsBase64Encoded: r.Base64}, err
			}, apigwOpts(o, scope)...)
			return func(ctx context.Context, r req) (resp, error) {
				e := base
				e.Headers, e.MultiValueHeaders = setHeaders(maps.Clone(base.Headers), maps.Clone(base.MultiValueHeaders), r)
				e.HTTPMethod = method(r)
				e.Path = path(r)
				single, multi := queryMaps(r.Query)
				if base.MultiValueHeaders != nil {
					e.MultiValueQueryStringParameters = multi
				} else {
					e.QueryStringParameters = single
				}
				e.Body, e.IsBase64Encoded = r.Body, r.Base64
				out, err := w(ctx, e)
				return resp{Status: out.StatusCode, Headers: out.Headers, Multi: out.MultiValueHeaders, Body: out.Body, Base64: out.IsBase64Encoded}, err
			}
		},
	}
}

// header returns a response header, name case-insensitive.
func (r resp) header(name string) string {
	for k, v := range r.Multi {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// withoutReplayed returns r without the Idempotent-Replayed header, empty
// maps as nil, for exact comparison with the first response.
func (r resp) withoutReplayed() resp {
	r.Headers = maps.Clone(r.Headers)
	r.Multi = maps.Clone(r.Multi)
	for k := range r.Headers {
		if strings.EqualFold(k, apigw.HeaderReplayed) {
			delete(r.Headers, k)
		}
	}
	for k := range r.Multi {
		if strings.EqualFold(k, apigw.HeaderReplayed) {
			delete(r.Multi, k)
		}
	}
	return r.normal()
}

func (r resp) normal() resp {
	if len(r.Headers) == 0 {
		r.Headers = nil
	}
	if len(r.Multi) == 0 {
		r.Multi = nil
	}
	if len(r.Cookies) == 0 {
		r.Cookies = nil
	}
	return r
}

// clock is a manual clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// failingStore fails every operation, like an unreachable table.
type failingStore struct{}

var errUnavailable = errors.New("connection refused")

func (s *failingStore) Acquire(context.Context, idempotent.Record, time.Time) (*idempotent.Record, bool, error) {
	return nil, false, errUnavailable
}
func (s *failingStore) Get(context.Context, string) (*idempotent.Record, error) {
	return nil, errUnavailable
}
func (s *failingStore) Complete(context.Context, idempotent.Record) error { return errUnavailable }
func (s *failingStore) Release(context.Context, string, string) error     { return errUnavailable }

// failingComplete fails every Complete, after the handler ran.
type failingComplete struct{ idempotent.Store }

func (failingComplete) Complete(context.Context, idempotent.Record) error { return errUnavailable }

// corruptStore answers every acquire with a completed record whose data
// does not decode.
type corruptStore struct{ idempotent.Store }

func (corruptStore) Acquire(_ context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	return &idempotent.Record{ID: rec.ID, Status: idempotent.StatusCompleted, Expiration: now.Add(time.Hour), Data: []byte("{not json")}, false, nil
}

// pollSignal tells when a waiting duplicate polls the store (Get).
type pollSignal struct {
	idempotent.Store
	once   sync.Once
	polled chan struct{}
}

func (s *pollSignal) Get(ctx context.Context, key string) (*idempotent.Record, error) {
	s.once.Do(func() { close(s.polled) })
	return s.Store.Get(ctx, key)
}
