package idemclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemclient"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// The tests in this file put the transport in front of our own server: the
// idemhttp middleware over the memory store, on httptest, over real HTTP.
// They assert how many attempts reach the server and what the caller gets
// for each answer the server can give.

// apiServer serves h (a handler behind the middleware) on httptest and
// records every attempt that reaches it.
func apiServer(t *testing.T, h http.Handler) *server {
	t.Helper()
	var s *server
	s = newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		r.Body = io.NopCloser(strings.NewReader(s.Hits()[n-1].body))
		h.ServeHTTP(w, r)
	})
	return s
}

// payments is a payment handler that counts its runs.
type payments struct {
	runs atomic.Int32
}

func (p *payments) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := p.runs.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":"p-%d"}`, n)
}

// guard returns a guard over store with a quiet logger and the given options.
func guard(store idempotent.Store, opts ...idempotent.Option) *idempotent.Guard {
	return idempotent.New(store, append([]idempotent.Option{idempotent.WithLogger(quiet())}, opts...)...)
}

// problemOf decodes a problem+json body; it fails the test for any other.
func problemOf(t *testing.T, resp *http.Response, body string) httpidem.Problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != httpidem.ContentTypeProblem {
		t.Fatalf("Content-Type %q, body %q: want a problem", ct, body)
	}
	var p httpidem.Problem
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	return p
}

// attempts collects the AttemptInfo of every attempt.
type attempts struct {
	mu    sync.Mutex
	infos []idemclient.AttemptInfo
}

func (a *attempts) option() idemclient.Option {
	return idemclient.WithOnAttempt(func(i idemclient.AttemptInfo) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.infos = append(a.infos, i)
	})
}

func (a *attempts) all() []idemclient.AttemptInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]idemclient.AttemptInfo(nil), a.infos...)
}

// corruptStore returns a memory store holding the record of a POST to
// /payments with body and key, completed, whose stored response does not
// decode. The record's id and fingerprint are learnt from a first run; the
// record is written the way the core writes records (Acquire, then
// Complete).
func corruptStore(t *testing.T, body, key string) idempotent.Store {
	t.Helper()
	probe := idempotent.NewMemoryStore()
	var id string
	h := idemhttp.Middleware(guard(probe))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ = idempotent.RecordIDFromContext(r.Context())
	}))
	r := httptest.NewRequest(http.MethodPost, "/payments", strings.NewReader(body))
	r.Header.Set(idemclient.HeaderKey, key)
	h.ServeHTTP(httptest.NewRecorder(), r)
	ctx := context.Background()
	done, err := probe.Get(ctx, id)
	if err != nil || done == nil {
		t.Fatalf("get %q: %v %v", id, done, err)
	}
	store := idempotent.NewMemoryStore()
	now := time.Now()
	rec := idempotent.Record{ID: id, Status: idempotent.StatusInProgress, Expiration: now.Add(time.Hour),
		LeaseExpiration: now.Add(time.Minute), Owner: "test-owner", Fingerprint: done.Fingerprint}
	if _, ok, err := store.Acquire(ctx, rec, now); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	rec.Status, rec.LeaseExpiration, rec.Data = idempotent.StatusCompleted, time.Time{}, []byte(`{"v":99}`)
	if err := store.Complete(ctx, rec); err != nil {
		t.Fatal(err)
	}
	return store
}

