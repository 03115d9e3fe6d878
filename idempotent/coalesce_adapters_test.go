package idempotent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// TestMain stops the dynalite this test binary started, if it started one
// (TestCoalesceAdapters' dynalite cases; make test runs one for all).
func TestMain(m *testing.M) { testdynamo.Main(m) }

// answered is what one duplicate's client got, in adapter-neutral terms.
type answered struct {
	status      int
	contentType string
	replayed    string // the Idempotent-Replayed header
	body        string
}

// work is the guarded handler's work behind every adapter: it blocks until
// the test releases it, then answers status 201 with a JSON body.
type work func(ctx context.Context) (status int, body string)

// coalesceAdapter is one HTTP-facing adapter: build wraps w over g and
// returns a function that sends one copy of the sample request (the real
// event of events/, or the same request over real HTTP) and returns what
// its client got.
type coalesceAdapter struct {
	name  string
	build func(t *testing.T, g *idempotent.Guard, w work) func(ctx context.Context) (answered, error)
}

// sampleEvent reads a real sample event from the repository's events/.
func sampleEvent[E any](t *testing.T, file string) E {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "events", file))
	if err != nil {
		t.Fatal(err)
	}
	var e E
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return e
}

func headerOf(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

var jsonCT = map[string]string{"Content-Type": "application/json"}

func albAdapterCase(name, file string) coalesceAdapter {
	return coalesceAdapter{name, func(t *testing.T, g *idempotent.Guard, w work) func(context.Context) (answered, error) {
		ev := sampleEvent[events.ALBTargetGroupRequest](t, file)
		h := apigw.WrapALB(g, func(ctx context.Context, _ events.ALBTargetGroupRequest) (events.ALBTargetGroupResponse, error) {
			status, body := w(ctx)
			if ev.MultiValueHeaders != nil {
				return events.ALBTargetGroupResponse{StatusCode: status, MultiValueHeaders: map[string][]string{"Content-Type": {"application/json"}}, Body: body}, nil
			}
			return events.ALBTargetGroupResponse{StatusCode: status, Headers: jsonCT, Body: body}, nil
		})
		return func(ctx context.Context) (answered, error) {
			out, err := h(ctx, ev)
			hdr := maps.Clone(out.Headers)
			for k, v := range out.MultiValueHeaders {
				if hdr == nil {
					hdr = map[string]string{}
				}
				hdr[k] = strings.Join(v, ",")
			}
			return answered{out.StatusCode, headerOf(hdr, "Content-Type"), headerOf(hdr, apigw.HeaderReplayed), out.Body}, err
		}
	}}
}

// netHTTPCase is idemhttp.Middleware over a real HTTP server; flush makes
// the handler flush its response (a short server-sent event stream, which
// the middleware streams through and stores).
func netHTTPCase(name string, flush bool) coalesceAdapter {
	return coalesceAdapter{name, func(t *testing.T, g *idempotent.Guard, w work) func(context.Context) (answered, error) {
		ev := sampleEvent[events.APIGatewayV2HTTPRequest](t, "apigw-v2-post-payment.json")
		srv := httptest.NewServer(idemhttp.Middleware(g)(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(rw, err.Error(), http.StatusBadRequest)
				return
			}
			status, body := w(r.Context())
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(status)
			if flush {
				half := len(body) / 2
				_, _ = io.WriteString(rw, body[:half])
				if err := http.NewResponseController(rw).Flush(); err != nil {
					t.Errorf("flush: %v", err)
				}
				body = body[half:]
			}
			_, _ = io.WriteString(rw, body)
		})))
		t.Cleanup(srv.Close)
		return func(ctx context.Context) (answered, error) {
			r, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+ev.RawPath, strings.NewReader(ev.Body))
			if err != nil {
				return answered{}, err
			}
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Idempotency-Key", headerOf(ev.Headers, "Idempotency-Key"))
			res, err := srv.Client().Do(r)
			if err != nil {
				return answered{}, err
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			return answered{res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get(idemhttp.HeaderReplayed), string(b)}, err
		}
	}}
}

