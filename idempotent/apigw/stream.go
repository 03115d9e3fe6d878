package apigw

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"sync"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// DefaultStreamLimit is the default number of body bytes of a streamed
// response that WrapURLStreaming keeps for a replay (WithStreamLimit).
const DefaultStreamLimit = 6 << 20

// WithStreamLimit sets how many body bytes of a streamed response
// WrapURLStreaming keeps for a replay (default DefaultStreamLimit). It
// applies to WrapURLStreaming only; the buffered adapters refuse it (a
// configuration error).
func WithStreamLimit(n int64) Option { return Option(httpidem.WithMaxBody(n)) }

// ErrNilStreamingResponse is returned by a WrapURLStreaming handler whose
// wrapped handler returned neither a response nor an error; the key is
// released.
var ErrNilStreamingResponse = errors.New("apigw: the streaming handler returned a nil response and no error")

// errReleased ends the run of a delivered response that is not a success
// and too large to store: the key is released (a rerun of a failed request
// is what its client expects), and the stream itself went out whole.
var errReleased = errors.New("apigw: streamed response not stored; key released")

// WrapURLStreaming is WrapURL for Function URLs in RESPONSE_STREAM invoke
// mode: h returns an events.LambdaFunctionURLStreamingResponse whose Body
// aws-lambda-go streams to the client. The result goes straight into
// lambda.Start (build with -tags lambda.norpc or on a provided runtime, as
// aws-lambda-go requires for streaming):
//
//	lambda.Start(apigw.WrapURLStreaming(idempotent.New(store), handle))
//
// Keys, scope, fingerprint, the stored-status policy and every problem
// response are WrapURL's. The key of a guarded request stays held while the
// body streams, and the body is copied, up to WithStreamLimit bytes, into
// the record as it goes out; the record is completed when the body ends,
// before the stream is closed. A duplicate gets the stored status, headers,
// cookies and body, streamed, with Idempotent-Replayed: true.
//
// A 2xx body longer than the limit was delivered but cannot be replayed:
// the key is completed without a stored response, so h never runs again for
// it, and duplicates get 410 (problem type response-not-stored). A longer
// body of any other status releases the key. A body whose reader fails
// mid-way, a stream closed before its end, a status the policy does not
// store and an error from h release the key, so a retry runs h again; the
// reader's error is passed on to aws-lambda-go as it is (the client sees a
// cut stream), h's error is returned as the same value.
//
// The returned handler is safe for concurrent use.
func WrapURLStreaming(g *idempotent.Guard, h func(context.Context, events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error), opts ...Option) func(context.Context, events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
	cfg, scope := buildStreaming(g, h == nil, opts)
	limit := cfg.MaxBody
	if limit == 0 {
		limit = DefaultStreamLimit
	}
	return func(ctx context.Context, ev events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
		req := &urlRequest{ev: &ev, scope: scope}
		return serveStream(ctx, cfg, g, req, limit, func(ctx context.Context) (*events.LambdaFunctionURLStreamingResponse, error) {
			return h(ctx, ev)
		})
	}
}

// buildStreaming is build for WrapURLStreaming, which takes a body limit.
func buildStreaming(g *idempotent.Guard, nilHandler bool, opts []Option) (*httpidem.Config, func(context.Context, events.LambdaFunctionURLRequest) (string, error)) {
	cfg := httpidem.NewConfig(g, opts)
	scope := httpidem.ScopeFunc[func(context.Context, events.LambdaFunctionURLRequest) (string, error)](cfg, fmt.Sprintf("func(context.Context, %s) (string, error)", reflect.TypeFor[events.LambdaFunctionURLRequest]()))
	if nilHandler {
		cfg.Fail("handler", errors.New("nil handler"))
	}
	cfg.Finish()
	return cfg, scope
}

// streamed is the response type the HTTP engine handles for a streaming
// handler: what is stored (status, headers, cookies, the captured body, or
// the marker of a delivered response that was not stored) and, not stored,
// the live response handed to aws-lambda-go.
type streamed struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Cookies []string          `json:"cookies,omitempty"`
	Body    []byte            `json:"body,omitempty"`
	// Unstored marks a response that was delivered whole but was too large
	// to store: the key is completed, nothing can be replayed.
	Unstored bool `json:"unstored,omitempty"`
}

func (r streamed) response() *events.LambdaFunctionURLStreamingResponse {
	return &events.LambdaFunctionURLStreamingResponse{StatusCode: r.Status, Headers: r.Headers, Cookies: r.Cookies, Body: bytes.NewReader(r.Body)}
}

type streamCodec struct{}

func (streamCodec) Status(r streamed) int { return r.Status }
func (streamCodec) Problem(p httpidem.Problem) streamed {
	return streamed{Status: p.Status, Headers: p.Headers(), Body: []byte(p.Body())}
}

// Replayed marks a stored response; the marker of a response that was
// delivered but not stored becomes the 410 problem.
func (c streamCodec) Replayed(r streamed) streamed {
	if r.Unstored {
		return c.Problem(notStoredProblem())
	}
	r.Headers = maps.Clone(r.Headers)
	r.Headers = withHeader(r.Headers, HeaderReplayed, "true")
	return r
}

// Delivered reports the marker of a response that was delivered but not
// stored (the engine's optional DeliveredCodec, once it has one).
func (streamCodec) Delivered(r streamed) bool { return r.Unstored }

func notStoredProblem() httpidem.Problem {
	return httpidem.Problem{Type: httpidem.TypeNotStored, Title: "Gone", Status: 410,
		Detail: "The request with this Idempotency-Key was processed and its response was delivered, but the response was streamed and too large to store, so it cannot be replayed. The request is not processed again; use a new key for a new request."}
}