// TestServerPermanentProblems: a 500 that our server marks as permanent
// (problem types configuration-error, unidentified-caller, corrupt-record:
// another attempt with this key cannot succeed) is not retried. The caller
// gets the response as it came, its whole body unread, and AttemptInfo
// names the problem type. The budget counts it as an answer.
func TestServerPermanentProblems(t *testing.T) {
	tests := []struct {
		name    string
		handler func(t *testing.T) http.Handler
		header  http.Header
		typ     string
	}{
		{
			name: "configuration-error",
			handler: func(*testing.T) http.Handler {
				return idemhttp.Middleware(guard(idempotent.NewMemoryStore()), idemhttp.WithMaxBody(-1))(&payments{})
			},
			typ: httpidem.TypeConfig,
		},
		{
			name: "unidentified-caller",
			handler: func(*testing.T) http.Handler {
				return idemhttp.Middleware(guard(idempotent.NewMemoryStore()))(&payments{})
			},
			header: http.Header{"Authorization": {"Bearer t0k3n"}},
			typ:    httpidem.TypeUnidentifiedCaller,
		},
		{
			name: "corrupt-record",
			handler: func(t *testing.T) http.Handler {
				return idemhttp.Middleware(guard(corruptStore(t, `{"amount":1250}`, "k-corrupt")))(&payments{})
			},
			header: http.Header{idemclient.HeaderKey: {"k-corrupt"}},
			typ:    httpidem.TypeCorruptRecord,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := apiServer(t, tt.handler(t))
			budget := idemclient.NewRetryBudget(100)
			budget.Take(10) // room for the refund to show
			var seen attempts
			var logs logBuffer
			rt := newTransport(t, newFakeClock(), idemclient.WithRetryBudget(budget), seen.option(),
				idemclient.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
			req := newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{"amount":1250}`)
			for k, vs := range tt.header {
				req.Header[k] = vs
			}
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			if n := len(srv.Hits()); n != 1 || idemclient.AttemptsOf(resp) != 1 {
				t.Fatalf("%d attempts (AttemptsOf %d), want 1: another attempt cannot succeed", n, idemclient.AttemptsOf(resp))
			}
			p := problemOf(t, resp, body)
			if resp.StatusCode != 500 || p.Type != tt.typ || p.Status != 500 || p.Detail == "" {
				t.Fatalf("got %d %s, want the server's 500 %s, whole", resp.StatusCode, body, tt.typ)
			}
			if int64(len(body)) != resp.ContentLength {
				t.Fatalf("read %d bytes, Content-Length %d: the caller must get the whole body", len(body), resp.ContentLength)
			}
			infos := seen.all()
			if len(infos) != 1 || infos[0].Status != 500 || infos[0].Retry || infos[0].Problem != tt.typ {
				t.Fatalf("attempt infos %+v, want one final attempt naming %s", infos, tt.typ)
			}
			if got := budget.Tokens(); got != 90+idemclient.NoRetryIncrement {
				t.Fatalf("budget %d, want %d: a permanent answer is an answer", got, 90+idemclient.NoRetryIncrement)
			}
			if out := logs.String(); !strings.Contains(out, "permanent") || !strings.Contains(out, tt.typ) {
				t.Fatalf("log %q: want the reason logged", out)
			}
		})
	}
}

// TestServerTransientProblems: a 500 of our server that is not marked
// permanent (internal-error: "retry with the same key"), and a handler's
// own 500 problem, even one with a long body, are retried as before; the
// caller gets the last response whole.
func TestServerTransientProblems(t *testing.T) {
	long := strings.Repeat("x", 256<<10)
	tests := []struct {
		name    string
		handler http.Handler
		typ     string
		detail  string
	}{
		{
			name: "internal-error",
			handler: idemhttp.Middleware(guard(idempotent.NewMemoryStore()), idemhttp.WithScope(func(*http.Request) (string, error) {
				return "", errors.New("session store down")
			}))(&payments{}),
			typ: httpidem.TypeInternal,
		},
		{
			name: "the handler's own problem, long",
			handler: idemhttp.Middleware(guard(idempotent.NewMemoryStore()))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(500)
				fmt.Fprintf(w, `{"type":"https://example.com/probs/ledger-down","status":500,"detail":%q}`, long)
			})),
			typ:    "https://example.com/probs/ledger-down",
			detail: long,
		},
		{
			// Our permanent type, but the body is past what the client
			// reads to classify it: not recognised, so retried.
			name: "a permanent type past the classification bound",
			handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(500)
				fmt.Fprintf(w, `{"detail":%q,"type":%q,"status":500}`, long, httpidem.TypeConfig)
			}),
			typ:    httpidem.TypeConfig,
			detail: long,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := apiServer(t, tt.handler)
			var seen attempts
			var read atomic.Int64 // bytes of the last response read inside RoundTrip
			base := &http.Transport{DisableKeepAlives: true}
			t.Cleanup(base.CloseIdleConnections)
			counting := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				resp, err := base.RoundTrip(r)
				if err == nil {
					read.Store(0)
					resp.Body = &countingBody{ReadCloser: resp.Body, n: &read}
				}
				return resp, err
			})
			c := newFakeClock()
			rt := idemclient.NewTransport(counting, idemclient.WithTestTime(c.Now, c.Sleep, func() float64 { return 1 }),
				idemclient.WithLogger(quiet()), idemclient.WithMaxAttempts(3), seen.option())
			resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{"amount":1250}`))
			if err != nil {
				t.Fatal(err)
			}
			if n := read.Load(); n > 16<<10 {
				t.Fatalf("the transport read %d bytes of the returned body: the classification must be bounded", n)
			}
			body := readBody(t, resp)
			if n := len(srv.Hits()); n != 3 || idemclient.AttemptsOf(resp) != 3 {
				t.Fatalf("%d attempts, want 3 (the bound)", n)
			}
			p := problemOf(t, resp, body)
			if resp.StatusCode != 500 || p.Type != tt.typ || tt.detail != "" && p.Detail != tt.detail {
				t.Fatalf("got %d %.200s, want the last 500 %s, whole", resp.StatusCode, body, tt.typ)
			}
			for _, i := range seen.all() {
				if i.Status != 500 || i.Retry != (i.Attempt < 3) {
					t.Fatalf("attempt %+v", i)
				}
			}
		})
	}
}

