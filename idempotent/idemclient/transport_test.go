package idemclient_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemclient"
)

// fakeClock is the transport's clock in tests: Sleep records the wait and
// moves the time on at once.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	// onSleep, when set, runs inside Sleep (e.g. to cancel the context).
	onSleep func()
}

func newFakeClock() *fakeClock {
	// Real time, so that real context deadlines compare with it; whole
	// seconds, so that HTTP dates are exact.
	return &fakeClock{now: time.Now().Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	f := c.onSleep
	c.mu.Unlock()
	if f != nil {
		f()
	}
	return ctx.Err()
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

// hit is one request as the test server saw it.
type hit struct {
	method string
	keys   []string // Idempotency-Key values
	body   string
	length int64 // Content-Length
}

// server is a test server that records every request and answers through
// answer(n, w, r), n counting requests from 1 (the body is already read).
type server struct {
	*httptest.Server
	mu   sync.Mutex
	hits []hit
}

func newServer(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request), configure ...func(*http.Server)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("server: read body: %v", err)
		}
		s.mu.Lock()
		s.hits = append(s.hits, hit{method: r.Method, keys: r.Header.Values(idemclient.HeaderKey), body: string(b), length: r.ContentLength})
		n := len(s.hits)
		s.mu.Unlock()
		answer(n, w, r)
	}))
	for _, f := range configure {
		f(s.Config)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *server) Hits() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hits)
}

// status answers the statuses in turn (the last one from then on), with
// "attempt n" as the body.
func status(codes ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(codes[min(n, len(codes))-1])
		fmt.Fprintf(w, "attempt %d", n)
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newTransport returns the transport under test over a base transport
// without keep-alives (so that net/http's own retry of requests on reused
// connections never adds attempts), with clock c and jitter 1 (the
// backoff's upper bound).
func newTransport(t *testing.T, c *fakeClock, opts ...idemclient.Option) http.RoundTripper {
	t.Helper()
	base := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(base.CloseIdleConnections)
	return idemclient.NewTransport(base, append([]idemclient.Option{
		idemclient.WithTestTime(c.Now, c.Sleep, func() float64 { return 1 }),
		idemclient.WithLogger(quiet()),
	}, opts...)...)
}

func newRequest(t *testing.T, ctx context.Context, method, url, body string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// oneKey checks that every hit carried exactly one key header, the same.
func oneKey(t *testing.T, hits []hit) string {
	t.Helper()
	if len(hits) == 0 {
		t.Fatal("no request reached the server")
	}
	for i, h := range hits {
		if len(h.keys) != 1 || h.keys[0] != hits[0].keys[0] {
			t.Fatalf("attempt %d keys %q, attempt 1 keys %q: want one key, the same on every attempt", i+1, h.keys, hits[0].keys)
		}
	}
	return hits[0].keys[0]
}

func TestTransportStatusRules(t *testing.T) {
	retried := map[int]bool{408: true, 409: true, 425: true, 429: true, 500: true, 502: true, 503: true, 504: true}
	for _, code := range []int{200, 201, 202, 204, 303, 400, 401, 403, 404, 405, 408, 409, 410, 412, 413, 415, 422, 425, 428, 429, 500, 501, 502, 503, 504, 505, 507} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			srv := newServer(t, status(code, http.StatusCreated))
			rt := newTransport(t, newFakeClock())
			resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, `{"amount":1}`))
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			hits := srv.Hits()
			key := oneKey(t, hits)
			wantAttempts, wantStatus := 1, code
			if retried[code] {
				wantAttempts, wantStatus = 2, http.StatusCreated
			}
			if len(hits) != wantAttempts || idemclient.AttemptsOf(resp) != wantAttempts {
				t.Fatalf("server saw %d attempts, AttemptsOf %d; want %d", len(hits), idemclient.AttemptsOf(resp), wantAttempts)
			}
			wantBody := fmt.Sprintf("attempt %d", wantAttempts)
			if wantStatus == http.StatusNoContent {
				wantBody = ""
			}
			if resp.StatusCode != wantStatus || body != wantBody {
				t.Fatalf("got %d %q, want %d from attempt %d", resp.StatusCode, body, wantStatus, wantAttempts)
			}
			if idemclient.KeyOf(resp) != key {
				t.Fatalf("KeyOf = %q, server saw %q", idemclient.KeyOf(resp), key)
			}
		})
	}
}