var coalesceAdapters = []coalesceAdapter{
	{"apigw v1 (REST)", func(t *testing.T, g *idempotent.Guard, w work) func(context.Context) (answered, error) {
		ev := sampleEvent[events.APIGatewayProxyRequest](t, "apigw-v1-post-payment.json")
		h := apigw.WrapV1(g, func(ctx context.Context, _ events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			status, body := w(ctx)
			return events.APIGatewayProxyResponse{StatusCode: status, Headers: jsonCT, Body: body}, nil
		})
		return func(ctx context.Context) (answered, error) {
			out, err := h(ctx, ev)
			return answered{out.StatusCode, headerOf(out.Headers, "Content-Type"), headerOf(out.Headers, apigw.HeaderReplayed), out.Body}, err
		}
	}},
	{"apigw v2 (HTTP API)", func(t *testing.T, g *idempotent.Guard, w work) func(context.Context) (answered, error) {
		ev := sampleEvent[events.APIGatewayV2HTTPRequest](t, "apigw-v2-post-payment.json")
		h := apigw.WrapV2(g, func(ctx context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			status, body := w(ctx)
			return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: jsonCT, Body: body}, nil
		})
		return func(ctx context.Context) (answered, error) {
			out, err := h(ctx, ev)
			return answered{out.StatusCode, headerOf(out.Headers, "Content-Type"), headerOf(out.Headers, apigw.HeaderReplayed), out.Body}, err
		}
	}},
	{"apigw Function URL", func(t *testing.T, g *idempotent.Guard, w work) func(context.Context) (answered, error) {
		ev := sampleEvent[events.LambdaFunctionURLRequest](t, "lambda-url-post-payment.json")
		h := apigw.WrapURL(g, func(ctx context.Context, _ events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
			status, body := w(ctx)
			return events.LambdaFunctionURLResponse{StatusCode: status, Headers: jsonCT, Body: body}, nil
		})
		return func(ctx context.Context) (answered, error) {
			out, err := h(ctx, ev)
			return answered{out.StatusCode, headerOf(out.Headers, "Content-Type"), headerOf(out.Headers, apigw.HeaderReplayed), out.Body}, err
		}
	}},
	{"apigw Function URL streaming", func(t *testing.T, g *idempotent.Guard, w work) func(context.Context) (answered, error) {
		ev := sampleEvent[events.LambdaFunctionURLRequest](t, "lambda-url-post-payment.json")
		h := apigw.WrapURLStreaming(g, func(ctx context.Context, _ events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
			status, body := w(ctx)
			half := len(body) / 2
			return &events.LambdaFunctionURLStreamingResponse{StatusCode: status, Headers: jsonCT,
				Body: io.MultiReader(strings.NewReader(body[:half]), strings.NewReader(body[half:]))}, nil
		})
		return func(ctx context.Context) (answered, error) {
			out, err := h(ctx, ev)
			if err != nil {
				return answered{}, err
			}
			// Read the stream to its end, as aws-lambda-go does: the record
			// is completed (and the waiters answered) when the body ends.
			b, err := io.ReadAll(out.Body)
			if c, ok := out.Body.(io.Closer); ok {
				_ = c.Close()
			}
			return answered{out.StatusCode, headerOf(out.Headers, "Content-Type"), headerOf(out.Headers, apigw.HeaderReplayed), string(b)}, err
		}
	}},
	albAdapterCase("apigw ALB", "alb-post-payment.json"),
	albAdapterCase("apigw ALB multi-value", "alb-post-payment-multivalue.json"),
	netHTTPCase("idemhttp net/http", false),
	netHTTPCase("idemhttp net/http flushed", true),
}