// countingBody counts the bytes read from a response body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// TestServerResendWithAttemptErrorKey: the key of an *AttemptError (and
// KeyOf) is a value the caller can put back in the header to send the same
// logical request again. The payment was made, every answer lost; the
// resend with ae.Key gets its replay, for keys the caller wrote bare and
// quoted, including quoted ones that cannot be sent bare (a space, a
// comma, a quote, surrounding spaces).
func TestServerResendWithAttemptErrorKey(t *testing.T) {
	for _, header := range []string{`abc`, `"abc"`, `"order 42"`, `"a,b"`, `"say \"hi\""`, `" padded "`, `"back\\slash"`} {
		t.Run(header, func(t *testing.T) {
			pay := &payments{}
			api := idemhttp.Middleware(guard(idempotent.NewMemoryStore()))(pay)
			var lose atomic.Bool
			lose.Store(true)
			var s *server
			s = newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				r.Body = io.NopCloser(strings.NewReader(s.Hits()[n-1].body))
				if !lose.Load() {
					api.ServeHTTP(w, r)
					return
				}
				api.ServeHTTP(httptest.NewRecorder(), r) // made, answer lost
				c, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					panic(err)
				}
				c.Close()
			})
			rt := newTransport(t, newFakeClock(), idemclient.WithMaxAttempts(2))
			req := newRequest(t, t.Context(), http.MethodPost, s.URL+"/payments", `{"amount":1250}`)
			req.Header.Set(idemclient.HeaderKey, header)
			_, err := rt.RoundTrip(req)
			var ae *idemclient.AttemptError
			if !errors.As(err, &ae) || ae.Attempts != 2 || pay.runs.Load() != 1 {
				t.Fatalf("err %v, %d payments; want *AttemptError after 2 attempts, 1 payment", err, pay.runs.Load())
			}

			lose.Store(false)
			again := newRequest(t, t.Context(), http.MethodPost, s.URL+"/payments", `{"amount":1250}`)
			again.Header.Set(idemclient.HeaderKey, ae.Key)
			resp, err := newTransport(t, newFakeClock()).RoundTrip(again)
			if err != nil {
				t.Fatalf("resend with ae.Key %q: %v", ae.Key, err)
			}
			body := readBody(t, resp)
			if resp.StatusCode != 201 || resp.Header.Get(idemclient.HeaderReplayed) != "true" || body != `{"id":"p-1"}` || pay.runs.Load() != 1 {
				t.Fatalf("resend with ae.Key %q: %d %s replayed=%q, %d payments; want the replay of p-1",
					ae.Key, resp.StatusCode, body, resp.Header.Get(idemclient.HeaderReplayed), pay.runs.Load())
			}
			if got := idemclient.KeyOf(resp); got != ae.Key {
				t.Fatalf("KeyOf %q, ae.Key %q: one form of the key", got, ae.Key)
			}
		})
	}
}

// FuzzResendableKey: for every header value the transport accepts, the key
// it reports parses, as a header value, to the same key the server reads.
func FuzzResendableKey(f *testing.F) {
	for _, s := range []string{`abc`, `"abc"`, `"order 42"`, `"a,b"`, `"say \"hi\""`, `" padded "`, `"\"x"`, `"x\\"`, `a"b`, ` abc `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		want, err := httpidem.ParseKey([]string{v})
		if err != nil {
			return
		}
		k := idemclient.ResendableKey(want)
		got, err := httpidem.ParseKey([]string{k})
		if err != nil || got != want {
			t.Fatalf("header %q: key %q, reported as %q, which parses to %q, %v", v, want, k, got, err)
		}
		if bare, err := httpidem.ParseKey([]string{want}); err == nil && bare == want && k != want {
			t.Fatalf("key %q reported as %q: a key that can be sent bare is reported bare", want, k)
		}
	})
}