// served is the outcome of httpidem.Serve in its goroutine.
type served struct {
	r        streamed
	err      error
	panicked bool
	panicVal any
}

// serveStream runs the engine in a goroutine, because the engine completes
// the key when the handler's run returns, and a stream ends only after
// this function has returned the response to aws-lambda-go: the run hands
// the live response out on a channel and waits for the body's end, which
// the tee reports; the tee's last Read waits for the engine to finish, so
// the record is written before the stream (and the invocation) ends.
func serveStream(ctx context.Context, cfg *httpidem.Config, g *idempotent.Guard, req httpidem.Request, limit int64, run func(context.Context) (*events.LambdaFunctionURLStreamingResponse, error)) (*events.LambdaFunctionURLStreamingResponse, error) {
	live := make(chan *events.LambdaFunctionURLStreamingResponse, 1)
	done := make(chan served, 1)
	go func() {
		var s served
		defer func() {
			if p := recover(); p != nil {
				s = served{panicked: true, panicVal: p}
			}
			done <- s
		}()
		s.r, s.err = httpidem.Serve(ctx, cfg, g, req, streamCodec{}, func(ctx context.Context) (streamed, error) {
			resp, err := run(ctx)
			if err != nil {
				return streamed{}, err
			}
			if resp == nil {
				return streamed{}, ErrNilStreamingResponse
			}
			if _, guarded := idempotent.RecordIDFromContext(ctx); !guarded {
				live <- resp                                                         // unguarded: passed through untouched
				return streamed{Status: cmp.Or(resp.StatusCode, http.StatusOK)}, nil // reported with its status
			}
			return runStream(ctx, resp, limit, live, done)
		})
	}()
	select {
	case resp := <-live:
		return resp, nil
	case s := <-done:
		select {
		case resp := <-live: // unguarded: the run handed the response out and returned
			return resp, nil
		default:
		}
		if s.panicked {
			panic(s.panicVal)
		}
		if s.err != nil {
			return nil, s.err
		}
		return s.r.response(), nil
	}
}

// runStream hands resp out with its body teed and waits for the body's end.
func runStream(ctx context.Context, resp *events.LambdaFunctionURLStreamingResponse, limit int64, live chan<- *events.LambdaFunctionURLStreamingResponse, done <-chan served) (streamed, error) {
	t := &tee{body: resp.Body, limit: limit, ended: make(chan error, 1), done: done, complete: make(chan struct{})}
	live <- &events.LambdaFunctionURLStreamingResponse{StatusCode: resp.StatusCode, Headers: resp.Headers, Cookies: resp.Cookies, Body: t}
	var end error
	select {
	case end = <-t.ended:
	case <-ctx.Done():
		return streamed{}, fmt.Errorf("apigw: the invocation ended before the response stream did: %w", context.Cause(ctx))
	}
	if end != io.EOF {
		return streamed{}, end
	}
	status := cmp.Or(resp.StatusCode, http.StatusOK) // what aws-lambda-go sends for 0
	out := streamed{Status: status, Headers: resp.Headers, Cookies: resp.Cookies}
	body, over := t.captured()
	if over {
		if status < 200 || status > 299 {
			return streamed{}, errReleased
		}
		out.Unstored = true
		return out, nil
	}
	out.Body = body
	return out, nil
}

// errClosed is what a tee closed before the end of its body reports.
var errClosed = errors.New("apigw: the response stream was closed before its end")

// tee passes a streamed body through, keeping up to limit bytes of it. At
// the body's end (EOF, a read error, or Close before either) it reports
// the end to the run and waits for the engine to finish with the key
// before it returns. No lock is held while the body is read, so Close can
// cut a Read that blocks (it closes the body).
type tee struct {
	body  io.Reader
	limit int64
	ended chan error    // the end, sent once
	done  <-chan served // the engine's outcome, received once (by end)

	mu       sync.Mutex
	buf      bytes.Buffer
	over     bool
	finished bool
	final    error
	complete chan struct{} // closed once the engine has finished
}

func (t *tee) Read(p []byte) (int, error) {
	t.mu.Lock()
	finished, final := t.finished, t.final
	t.mu.Unlock()
	if finished {
		return 0, final
	}
	if t.body == nil {
		return 0, t.end(io.EOF)
	}
	n, err := t.body.Read(p)
	t.mu.Lock()
	if t.finished { // closed while the body was read
		final := t.final
		t.mu.Unlock()
		return 0, final
	}
	if n > 0 && !t.over {
		if int64(t.buf.Len()+n) > t.limit {
			t.over = true
			t.buf = bytes.Buffer{}
		} else {
			t.buf.Write(p[:n])
		}
	}
	t.mu.Unlock()
	if err != nil {
		return n, t.end(err)
	}
	return n, nil
}

// end reports the body's end once and waits for the engine; a later call
// waits for the same and returns the first end.
func (t *tee) end(e error) error {
	t.mu.Lock()
	if t.finished {
		final := t.final
		t.mu.Unlock()
		<-t.complete
		return final
	}
	t.finished, t.final = true, e
	t.mu.Unlock()
	t.ended <- e
	<-t.done
	close(t.complete)
	return e
}

// captured is the body kept, or over when it outgrew the limit.
func (t *tee) captured() (body []byte, over bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.Bytes(), t.over
}

// Close ends a stream cut short (the key is released) and closes the
// handler's body if it is an io.Closer, which also ends a Read blocked in
// it.
func (t *tee) Close() error {
	t.mu.Lock()
	finished := t.finished
	t.mu.Unlock()
	if !finished {
		t.end(errClosed)
	}
	if c, ok := t.body.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