func TestTransportReplayedIsFinal(t *testing.T) {
	for _, code := range []int{http.StatusCreated, http.StatusConflict, http.StatusServiceUnavailable} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			srv := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set(idemclient.HeaderReplayed, "true")
				w.WriteHeader(code)
			})
			budget := idemclient.NewRetryBudget(100)
			budget.Take(10) // room for the refund to show
			var infos []idemclient.AttemptInfo
			rt := newTransport(t, newFakeClock(), idemclient.WithRetryBudget(budget),
				idemclient.WithOnAttempt(func(i idemclient.AttemptInfo) { infos = append(infos, i) }))
			resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, "x"))
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if n := len(srv.Hits()); n != 1 || resp.StatusCode != code {
				t.Fatalf("%d attempts, status %d; want 1 attempt, %d", n, resp.StatusCode, code)
			}
			if len(infos) != 1 || !infos[0].Replayed || infos[0].Retry {
				t.Fatalf("attempt infos %+v", infos)
			}
			if got := budget.Tokens(); got != 90+idemclient.NoRetryIncrement {
				t.Fatalf("budget %d, want %d: a replay is a success", got, 90+idemclient.NoRetryIncrement)
			}
		})
	}
}

// failFirst makes the first request fail in transport after the server
// read it (the answer is lost), then answers 201.
func failFirst(fail func(c net.Conn)) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			c, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			fail(c)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "attempt %d", n)
	}
}

func TestTransportErrorIsRetriedWithSameKey(t *testing.T) {
	tests := []struct {
		name string
		fail func(net.Conn)
	}{
		{"close after reading the request", func(c net.Conn) { c.Close() }},
		{"reset after reading the request", func(c net.Conn) {
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}},
		{"partial status line then close", func(c net.Conn) {
			_, _ = io.WriteString(c, "HTTP/1.1 20")
			c.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, failFirst(tt.fail))
			rt := newTransport(t, newFakeClock())
			resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, `{"amount":100}`))
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			hits := srv.Hits()
			oneKey(t, hits)
			if len(hits) != 2 || resp.StatusCode != http.StatusCreated || body != "attempt 2" {
				t.Fatalf("%d attempts, %d %q; want the second attempt's 201", len(hits), resp.StatusCode, body)
			}
			for i, h := range hits {
				if h.body != `{"amount":100}` {
					t.Fatalf("attempt %d body %q", i+1, h.body)
				}
			}
		})
	}
}

func TestTransportErrorGivesUp(t *testing.T) {
	t.Run("refused, attempts bound", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		ln.Close()
		c := newFakeClock()
		rt := newTransport(t, c, idemclient.WithMaxAttempts(3))
		_, err = rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, url, "x"))
		var ae *idemclient.AttemptError
		if !errors.As(err, &ae) || ae.Attempts != 3 || ae.Key == "" {
			t.Fatalf("err %v, want *AttemptError after 3 attempts with the key", err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) {
			t.Fatalf("err %v does not keep the *net.OpError", err)
		}
		if len(c.Sleeps()) != 2 {
			t.Fatalf("sleeps %v, want 2", c.Sleeps())
		}
	})
	t.Run("certificate rejected, not retried", func(t *testing.T) {
		n := 0
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n++ }))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake error the test causes
		srv.StartTLS()
		defer srv.Close()
		rt := newTransport(t, newFakeClock())
		_, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, "x"))
		var ae *idemclient.AttemptError
		var ce *tls.CertificateVerificationError
		if !errors.As(err, &ae) || ae.Attempts != 1 || !errors.As(err, &ce) {
			t.Fatalf("err %v, want *AttemptError after 1 attempt wrapping the certificate error", err)
		}
	})
}