// inProgressAPI is the payments API on two instances that share a store
// (another Store value: within one instance duplicates wait in memory
// instead of getting 409): the first request runs on instance A until
// release is closed; the client's attempts reach instance B.
type inProgressAPI struct {
	pay               *payments
	started, finished chan struct{}
	release           chan struct{}
	srv               *server
}

func newInProgressAPI(t *testing.T) *inProgressAPI {
	t.Helper()
	a := &inProgressAPI{pay: &payments{}, started: make(chan struct{}), finished: make(chan struct{}), release: make(chan struct{})}
	store := idempotent.NewMemoryStore()
	var ran atomic.Bool
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ran.Swap(true) {
			close(a.started)
			<-a.release
		}
		a.pay.ServeHTTP(w, r)
	})
	instA := idemhttp.Middleware(guard(store))(slow)
	instB := idemhttp.Middleware(guard(&struct{ idempotent.Store }{store}))(slow)
	a.srv = apiServer(t, instB)
	go func() {
		defer close(a.finished)
		r := httptest.NewRequest(http.MethodPost, "/payments", strings.NewReader(`{"amount":1250}`))
		r.Header.Set(idemclient.HeaderKey, "k-running")
		instA.ServeHTTP(httptest.NewRecorder(), r)
	}()
	<-a.started
	t.Cleanup(func() {
		select {
		case <-a.release:
		default:
			close(a.release)
		}
		<-a.finished
	})
	return a
}

