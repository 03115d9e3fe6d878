package apigw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

func TestMain(m *testing.M) { testdynamo.Main(m) }

// urlEvent is aws-lambda-go's Function URL request fixture (a POST with a
// body), as Lambda passes it, with an Idempotency-Key header when key is
// not empty.
func urlEvent(t *testing.T, key string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "lambda-urls-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	if key == "" {
		return b
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	ev["headers"].(map[string]any)["idempotency-key"] = key
	b, err = json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// streamedOut is a streamed response as aws-lambda-go sends it: the JSON
// prelude, eight NUL bytes, the body.
type streamedOut struct {
	Status  int               `json:"statusCode"`
	Headers map[string]string `json:"headers"`
	Cookies []string          `json:"cookies"`
	Body    string            `json:"-"`
}

func parseStreamed(t *testing.T, b []byte) streamedOut {
	t.Helper()
	prelude, body, ok := bytes.Cut(b, make([]byte, 8))
	if !ok {
		t.Fatalf("no prelude separator in %q", b)
	}
	var o streamedOut
	if err := json.Unmarshal(prelude, &o); err != nil {
		t.Fatalf("prelude %q: %v", prelude, err)
	}
	o.Body = string(body)
	return o
}

// invoke runs the wrapped handler through aws-lambda-go's handler (event
// decoding, the streamed response read to its end and closed).
func invoke(t *testing.T, w func(context.Context, events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error), event []byte) (streamedOut, error) {
	t.Helper()
	b, err := lambda.NewHandler(w).Invoke(context.Background(), event)
	if err != nil {
		return streamedOut{}, err
	}
	return parseStreamed(t, b), nil
}

// chunks is a body that arrives in parts, as a streaming handler writes it.
func chunks(parts ...string) io.Reader {
	rs := make([]io.Reader, len(parts))
	for i, p := range parts {
		rs[i] = strings.NewReader(p)
	}
	return io.MultiReader(rs...)
}

type storeCase struct {
	name  string
	store func(t *testing.T) idempotent.Store
}

func streamStores() []storeCase {
	return []storeCase{
		{"memory", func(*testing.T) idempotent.Store { return idempotent.NewMemoryStore() }},
		{"dynalite", func(t *testing.T) idempotent.Store {
			c := testdynamo.Client(t)
			return dynamostore.New(c, testdynamo.NewTable(t, c))
		}},
	}
}

func TestStreamingReplaysTheStream(t *testing.T) {
	for _, sc := range streamStores() {
		t.Run(sc.name, func(t *testing.T) {
			var runs atomic.Int64
			w := apigw.WrapURLStreaming(idempotent.New(sc.store(t)), func(_ context.Context, ev events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
				runs.Add(1)
				return &events.LambdaFunctionURLStreamingResponse{
					StatusCode: 201,
					Headers:    map[string]string{"Content-Type": "text/event-stream"},
					Cookies:    []string{"a=b"},
					Body:       chunks("data: 1\n\n", "data: 2\n\n", "echo: "+ev.Body+"\n\n"),
				}, nil
			})
			ev := urlEvent(t, "k-1")
			first, err := invoke(t, w, ev)
			if err != nil {
				t.Fatal(err)
			}
			want := "data: 1\n\ndata: 2\n\necho: Hello from client!\n\n"
			if first.Status != 201 || first.Body != want || first.Headers[apigw.HeaderReplayed] != "" {
				t.Fatalf("first: %+v", first)
			}
			second, err := invoke(t, w, ev)
			if err != nil {
				t.Fatal(err)
			}
			if second.Status != 201 || second.Body != want || second.Headers[apigw.HeaderReplayed] != "true" ||
				second.Headers["Content-Type"] != "text/event-stream" || len(second.Cookies) != 1 || second.Cookies[0] != "a=b" {
				t.Fatalf("replay: %+v", second)
			}
			if runs.Load() != 1 {
				t.Fatalf("handler ran %d times, want 1", runs.Load())
			}
		})
	}
}

func TestStreamingTooLargeSuccessIsNeverRerun(t *testing.T) {
	for _, sc := range streamStores() {
		t.Run(sc.name, func(t *testing.T) {
			var runs atomic.Int64
			big := strings.Repeat("x", 100)
			w := apigw.WrapURLStreaming(idempotent.New(sc.store(t)), func(context.Context, events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
				runs.Add(1)
				return &events.LambdaFunctionURLStreamingResponse{Body: chunks(big[:40], big[40:])}, nil
			}, apigw.WithStreamLimit(64))
			ev := urlEvent(t, "k-big")
			first, err := invoke(t, w, ev)
			if err != nil {
				t.Fatal(err)
			}
			if first.Status != 200 || first.Body != big {
				t.Fatalf("first: the whole body must be delivered: %+v", first)
			}
			for range 2 {
				dup, err := invoke(t, w, ev)
				if err != nil {
					t.Fatal(err)
				}
				var p struct{ Type string }
				if dup.Status != 410 || dup.Headers["Content-Type"] != apigw.ContentTypeProblem || json.Unmarshal([]byte(dup.Body), &p) != nil ||
					!strings.HasSuffix(p.Type, "#response-not-stored") {
					t.Fatalf("duplicate: %+v", dup)
				}
			}
			if runs.Load() != 1 {
				t.Fatalf("handler ran %d times, want 1: a delivered success is never rerun", runs.Load())
			}
		})
	}
}

// TestStreamingReleases: every way a stream ends without a storable
// success releases the key, so the retry runs the handler again.
func TestStreamingReleases(t *testing.T) {
	errMid := errors.New("upstream broke")
	errHandler := errors.New("handler failed")
	tests := []struct {
		name    string
		resp    func() (*events.LambdaFunctionURLStreamingResponse, error)
		wantErr error // what the invocation fails with; nil: a response
		status  int
	}{
		{name: "reader fails mid-way", resp: func() (*events.LambdaFunctionURLStreamingResponse, error) {
			return &events.LambdaFunctionURLStreamingResponse{Body: io.MultiReader(strings.NewReader("part"), iotestErr(errMid))}, nil
		}, wantErr: errMid},
		{name: "status not stored", resp: func() (*events.LambdaFunctionURLStreamingResponse, error) {
			return &events.LambdaFunctionURLStreamingResponse{StatusCode: 503, Body: strings.NewReader("down")}, nil
		}, status: 503},
		{name: "too large, not a success", resp: func() (*events.LambdaFunctionURLStreamingResponse, error) {
			return &events.LambdaFunctionURLStreamingResponse{StatusCode: 400, Body: strings.NewReader(strings.Repeat("e", 100))}, nil
		}, status: 400},
		{name: "handler error", resp: func() (*events.LambdaFunctionURLStreamingResponse, error) {
			return nil, errHandler
		}, wantErr: errHandler},
		{name: "nil response", resp: func() (*events.LambdaFunctionURLStreamingResponse, error) {
			return nil, nil
		}, wantErr: apigw.ErrNilStreamingResponse},
	}
	for _, sc := range streamStores() {
		for _, tt := range tests {
			t.Run(sc.name+"/"+tt.name, func(t *testing.T) {
				var runs atomic.Int64
				w := apigw.WrapURLStreaming(idempotent.New(sc.store(t)), func(context.Context, events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
					runs.Add(1)
					return tt.resp()
				}, apigw.WithStreamLimit(64))
				ev := urlEvent(t, "k-rel")
				for i := range 2 {
					o, err := invoke(t, w, ev)
					if tt.wantErr != nil {
						if !errors.Is(err, tt.wantErr) {
							t.Fatalf("invoke %d: err %v, want %v", i, err, tt.wantErr)
						}
						continue
					}
					if err != nil || o.Status != tt.status || o.Headers[apigw.HeaderReplayed] != "" {
						t.Fatalf("invoke %d: %+v %v", i, o, err)
					}
				}
				if runs.Load() != 2 {
					t.Fatalf("handler ran %d times, want 2 (key released)", runs.Load())
				}
			})
		}
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func iotestErr(err error) io.Reader { return errReader{err} }

// TestStreamingHoldsTheKeyUntilTheEnd: while the body streams, a duplicate
// gets 409; closing the stream before its end releases the key; a stream
// read to its end completes it before the last Read returns.
func TestStreamingHoldsTheKeyUntilTheEnd(t *testing.T) {
	var runs atomic.Int64
	store := idempotent.NewMemoryStore()
	h := func(context.Context, events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		runs.Add(1)
		return &events.LambdaFunctionURLStreamingResponse{StatusCode: 201, Body: strings.NewReader("0123456789")}, nil
	}
	w := apigw.WrapURLStreaming(idempotent.New(store), h)
	// Another environment over the same records: a duplicate in this one
	// would wait in memory for the stream (coalescing) instead of a 409.
	other := apigw.WrapURLStreaming(idempotent.New(&struct{ idempotent.Store }{store}), h)
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(urlEvent(t, "k-hold"), &ev); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	openOn := func(w func(context.Context, events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error)) *events.LambdaFunctionURLStreamingResponse {
		r, err := w(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	open := func() *events.LambdaFunctionURLStreamingResponse { return openOn(w) }
	status := func(r *events.LambdaFunctionURLStreamingResponse) int {
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		return parseStreamed(t, b).Status
	}

	first := open()
	if _, err := io.ReadFull(first, make([]byte, 3)); err != nil { // the prelude has begun, the body has not ended
		t.Fatal(err)
	}
	if got := status(openOn(other)); got != 409 {
		t.Fatalf("duplicate while streaming: %d, want 409", got)
	}
	if err := first.Close(); err != nil { // cut short: released
		t.Fatal(err)
	}
	if got := status(open()); got != 201 || runs.Load() != 2 {
		t.Fatalf("after a stream cut short: %d, %d runs; want 201 and a rerun", got, runs.Load())
	}
	if got := status(open()); got != 201 || runs.Load() != 2 {
		t.Fatalf("after a whole stream: %d, %d runs; want the replay", got, runs.Load())
	}
}

func TestStreamingUnguardedPassesThrough(t *testing.T) {
	var runs atomic.Int64
	w := apigw.WrapURLStreaming(idempotent.New(idempotent.NewMemoryStore()), func(context.Context, events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		runs.Add(1)
		return &events.LambdaFunctionURLStreamingResponse{StatusCode: 202, Body: strings.NewReader("ok")}, nil
	})
	for range 2 {
		o, err := invoke(t, w, urlEvent(t, ""))
		if err != nil || o.Status != 202 || o.Body != "ok" {
			t.Fatalf("%+v %v", o, err)
		}
	}
	if runs.Load() != 2 {
		t.Fatalf("runs %d", runs.Load())
	}
}

func TestStreamingPanicReleasesAndPanics(t *testing.T) {
	var runs atomic.Int64
	w := apigw.WrapURLStreaming(idempotent.New(idempotent.NewMemoryStore()), func(context.Context, events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		if runs.Add(1) == 1 {
			panic("boom")
		}
		return &events.LambdaFunctionURLStreamingResponse{Body: strings.NewReader("ok")}, nil
	})
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(urlEvent(t, "k-panic"), &ev); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Fatalf("recovered %v, want the handler's panic", p)
			}
		}()
		w(context.Background(), ev)
	}()
	o, err := invoke(t, w, urlEvent(t, "k-panic"))
	if err != nil || o.Status != 200 || o.Body != "ok" || runs.Load() != 2 {
		t.Fatalf("%+v %v runs %d", o, err, runs.Load())
	}
}

func TestStreamingConfigErrors(t *testing.T) {
	h := func(context.Context, events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		t.Fatal("handler ran")
		return nil, nil
	}
	tests := []struct {
		name string
		w    func(context.Context, events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error)
	}{
		{"nil guard", apigw.WrapURLStreaming(nil, h)},
		{"nil store", apigw.WrapURLStreaming(idempotent.New(nil), h)},
		{"nil handler", apigw.WrapURLStreaming(idempotent.New(idempotent.NewMemoryStore()), nil)},
		{"limit not positive", apigw.WrapURLStreaming(idempotent.New(idempotent.NewMemoryStore()), h, apigw.WithStreamLimit(0))},
		{"scope of another adapter", apigw.WrapURLStreaming(idempotent.New(idempotent.NewMemoryStore()), h, apigw.WithScope(func(context.Context, events.ALBTargetGroupRequest) (string, error) { return "x", nil }))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := invoke(t, tt.w, urlEvent(t, "k"))
			if err != nil || o.Status != 500 || !strings.Contains(o.Body, "misconfigured") {
				t.Fatalf("%+v %v", o, err)
			}
		})
	}
}

// TestBufferedAdaptersRefuseStreamLimit: the limit is the streaming
// wrapper's only.
func TestBufferedAdaptersRefuseStreamLimit(t *testing.T) {
	w := apigw.WrapURL(idempotent.New(idempotent.NewMemoryStore()), func(context.Context, events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
		return events.LambdaFunctionURLResponse{StatusCode: 200}, nil
	}, apigw.WithStreamLimit(10))
	r, err := w(context.Background(), fixture[events.LambdaFunctionURLRequest](t, "lambda-urls-request.json"))
	if err != nil || r.StatusCode != 500 {
		t.Fatalf("%+v %v", r, err)
	}
}

// TestStreamingDeadlineReleases: an invocation that ends before its stream
// does releases the key, without waiting for the stream to be closed.
func TestStreamingDeadlineReleases(t *testing.T) {
	var runs atomic.Int64
	ended := make(chan idempotent.Report, 4)
	g := idempotent.New(idempotent.NewMemoryStore(), idempotent.WithObserver(idempotent.Observer{Call: func(_ context.Context, e idempotent.Report) { ended <- e }}))
	w := apigw.WrapURLStreaming(g, func(context.Context, events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		runs.Add(1)
		return &events.LambdaFunctionURLStreamingResponse{Body: strings.NewReader("body")}, nil
	})
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(urlEvent(t, "k-deadline"), &ev); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	first, err := w(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	cancel()
	select {
	case e := <-ended:
		if e.Outcome != idempotent.OutcomeFailed {
			t.Fatalf("outcome %v, want failed (released)", e.Outcome)
		}
	case <-time.After(10 * time.Second): // a hang bound, not a timing assertion
		t.Fatal("the call did not end when its invocation did")
	}
	o, err := invoke(t, w, urlEvent(t, "k-deadline"))
	if err != nil || o.Status != 200 || o.Body != "body" || runs.Load() != 2 {
		t.Fatalf("%+v %v runs %d", o, err, runs.Load())
	}
}

// TestStreamingReportsRealStatus: the HTTP observer sees each streamed
// response's status: unguarded, first run (at the stream's end) and replay.
func TestStreamingReportsRealStatus(t *testing.T) {
	var mu sync.Mutex
	var got []int
	obs := idempotent.Observer{HTTP: func(_ context.Context, e idempotent.HTTPReport) {
		mu.Lock()
		got = append(got, e.Status)
		mu.Unlock()
	}}
	w := apigw.WrapURLStreaming(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithObserver(obs)), func(context.Context, events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		return &events.LambdaFunctionURLStreamingResponse{StatusCode: 202, Body: strings.NewReader("ok")}, nil
	})
	for _, key := range []string{"", "k-obs", "k-obs"} {
		if _, err := invoke(t, w, urlEvent(t, key)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || got[0] != 202 || got[1] != 202 || got[2] != 202 {
		t.Fatalf("reported statuses %v, want [202 202 202]", got)
	}
}

// TestStreamingCloseCutsABlockedRead: the runtime may close the stream
// while a Read waits in the handler's body (the connection broke); Close
// must not wait for that Read, and releases the key.
func TestStreamingCloseCutsABlockedRead(t *testing.T) {
	var runs atomic.Int64
	entered := make(chan struct{})
	w := apigw.WrapURLStreaming(idempotent.New(idempotent.NewMemoryStore()), func(context.Context, events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		if runs.Add(1) == 1 {
			pr, _ := io.Pipe() // never written: a Read blocks until Close
			return &events.LambdaFunctionURLStreamingResponse{Body: &enteredReader{pr: pr, entered: entered}}, nil
		}
		return &events.LambdaFunctionURLStreamingResponse{Body: strings.NewReader("ok")}, nil
	})
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(urlEvent(t, "k-blocked"), &ev); err != nil {
		t.Fatal(err)
	}
	first, err := w(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(first) // the prelude, then blocks in the body
		read <- err
	}()
	<-entered // the Read waits in the body now
	closed := make(chan error, 1)
	go func() { closed <- first.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second): // a hang bound, not a timing assertion
		t.Fatal("Close waited for the blocked Read")
	}
	if err := <-read; err == nil {
		t.Fatal("the cut stream read to a clean end")
	}
	o, err := invoke(t, w, urlEvent(t, "k-blocked"))
	if err != nil || o.Status != 200 || o.Body != "ok" || runs.Load() != 2 {
		t.Fatalf("%+v %v runs %d", o, err, runs.Load())
	}
}

// enteredReader signals the first Read it gets, then reads a pipe.
type enteredReader struct {
	pr      *io.PipeReader
	entered chan struct{}
	once    sync.Once
}

func (r *enteredReader) Read(p []byte) (int, error) {
	r.once.Do(func() { close(r.entered) })
	return r.pr.Read(p)
}

func (r *enteredReader) Close() error { return r.pr.Close() }