func TestTransportRetryAfter(t *testing.T) {
	c0 := newFakeClock()
	tests := []struct {
		name  string
		value string // "" : no header
		opts  []idemclient.Option
		want  time.Duration
		over  bool // over the cap: no retry, the 409 as it is
	}{
		{name: "seconds", value: "3", want: 3 * time.Second},
		{name: "zero", value: "0", want: 0},
		{name: "HTTP date", value: c0.Now().Add(7 * time.Second).UTC().Format(http.TimeFormat), want: 7 * time.Second},
		{name: "HTTP date in the past", value: c0.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), want: 0},
		{name: "at the default cap", value: "20", want: idemclient.DefaultMaxRetryAfter},
		{name: "over the default cap", value: "21", over: true},
		{name: "at a cap", value: "5", opts: []idemclient.Option{idemclient.WithMaxRetryAfter(5 * time.Second)}, want: 5 * time.Second},
		{name: "over a cap", value: "3600", opts: []idemclient.Option{idemclient.WithMaxRetryAfter(5 * time.Second)}, over: true},
		{name: "HTTP date over the cap", value: c0.Now().Add(time.Hour).UTC().Format(http.TimeFormat), over: true},
		{name: "huge", value: "99999999999999999999999", over: true},
		{name: "invalid: backoff", value: "soon", want: idemclient.DefaultBackoffBase},
		{name: "negative: backoff", value: "-5", want: idemclient.DefaultBackoffBase},
		{name: "absent: backoff", want: idemclient.DefaultBackoffBase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					if tt.value != "" {
						w.Header().Set("Retry-After", tt.value)
					}
					w.WriteHeader(http.StatusConflict)
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			c := &fakeClock{now: c0.Now()}
			rt := newTransport(t, c, tt.opts...)
			resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, "x"))
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if tt.over {
				// A retry sooner than the server asks cannot succeed.
				if got := c.Sleeps(); len(got) != 0 || len(srv.Hits()) != 1 || resp.StatusCode != http.StatusConflict || resp.Header.Get("Retry-After") != tt.value {
					t.Fatalf("waits %v, %d attempts, %d; want no retry and the 409 with its Retry-After", got, len(srv.Hits()), resp.StatusCode)
				}
				return
			}
			if got := c.Sleeps(); len(got) != 1 || got[0] != tt.want {
				t.Fatalf("waits %v, want [%v]", got, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 120 * time.Second, true},
		{" 5 ", 5 * time.Second, true},
		{"Wed, 02 Dec 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Wednesday, 02-Dec-26 12:01:00 GMT", time.Minute, true}, // RFC 850
		{"Wed Dec  2 12:00:10 2026", 10 * time.Second, true},     // asctime
		{"", 0, false},
		{"1.5", 0, false},
		{"12abc", 0, false},
	}
	for _, tt := range tests {
		got, ok := idemclient.ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%q: %v %v, want %v %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestTransportBackoff(t *testing.T) {
	tests := []struct {
		name   string
		jitter float64
		want   []time.Duration
	}{
		{"upper bound: capped exponential", 1, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}},
		{"full jitter reaches zero", 0, []time.Duration{0, 0, 0, 0, 0, 0}},
		{"half", 0.5, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, status(http.StatusServiceUnavailable))
			c := newFakeClock()
			rt := newTransport(t, c, idemclient.WithMaxAttempts(7), idemclient.WithBackoff(100*time.Millisecond, time.Second),
				idemclient.WithTestTime(c.Now, c.Sleep, func() float64 { return tt.jitter }))
			resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, "x"))
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if got := c.Sleeps(); !slices.Equal(got, tt.want) {
				t.Fatalf("waits %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTransportAttemptsBound(t *testing.T) {
	srv := newServer(t, status(http.StatusServiceUnavailable))
	rt := newTransport(t, newFakeClock(), idemclient.WithMaxAttempts(3))
	resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, "x"))
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if n := len(srv.Hits()); n != 3 || idemclient.AttemptsOf(resp) != 3 {
		t.Fatalf("%d attempts (AttemptsOf %d), want 3", n, idemclient.AttemptsOf(resp))
	}
	if resp.StatusCode != http.StatusServiceUnavailable || body != "attempt 3" {
		t.Fatalf("got %d %q, want the last response, whole", resp.StatusCode, body)
	}
}