// TestServerRetryTable: every answer of our server in the retry table,
// over real HTTP, with the attempts that reach the server and what the
// caller gets.
func TestServerRetryTable(t *testing.T) {
	t.Run("409 in-progress: retried after Retry-After, then the replay", func(t *testing.T) {
		a := newInProgressAPI(t)
		c := newFakeClock()
		c.onSleep = func() { // while the client waits, the first request ends
			close(a.release)
			<-a.finished
		}
		var seen attempts
		rt := newTransport(t, c, seen.option())
		req := newRequest(t, t.Context(), http.MethodPost, a.srv.URL+"/payments", `{"amount":1250}`)
		req.Header.Set(idemclient.HeaderKey, "k-running")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if n := len(a.srv.Hits()); n != 2 || a.pay.runs.Load() != 1 {
			t.Fatalf("%d attempts, %d payments; want 2 attempts, 1 payment", n, a.pay.runs.Load())
		}
		if resp.StatusCode != 201 || resp.Header.Get(idemclient.HeaderReplayed) != "true" || body != `{"id":"p-1"}` {
			t.Fatalf("got %d %s replayed=%q, want the replay of p-1", resp.StatusCode, body, resp.Header.Get(idemclient.HeaderReplayed))
		}
		if w := c.Sleeps(); len(w) != 1 || w[0] != httpidem.InProgressRetry {
			t.Fatalf("waits %v, want [%v] (the 409's Retry-After)", w, httpidem.InProgressRetry)
		}
		if i := seen.all(); len(i) != 2 || i[0].Status != 409 || !i[0].Retry || i[1].Status != 201 || !i[1].Replayed {
			t.Fatalf("attempts %+v", i)
		}
	})
	t.Run("409 in-progress to the attempts bound: the last 409 as it is", func(t *testing.T) {
		a := newInProgressAPI(t)
		c := newFakeClock()
		rt := newTransport(t, c)
		req := newRequest(t, t.Context(), http.MethodPost, a.srv.URL+"/payments", `{"amount":1250}`)
		req.Header.Set(idemclient.HeaderKey, "k-running")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if n := len(a.srv.Hits()); n != idemclient.DefaultMaxAttempts || idemclient.AttemptsOf(resp) != n {
			t.Fatalf("%d attempts, want %d", n, idemclient.DefaultMaxAttempts)
		}
		if p := problemOf(t, resp, body); resp.StatusCode != 409 || p.Type != httpidem.TypeInProgress || resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("got %d %s, want the last 409 in-progress with Retry-After 1", resp.StatusCode, body)
		}
		if w := c.Sleeps(); len(w) != idemclient.DefaultMaxAttempts-1 || w[0] != time.Second || w[len(w)-1] != time.Second {
			t.Fatalf("waits %v, want 1s each", w)
		}
	})
	t.Run("422 payload-mismatch: not retried", func(t *testing.T) {
		pay := &payments{}
		srv := apiServer(t, idemhttp.Middleware(guard(idempotent.NewMemoryStore()))(pay))
		rt := newTransport(t, newFakeClock())
		for i, body := range []string{`{"amount":1250}`, `{"amount":9999}`} {
			req := newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", body)
			req.Header.Set(idemclient.HeaderKey, "k-reused")
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			got := readBody(t, resp)
			if i == 0 {
				if resp.StatusCode != 201 {
					t.Fatalf("first request: %d %s", resp.StatusCode, got)
				}
				continue
			}
			if p := problemOf(t, resp, got); resp.StatusCode != 422 || p.Type != httpidem.TypePayloadMismatch || idemclient.AttemptsOf(resp) != 1 {
				t.Fatalf("got %d %s after %d attempt(s), want 422 payload-mismatch after 1", resp.StatusCode, got, idemclient.AttemptsOf(resp))
			}
		}
		if n := len(srv.Hits()); n != 2 || pay.runs.Load() != 1 {
			t.Fatalf("%d requests reached the server, %d payments; want 2 and 1", n, pay.runs.Load())
		}
	})
	t.Run("503 outcome-unknown, Retry-After within the cap: retried after it", func(t *testing.T) {
		// The server's clock is the client's: the client's wait moves both.
		c := newFakeClock()
		pay := &payments{}
		store := &failOnce{MemoryStore: idempotent.NewMemoryStore(), op: "Complete"}
		srv := apiServer(t, idemhttp.Middleware(guard(store, idempotent.WithClock(c.Now), idempotent.WithLease(3*time.Second)))(pay))
		var seen attempts
		rt := newTransport(t, c, seen.option())
		resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{"amount":1250}`))
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if n := len(srv.Hits()); n != 2 {
			t.Fatalf("%d attempts, want 2", n)
		}
		// The key was held until the lease ended; then the handler ran
		// again, as after a crash (docs/http.md, outcome-unknown).
		if resp.StatusCode != 201 || body != `{"id":"p-2"}` || pay.runs.Load() != 2 {
			t.Fatalf("got %d %s, %d runs; want the second run's 201", resp.StatusCode, body, pay.runs.Load())
		}
		if w := c.Sleeps(); len(w) != 1 || w[0] != 3*time.Second {
			t.Fatalf("waits %v, want [3s] (the 503's Retry-After: the lease end)", w)
		}
		if i := seen.all(); len(i) != 2 || i[0].Status != 503 || !i[0].Retry {
			t.Fatalf("attempts %+v", i)
		}
	})
	t.Run("503 outcome-unknown, Retry-After past the cap: the 503 as it is", func(t *testing.T) {
		// The default lease (60 s) is past the 20 s cap: a retry before
		// the lease ends can only get 409, so none is made, and the caller
		// learns when to send the request again.
		c := newFakeClock()
		pay := &payments{}
		store := &failOnce{MemoryStore: idempotent.NewMemoryStore(), op: "Complete"}
		srv := apiServer(t, idemhttp.Middleware(guard(store, idempotent.WithClock(c.Now)))(pay))
		var logs logBuffer
		rt := newTransport(t, c, idemclient.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
		resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{"amount":1250}`))
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if n := len(srv.Hits()); n != 1 || idemclient.AttemptsOf(resp) != 1 || len(c.Sleeps()) != 0 {
			t.Fatalf("%d attempts, waits %v; want 1 attempt, no wait", n, c.Sleeps())
		}
		want := fmt.Sprint(int(idempotent.DefaultLease / time.Second))
		if p := problemOf(t, resp, body); resp.StatusCode != 503 || p.Type != httpidem.TypeOutcomeUnknown || resp.Header.Get("Retry-After") != want {
			t.Fatalf("got %d Retry-After %q %s, want 503 outcome-unknown with Retry-After %s", resp.StatusCode, resp.Header.Get("Retry-After"), body, want)
		}
		if !strings.Contains(logs.String(), "Retry-After") {
			t.Fatalf("log %s: want the reason for giving up", logs.String())
		}
	})
	t.Run("503 store-unavailable: retried after Retry-After", func(t *testing.T) {
		pay := &payments{}
		store := &failOnce{MemoryStore: idempotent.NewMemoryStore(), op: "Acquire"}
		srv := apiServer(t, idemhttp.Middleware(guard(store))(pay))
		c := newFakeClock()
		rt := newTransport(t, c)
		resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{"amount":1250}`))
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if n := len(srv.Hits()); n != 2 || resp.StatusCode != 201 || body != `{"id":"p-1"}` || pay.runs.Load() != 1 {
			t.Fatalf("%d attempts, got %d %s; want 2 attempts and the one payment", n, resp.StatusCode, body)
		}
		if w := c.Sleeps(); len(w) != 1 || w[0] != time.Second {
			t.Fatalf("waits %v, want [1s]", w)
		}
	})
	t.Run("400 invalid key: refused by the client, as the server would", func(t *testing.T) {
		srv := apiServer(t, idemhttp.Middleware(guard(idempotent.NewMemoryStore()))(&payments{}))
		for _, bad := range []string{`a b`, `"unterminated`, `"bad\escape"`, `""`, strings.Repeat("k", 256), "caf\xc3\xa9"} {
			// The server refuses the header: a plain client gets 400.
			req := newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{"amount":1250}`)
			req.Header.Set(idemclient.HeaderKey, bad)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			if p := problemOf(t, resp, body); resp.StatusCode != 400 || p.Type != httpidem.TypeInvalidKey {
				t.Fatalf("%q: the server answered %d %s, want 400 invalid-idempotency-key", bad, resp.StatusCode, body)
			}
			// The transport refuses it before sending.
			before := len(srv.Hits())
			req = newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{"amount":1250}`)
			req.Header.Set(idemclient.HeaderKey, bad)
			_, err = newTransport(t, newFakeClock()).RoundTrip(req)
			var ke *idemclient.InvalidKeyError
			if !errors.As(err, &ke) || len(srv.Hits()) != before {
				t.Fatalf("%q: err %v, %d sent; want *InvalidKeyError, nothing sent", bad, err, len(srv.Hits())-before)
			}
		}
	})
	t.Run("400 invalid-body: not retried", func(t *testing.T) {
		pay := &payments{}
		srv := apiServer(t, idemhttp.Middleware(guard(idempotent.NewMemoryStore()))(pay))
		resp, err := newTransport(t, newFakeClock()).RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{"amount":1,"amount":2}`))
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if p := problemOf(t, resp, body); resp.StatusCode != 400 || p.Type != httpidem.TypeInvalidBody || len(srv.Hits()) != 1 || pay.runs.Load() != 0 {
			t.Fatalf("got %d %s after %d attempt(s), want 400 invalid-body after 1", resp.StatusCode, body, len(srv.Hits()))
		}
	})
	t.Run("413 body-too-large: not retried", func(t *testing.T) {
		pay := &payments{}
		srv := apiServer(t, idemhttp.Middleware(guard(idempotent.NewMemoryStore()), idemhttp.WithMaxBody(8))(pay))
		resp, err := newTransport(t, newFakeClock()).RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{"amount":1250}`))
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if p := problemOf(t, resp, body); resp.StatusCode != 413 || p.Type != httpidem.TypeBodyTooLarge || len(srv.Hits()) != 1 || pay.runs.Load() != 0 {
			t.Fatalf("got %d %s after %d attempt(s), want 413 body-too-large after 1", resp.StatusCode, body, len(srv.Hits()))
		}
	})
	t.Run("410 response-not-stored: not retried", func(t *testing.T) {
		var runs atomic.Int32
		big := strings.Repeat("r", 64)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			runs.Add(1)
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, big) // over the limit: streamed, not stored
		})
		srv := apiServer(t, idemhttp.Middleware(guard(idempotent.NewMemoryStore()), idemhttp.WithMaxBody(32))(h))
		rt := newTransport(t, newFakeClock())
		for i, want := range []int{201, 410} {
			req := newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{}`)
			req.Header.Set(idemclient.HeaderKey, "k-streamed")
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			if resp.StatusCode != want || idemclient.AttemptsOf(resp) != 1 {
				t.Fatalf("request %d: %d %q after %d attempt(s), want %d after 1", i+1, resp.StatusCode, body, idemclient.AttemptsOf(resp), want)
			}
			if want == 410 && problemOf(t, resp, body).Type != httpidem.TypeNotStored {
				t.Fatalf("got %s, want response-not-stored", body)
			}
		}
		if n := len(srv.Hits()); n != 2 || runs.Load() != 1 {
			t.Fatalf("%d requests reached the server, %d runs; want 2, 1", n, runs.Load())
		}
	})

	handler5xx := []struct {
		name     string
		codes    []int // the handler's statuses, in turn (the last from then on)
		stored   func(int) bool
		attempts int
		status   int
		body     string
		runs     int32
		replayed bool
	}{
		{name: "500 once: released, retried, runs again", codes: []int{500, 201}, attempts: 2, status: 201, body: "run 2", runs: 2},
		{name: "503 always: to the bound, the last as it is", codes: []int{503}, attempts: 5, status: 503, body: "run 5", runs: 5},
		{name: "502 then 201", codes: []int{502, 201}, attempts: 2, status: 201, body: "run 2", runs: 2},
		{name: "501: not retried", codes: []int{501}, attempts: 1, status: 501, body: "run 1", runs: 1},
		{name: "500 stored by the policy: its replay is final", codes: []int{500, 201},
			stored: func(s int) bool { return s == 500 || idemhttp.DefaultStored(s) }, attempts: 2, status: 500, body: "run 1", runs: 1, replayed: true},
	}
	for _, tt := range handler5xx {
		t.Run("handler "+tt.name, func(t *testing.T) {
			var runs atomic.Int32
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := runs.Add(1)
				w.WriteHeader(tt.codes[min(int(n), len(tt.codes))-1])
				fmt.Fprintf(w, "run %d", n)
			})
			var opts []idemhttp.Option
			if tt.stored != nil {
				opts = append(opts, idemhttp.WithStoredStatus(tt.stored))
			}
			srv := apiServer(t, idemhttp.Middleware(guard(idempotent.NewMemoryStore()), opts...)(h))
			resp, err := newTransport(t, newFakeClock()).RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{"amount":1250}`))
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			if n := len(srv.Hits()); n != tt.attempts || idemclient.AttemptsOf(resp) != tt.attempts || runs.Load() != tt.runs {
				t.Fatalf("%d attempts, %d runs; want %d, %d", n, runs.Load(), tt.attempts, tt.runs)
			}
			if resp.StatusCode != tt.status || body != tt.body || (resp.Header.Get(idemclient.HeaderReplayed) == "true") != tt.replayed {
				t.Fatalf("got %d %q replayed=%q, want %d %q replayed=%v", resp.StatusCode, body, resp.Header.Get(idemclient.HeaderReplayed), tt.status, tt.body, tt.replayed)
			}
		})
	}
}