// TestCoalesceAdapters: 16 concurrent duplicates of one request through each
// HTTP-facing adapter in one process (a Lambda Managed Instances environment
// running several invocations, a net/http server), over the memory store
// and over dynalite. None gets a 409: the first runs the handler, the others
// wait for it in memory and get its response replayed (the same status and
// body, Idempotent-Replayed: true). The store sees one acquire and one
// complete, and no get; on dynalite that is one PutItem and one UpdateItem.
func TestCoalesceAdapters(t *testing.T) {
	type storeCase struct {
		name string
		// store returns a fresh store and the DynamoDB requests its
		// operations sent (nil for the memory store).
		store func(t *testing.T) (idempotent.Store, *testdynamo.Counter)
	}
	stores := []storeCase{
		{"memory", func(*testing.T) (idempotent.Store, *testdynamo.Counter) { return idempotent.NewMemoryStore(), nil }},
		{"dynalite", func(t *testing.T) (idempotent.Store, *testdynamo.Counter) {
			client, calls := testdynamo.CountingClient(t)
			table := testdynamo.NewTable(t, client)
			calls.Reset() // the table's creation
			return dynamostore.New(client, table), calls
		}},
	}
	for _, sc := range stores {
		for _, a := range coalesceAdapters {
			t.Run(sc.name+"/"+a.name, func(t *testing.T) {
				inner, calls := sc.store(t)
				store := newCounting(inner)
				var obs outcomes
				var runs atomic.Int64
				gate := make(chan struct{})
				release := sync.OnceFunc(func() { close(gate) })
				t.Cleanup(release)
				send := a.build(t, idempotent.New(store, obs.option(), idempotent.WithLogger(slog.New(slog.DiscardHandler))), func(ctx context.Context) (int, string) {
					n := runs.Add(1)
					select {
					case <-gate:
					case <-ctx.Done():
					}
					return http.StatusCreated, fmt.Sprintf(`{"payment":"p-%d","status":"captured"}`, n)
				})
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				got := make([]answered, dupes)
				errs := make([]error, dupes)
				var returned atomic.Int64
				var wg sync.WaitGroup
				for i := range dupes {
					wg.Go(func() {
						got[i], errs[i] = send(ctx)
						returned.Add(1)
					})
				}
				// Hold the first run until every other duplicate waits in
				// memory for it, or has come back without waiting (a 409:
				// reported below).
				deadline := time.Now().Add(20 * time.Second)
				for idempotent.FlightWaiters(store) < dupes-1 && returned.Load() < dupes-1 && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				waiting := idempotent.FlightWaiters(store)
				release()
				wg.Wait()

				want := answered{status: http.StatusCreated, contentType: "application/json", body: `{"payment":"p-1","status":"captured"}`}
				fresh, conflicts, differ := 0, 0, 0
				var example answered
				for i := range dupes {
					if errs[i] != nil {
						t.Errorf("duplicate %d: %v", i, errs[i])
						continue
					}
					if got[i].replayed != "true" {
						fresh++
					}
					if got[i].status == http.StatusConflict {
						conflicts++
					}
					if r := got[i]; r.status != want.status || r.contentType != want.contentType || r.body != want.body {
						differ++
						example = r
					}
				}
				if conflicts > 0 {
					t.Errorf("%d of %d concurrent duplicates got 409 in one process (%d waited in memory)", conflicts, dupes, waiting)
				}
				if differ > 0 {
					t.Errorf("%d of %d duplicates got another response than the first run's %d %s %s, e.g. %d %s %s",
						differ, dupes, want.status, want.contentType, want.body, example.status, example.contentType, example.body)
				}
				if runs.Load() != 1 || fresh != 1 || waiting != dupes-1 {
					t.Errorf("handler runs %d, responses not replayed %d, waiting in memory %d; want 1, 1, %d", runs.Load(), fresh, waiting, dupes-1)
				}
				if store.acquire.Load() != 1 || store.get.Load() != 0 || store.complete.Load() != 1 || store.release.Load() != 0 {
					t.Errorf("store calls: acquire %d, get %d, complete %d, release %d; want 1, 0, 1, 0",
						store.acquire.Load(), store.get.Load(), store.complete.Load(), store.release.Load())
				}
				if calls != nil {
					if got := calls.Counts(); !maps.Equal(got, map[string]int{"PutItem": 1, "UpdateItem": 1}) {
						t.Errorf("DynamoDB requests %v, want one PutItem and one UpdateItem", got)
					}
				}
				if obs.get(idempotent.OutcomeCompleted) != 1 || obs.get(idempotent.OutcomeCoalesced) != dupes-1 {
					t.Errorf("outcomes %v, want 1 completed and %d coalesced", obs.n, dupes-1)
				}
			})
		}
	}
}