func TestTransportContext(t *testing.T) {
	t.Run("no wait past the deadline", func(t *testing.T) {
		// Each answer asks for 25 minutes; the deadline is in an hour:
		// attempts at 0 and 25 min, a third at 50 min, no wait to 75.
		srv := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "1500")
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		c := newFakeClock()
		ctx, cancel := context.WithDeadline(t.Context(), c.Now().Add(time.Hour))
		defer cancel()
		rt := newTransport(t, c, idemclient.WithMaxAttempts(100), idemclient.WithMaxRetryAfter(time.Hour))
		resp, err := rt.RoundTrip(newRequest(t, ctx, http.MethodPost, srv.URL, "x"))
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if n := len(srv.Hits()); n != 3 || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%d attempts, status %d; want 3 and the last 503", n, resp.StatusCode)
		}
		if got := c.Sleeps(); len(got) != 2 {
			t.Fatalf("waits %v, want 2", got)
		}
	})
	t.Run("a wait ending exactly at the deadline is not started", func(t *testing.T) {
		srv := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		c := newFakeClock()
		ctx, cancel := context.WithDeadline(t.Context(), c.Now().Add(time.Minute))
		defer cancel()
		rt := newTransport(t, c, idemclient.WithMaxRetryAfter(time.Hour))
		resp, err := rt.RoundTrip(newRequest(t, ctx, http.MethodPost, srv.URL, "x"))
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if n := len(srv.Hits()); n != 1 || len(c.Sleeps()) != 0 {
			t.Fatalf("%d attempts, waits %v; want 1 attempt, no wait", n, c.Sleeps())
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		srv := newServer(t, status(http.StatusServiceUnavailable))
		c := newFakeClock()
		ctx, cancel := context.WithCancel(t.Context())
		c.onSleep = cancel
		rt := newTransport(t, c)
		_, err := rt.RoundTrip(newRequest(t, ctx, http.MethodPost, srv.URL, "x"))
		var ae *idemclient.AttemptError
		if !errors.As(err, &ae) || !errors.Is(err, context.Canceled) || ae.Attempts != 1 || ae.Key == "" {
			t.Fatalf("err %v, want *AttemptError after 1 attempt wrapping context.Canceled", err)
		}
		if n := len(srv.Hits()); n != 1 {
			t.Fatalf("%d attempts, want 1", n)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		srv := newServer(t, status(http.StatusCreated))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		c := newFakeClock()
		rt := newTransport(t, c)
		_, err := rt.RoundTrip(newRequest(t, ctx, http.MethodPost, srv.URL, "x"))
		if !errors.Is(err, context.Canceled) || len(c.Sleeps()) != 0 || len(srv.Hits()) != 0 {
			t.Fatalf("err %v, waits %v, hits %d; want context.Canceled at once", err, c.Sleeps(), len(srv.Hits()))
		}
	})
}

// timeoutErr is a transport timeout.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRetryBudget(t *testing.T) {
	t.Run("exhausted after a response", func(t *testing.T) {
		srv := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Last", fmt.Sprint(n))
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		budget := idemclient.NewRetryBudget(2 * idemclient.RetryCost)
		client := &http.Client{Transport: newTransport(t, newFakeClock(), idemclient.WithRetryBudget(budget), idemclient.WithMaxAttempts(10))}
		_, err := client.Do(newRequest(t, t.Context(), http.MethodPost, srv.URL, "x"))
		var be *idemclient.BudgetError
		if !errors.As(err, &be) {
			t.Fatalf("err %v, want *BudgetError", err)
		}
		if be.Attempts != 3 || be.Status != http.StatusServiceUnavailable || be.Header.Get("X-Last") != "3" || be.Err != nil || be.Key == "" {
			t.Fatalf("BudgetError %+v, want 3 attempts and the last 503", be)
		}
		if n := len(srv.Hits()); n != 3 || budget.Tokens() != 0 {
			t.Fatalf("%d attempts, %d tokens left; want 3 and 0", n, budget.Tokens())
		}
	})
	t.Run("timeouts cost more", func(t *testing.T) {
		n := 0
		base := roundTripFunc(func(*http.Request) (*http.Response, error) { n++; return nil, timeoutErr{} })
		c := newFakeClock()
		budget := idemclient.NewRetryBudget(2*idemclient.RetryTimeoutCost + idemclient.RetryCost)
		rt := idemclient.NewTransport(base, idemclient.WithTestTime(c.Now, c.Sleep, func() float64 { return 1 }),
			idemclient.WithLogger(quiet()), idemclient.WithRetryBudget(budget), idemclient.WithMaxAttempts(10))
		_, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, "http://127.0.0.1:9/", "x"))
		var be *idemclient.BudgetError
		var ne net.Error
		if !errors.As(err, &be) || be.Attempts != 3 || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("err %v, want *BudgetError after 3 attempts wrapping the timeout", err)
		}
		if n != 3 || budget.Tokens() != idemclient.RetryCost {
			t.Fatalf("%d attempts, %d tokens; want 3 and %d", n, budget.Tokens(), idemclient.RetryCost)
		}
	})
	t.Run("answers give tokens back", func(t *testing.T) {
		budget := idemclient.NewRetryBudget(20)
		var got []int
		for _, codes := range [][]int{
			{503},      // retried once, gives up at the bound: 15
			{201},      // answered at once: +1
			{503, 201}, // one retry, refunded on the answer
			{422},      // a final answer: +1
		} {
			srv := newServer(t, status(codes...))
			rt := newTransport(t, newFakeClock(), idemclient.WithRetryBudget(budget), idemclient.WithMaxAttempts(2))
			resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, "x"))
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			got = append(got, budget.Tokens())
		}
		if want := []int{15, 16, 16, 17}; !slices.Equal(got, want) {
			t.Fatalf("tokens %v, want %v", got, want)
		}
	})
	t.Run("shared by transports, never above capacity", func(t *testing.T) {
		budget := idemclient.NewRetryBudget(idemclient.RetryCost)
		srv := newServer(t, status(http.StatusServiceUnavailable))
		a := newTransport(t, newFakeClock(), idemclient.WithRetryBudget(budget), idemclient.WithMaxAttempts(2))
		b := newTransport(t, newFakeClock(), idemclient.WithRetryBudget(budget), idemclient.WithMaxAttempts(2))
		resp, err := a.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, "x"))
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		_, err = b.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, "x"))
		var be *idemclient.BudgetError
		if !errors.As(err, &be) || be.Attempts != 1 {
			t.Fatalf("second transport: err %v, want *BudgetError after 1 attempt", err)
		}
		if n := len(srv.Hits()); n != 3 {
			t.Fatalf("%d attempts, want 2 + 1", n)
		}
		budget.Give(100)
		if budget.Tokens() != idemclient.RetryCost {
			t.Fatalf("tokens %d above capacity %d", budget.Tokens(), idemclient.RetryCost)
		}
	})
	t.Run("zero value allows no retry", func(t *testing.T) {
		srv := newServer(t, status(http.StatusServiceUnavailable))
		rt := newTransport(t, newFakeClock(), idemclient.WithRetryBudget(&idemclient.RetryBudget{}))
		_, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, "x"))
		var be *idemclient.BudgetError
		if !errors.As(err, &be) || len(srv.Hits()) != 1 {
			t.Fatalf("err %v after %d attempts, want *BudgetError after 1", err, len(srv.Hits()))
		}
	})
	t.Run("concurrent use", func(t *testing.T) {
		budget := idemclient.NewRetryBudget(1000)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 100 {
					if budget.Take(idemclient.RetryCost) {
						budget.Give(idemclient.RetryCost)
					}
				}
			})
		}
		wg.Wait()
		if budget.Tokens() != 1000 {
			t.Fatalf("tokens %d, want 1000", budget.Tokens())
		}
	})
}