// failOnce is a memory store whose first call of op (Acquire or Complete)
// fails: a store outage before the run, or between the run and the write
// of its result. A store cannot be made to fail on cue otherwise.
type failOnce struct {
	*idempotent.MemoryStore
	op     string
	failed atomic.Bool
}

func (s *failOnce) fail(op string) bool {
	return s.op == op && s.failed.CompareAndSwap(false, true)
}

func (s *failOnce) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	if s.fail("Acquire") {
		return nil, false, errors.New("connection reset")
	}
	return s.MemoryStore.Acquire(ctx, rec, now)
}

func (s *failOnce) Complete(ctx context.Context, rec idempotent.Record) error {
	if s.fail("Complete") {
		return errors.New("connection reset")
	}
	return s.MemoryStore.Complete(ctx, rec)
}

// TestServerCutProblemBody: a permanent problem whose body is cut short
// (the connection closes before Content-Length bytes) is returned as it
// is; the caller reads the part that came and then the read error, never
// a clean end of a short body.
func TestServerCutProblemBody(t *testing.T) {
	head := fmt.Sprintf(`{"type":%q,"status":500}`, httpidem.TypeConfig)
	srv := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		c, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(buf, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/problem+json\r\nContent-Length: %d\r\n\r\n%s", len(head)+100, head)
		buf.Flush()
		c.Close()
	})
	resp, err := newTransport(t, newFakeClock()).RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if string(b) != head || !errors.Is(err, io.ErrUnexpectedEOF) || len(srv.Hits()) != 1 {
		t.Fatalf("read %q, %v after %d attempt(s); want %q, then io.ErrUnexpectedEOF, after 1", b, err, len(srv.Hits()), head)
	}
}