// closeCounter counts Close calls of a request body.
type closeCounter struct {
	io.Reader
	mu     sync.Mutex
	closes int
}

func (c *closeCounter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closes++
	return nil
}

func (c *closeCounter) Closes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closes
}

func TestTransportBodyRewind(t *testing.T) {
	const payload = `{"amount":100,"currency":"EUR"}`
	tests := []struct {
		name  string
		build func(t *testing.T, url string) (*http.Request, *closeCounter)
		want  string
	}{
		{"GetBody", func(t *testing.T, url string) (*http.Request, *closeCounter) {
			return newRequest(t, t.Context(), http.MethodPost, url, payload), nil
		}, payload},
		{"no GetBody, unknown length", func(t *testing.T, url string) (*http.Request, *closeCounter) {
			body := &closeCounter{Reader: strings.NewReader(payload)}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, body)
			if err != nil {
				t.Fatal(err)
			}
			return req, body
		}, payload},
		{"no GetBody, length set", func(t *testing.T, url string) (*http.Request, *closeCounter) {
			body := &closeCounter{Reader: strings.NewReader(payload)}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = int64(len(payload))
			return req, body
		}, payload},
		{"no GetBody, empty reader", func(t *testing.T, url string) (*http.Request, *closeCounter) {
			body := &closeCounter{Reader: strings.NewReader("")}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, body)
			if err != nil {
				t.Fatal(err)
			}
			return req, body
		}, ""},
		{"no body", func(t *testing.T, url string) (*http.Request, *closeCounter) {
			return newRequest(t, t.Context(), http.MethodPost, url, ""), nil
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, status(http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusCreated))
			req, body := tt.build(t, srv.URL)
			resp, err := newTransport(t, newFakeClock()).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			hits := srv.Hits()
			if len(hits) != 3 || resp.StatusCode != http.StatusCreated {
				t.Fatalf("%d attempts, status %d; want 3, 201", len(hits), resp.StatusCode)
			}
			for i, h := range hits {
				if h.body != tt.want {
					t.Fatalf("attempt %d body %q, want %q", i+1, h.body, tt.want)
				}
			}
			if body != nil && body.Closes() == 0 {
				t.Fatal("the caller's body was not closed")
			}
		})
	}
}

func TestTransportBodyOverRewindLimit(t *testing.T) {
	const payload = "0123456789abcdefghij" // 20 bytes
	build := func(t *testing.T, url string) (*http.Request, *closeCounter) {
		body := &closeCounter{Reader: strings.NewReader(payload)}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, body)
		if err != nil {
			t.Fatal(err)
		}
		return req, body
	}
	t.Run("response", func(t *testing.T) {
		srv := newServer(t, status(http.StatusServiceUnavailable))
		req, body := build(t, srv.URL)
		resp, err := newTransport(t, newFakeClock(), idemclient.WithRewindLimit(8)).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		hits := srv.Hits()
		if len(hits) != 1 || hits[0].body != payload || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("hits %+v, status %d; want one attempt with the whole body, its 503", hits, resp.StatusCode)
		}
		oneKey(t, hits)
		if body.Closes() == 0 {
			t.Fatal("the caller's body was not closed")
		}
	})
	t.Run("transport error", func(t *testing.T) {
		srv := newServer(t, failFirst(func(c net.Conn) { c.Close() }))
		req, _ := build(t, srv.URL)
		_, err := newTransport(t, newFakeClock(), idemclient.WithRewindLimit(8)).RoundTrip(req)
		var ae *idemclient.AttemptError
		if !errors.As(err, &ae) || ae.Attempts != 1 || len(srv.Hits()) != 1 {
			t.Fatalf("err %v, %d hits; want *AttemptError after 1 attempt", err, len(srv.Hits()))
		}
	})
	t.Run("exactly at the limit is retried", func(t *testing.T) {
		srv := newServer(t, status(http.StatusServiceUnavailable, http.StatusCreated))
		req, _ := build(t, srv.URL)
		resp, err := newTransport(t, newFakeClock(), idemclient.WithRewindLimit(int64(len(payload)))).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if hits := srv.Hits(); len(hits) != 2 || hits[1].body != payload {
			t.Fatalf("hits %+v, want 2 with the whole body", hits)
		}
	})
	t.Run("GetBody fails on a retry", func(t *testing.T) {
		srv := newServer(t, status(http.StatusServiceUnavailable))
		req := newRequest(t, t.Context(), http.MethodPost, srv.URL, payload)
		req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
		resp, err := newTransport(t, newFakeClock()).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if n := len(srv.Hits()); n != 1 || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%d attempts, status %d; want 1 and its 503", n, resp.StatusCode)
		}
	})
}

func TestTransportDrainsForConnectionReuse(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	srv := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(strings.Repeat("e", 4<<10)))
			return
		}
		w.WriteHeader(http.StatusCreated)
	}, func(s *http.Server) {
		s.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				mu.Lock()
				conns++
				mu.Unlock()
			}
		}
	})
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	c := newFakeClock()
	rt := idemclient.NewTransport(base, idemclient.WithTestTime(c.Now, c.Sleep, func() float64 { return 1 }), idemclient.WithLogger(quiet()))
	resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, "x"))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	mu.Lock()
	defer mu.Unlock()
	if n := len(srv.Hits()); n != 3 || conns != 1 {
		t.Fatalf("%d attempts over %d connections, want 3 over 1", n, conns)
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestTransportKeys(t *testing.T) {
	t.Run("generated once per logical request", func(t *testing.T) {
		srv := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n%3 != 0 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusCreated)
		})
		rt := newTransport(t, newFakeClock())
		var keys []string
		for range 2 {
			req := newRequest(t, t.Context(), http.MethodPost, srv.URL, "x")
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if req.Header.Get(idemclient.HeaderKey) != "" {
				t.Fatal("the caller's request was modified")
			}
			keys = append(keys, idemclient.KeyOf(resp))
		}
		hits := srv.Hits()
		if len(hits) != 6 {
			t.Fatalf("%d attempts, want 3 + 3", len(hits))
		}
		for i, want := range keys {
			if got := oneKey(t, hits[3*i:3*i+3]); got != want || !uuidV4.MatchString(got) {
				t.Fatalf("request %d: key %q on the wire, KeyOf %q; want one UUID v4", i+1, got, want)
			}
		}
		if keys[0] == keys[1] {
			t.Fatalf("two logical requests share key %q", keys[0])
		}
	})
	t.Run("quoted form", func(t *testing.T) {
		srv := newServer(t, status(http.StatusServiceUnavailable, http.StatusCreated))
		resp, err := newTransport(t, newFakeClock(), idemclient.WithKeyForm(idemclient.KeyQuoted)).RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, "x"))
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		wire := oneKey(t, srv.Hits())
		key := idemclient.KeyOf(resp)
		if wire != `"`+key+`"` || !uuidV4.MatchString(key) {
			t.Fatalf("wire %q, KeyOf %q; want a quoted UUID v4", wire, key)
		}
	})
	for _, tt := range []struct{ name, header, key string }{
		{"caller token kept", "order-42", "order-42"},
		// KeyOf is a header value that resends the request: the quotes
		// stay where the key needs them, and go where it does not.
		{"caller sf-string kept", `"order 42"`, `"order 42"`},
		{"caller sf-string of a token kept", `"order-42"`, "order-42"},
		{"caller key of 255", strings.Repeat("k", 255), strings.Repeat("k", 255)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, status(http.StatusTooManyRequests, http.StatusCreated))
			req := newRequest(t, t.Context(), http.MethodPost, srv.URL, "x")
			req.Header.Set(idemclient.HeaderKey, tt.header)
			resp, err := newTransport(t, newFakeClock()).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			hits := srv.Hits()
			if got := oneKey(t, hits); got != tt.header || len(hits) != 2 || idemclient.KeyOf(resp) != tt.key {
				t.Fatalf("wire %q over %d attempts, KeyOf %q; want %q twice, %q", got, len(hits), idemclient.KeyOf(resp), tt.header, tt.key)
			}
		})
	}
	for _, tt := range []struct {
		name   string
		values []string
	}{
		{"empty", []string{""}},
		{"blank", []string{"   "}},
		{"256 characters", []string{strings.Repeat("k", 256)}},
		{"space inside", []string{"order 42"}},
		{"non-ASCII", []string{"ключ"}},
		{"control character", []string{"a\x01b"}},
		{"unterminated quote", []string{`"abc`}},
		{"two different values", []string{"a", "b"}},
	} {
		t.Run("invalid caller key: "+tt.name, func(t *testing.T) {
			srv := newServer(t, status(http.StatusCreated))
			body := &closeCounter{Reader: strings.NewReader("x")}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header[idemclient.HeaderKey] = tt.values
			_, err = newTransport(t, newFakeClock()).RoundTrip(req)
			var ke *idemclient.InvalidKeyError
			if !errors.As(err, &ke) || ke.Reason == "" {
				t.Fatalf("err %v, want *InvalidKeyError", err)
			}
			if n := len(srv.Hits()); n != 0 || body.Closes() == 0 {
				t.Fatalf("%d requests sent, body closed %d times; want none sent, body closed", n, body.Closes())
			}
		})
	}
}

func TestTransportNonGuardedMethods(t *testing.T) {
	tests := []struct {
		name   string
		method string
		key    string // caller's header
		opts   []idemclient.Option
		want   int // attempts
	}{
		{name: "GET", method: http.MethodGet, want: 1},
		{name: "PUT with a caller key", method: http.MethodPut, key: "k-1", want: 1},
		{name: "DELETE with an invalid key is not validated", method: http.MethodDelete, key: "a b", want: 1},
		{name: "POST when only PUT is guarded", method: http.MethodPost, opts: []idemclient.Option{idemclient.WithMethods("put")}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, status(http.StatusServiceUnavailable, http.StatusOK))
			req := newRequest(t, t.Context(), tt.method, srv.URL, "")
			if tt.key != "" {
				req.Header.Set(idemclient.HeaderKey, tt.key)
			}
			resp, err := newTransport(t, newFakeClock(), tt.opts...).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			hits := srv.Hits()
			if len(hits) != tt.want || resp.StatusCode != http.StatusServiceUnavailable || idemclient.AttemptsOf(resp) != 0 {
				t.Fatalf("%d attempts, status %d, AttemptsOf %d; want one untouched attempt", len(hits), resp.StatusCode, idemclient.AttemptsOf(resp))
			}
			if want := []string{tt.key}; tt.key == "" && hits[0].keys != nil || tt.key != "" && !slices.Equal(hits[0].keys, want) {
				t.Fatalf("key headers %q, want the caller's only", hits[0].keys)
			}
		})
	}
	t.Run("PUT when guarded", func(t *testing.T) {
		srv := newServer(t, status(http.StatusServiceUnavailable, http.StatusOK))
		resp, err := newTransport(t, newFakeClock(), idemclient.WithMethods("put")).RoundTrip(newRequest(t, t.Context(), http.MethodPut, srv.URL, "x"))
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if hits := srv.Hits(); len(hits) != 2 || !uuidV4.MatchString(oneKey(t, hits)) {
			t.Fatalf("hits %+v, want 2 with one generated key", hits)
		}
	})
}

func TestTransportOnAttemptAndLog(t *testing.T) {
	srv := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	var logs logBuffer
	var infos []idemclient.AttemptInfo
	c := newFakeClock()
	rt := newTransport(t, c, idemclient.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))),
		idemclient.WithOnAttempt(func(i idemclient.AttemptInfo) { infos = append(infos, i) }))
	resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", "x"))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	key := idemclient.KeyOf(resp)
	want := []idemclient.AttemptInfo{
		{Method: "POST", URL: srv.URL + "/payments", Key: key, Attempt: 1, Status: 409, Retry: true, Wait: 2 * time.Second},
		{Method: "POST", URL: srv.URL + "/payments", Key: key, Attempt: 2, Status: 201},
	}
	if !slices.Equal(infos, want) {
		t.Fatalf("attempts\n%+v\nwant\n%+v", infos, want)
	}
	out := logs.String()
	if !strings.Contains(out, `"key":"`+key[:4]+`…"`) || strings.Contains(out, key) {
		t.Fatalf("log %s: want the key redacted to %q", out, key[:4]+"…")
	}
	if !strings.Contains(out, `"attempt":1`) || !strings.Contains(out, `"status":409`) {
		t.Fatalf("log %s: want the retried attempt", out)
	}
}

func TestTransportInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  idemclient.Option
	}{
		{"WithMethods none", idemclient.WithMethods()},
		{"WithMethods blank", idemclient.WithMethods("")},
		{"WithKeyForm", idemclient.WithKeyForm(7)},
		{"WithMaxAttempts", idemclient.WithMaxAttempts(0)},
		{"WithBackoff zero", idemclient.WithBackoff(0, time.Second)},
		{"WithBackoff max below base", idemclient.WithBackoff(time.Second, time.Millisecond)},
		{"WithMaxRetryAfter", idemclient.WithMaxRetryAfter(-1)},
		{"WithRetryBudget", idemclient.WithRetryBudget(nil)},
		{"WithRewindLimit", idemclient.WithRewindLimit(-1)},
		{"WithOnAttempt", idemclient.WithOnAttempt(nil)},
		{"WithLogger", idemclient.WithLogger(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, status(http.StatusOK))
			rt := newTransport(t, newFakeClock(), tt.opt)
			body := &closeCounter{Reader: strings.NewReader("x")}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, body)
			if err != nil {
				t.Fatal(err)
			}
			_, err = rt.RoundTrip(req)
			var ce *idempotent.ConfigError
			if !errors.As(err, &ce) || len(srv.Hits()) != 0 || body.Closes() == 0 {
				t.Fatalf("err %v, %d sent; want *idempotent.ConfigError, nothing sent, body closed", err, len(srv.Hits()))
			}
		})
	}
}

func TestNewClient(t *testing.T) {
	srv := newServer(t, failFirst(func(c net.Conn) { c.Close() }))
	client := idemclient.NewClient(idemclient.WithBackoff(time.Millisecond, time.Millisecond), idemclient.WithLogger(quiet()))
	defer client.CloseIdleConnections()
	resp, err := client.Post(srv.URL, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if hits := srv.Hits(); len(hits) != 2 || idemclient.AttemptsOf(resp) != 2 {
		t.Fatalf("%d attempts, AttemptsOf %d; want 2", len(hits), idemclient.AttemptsOf(resp))
	}
	oneKey(t, srv.Hits())
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
