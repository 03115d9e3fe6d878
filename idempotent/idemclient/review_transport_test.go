package idemclient_test

// Adversarial review of the transport (branch review2): every test here
// looks for a double run, a wrong replay or a silent ack on real servers.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemclient"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
)

// setBody gives req a new body of its own, with GetBody.
func setBody(req *http.Request, body string) {
	req.Body = io.NopCloser(strings.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
}

// TestReviewTemplateRequestGetsItsOwnKey: a caller sends a payment that was
// redirected (307) and builds the next payment from the final response's
// request, removing its key so that the next one gets a new one. The new
// request carries no Idempotency-Key header: it must get a key of its own.
// The transport found the first payment's key through the Response field
// net/http had set on that request (the hidden redirect chain), so the
// second payment carried the first one's key and got its replay: a payment
// acknowledged (201) that was never made.
func TestReviewTemplateRequestGetsItsOwnKey(t *testing.T) {
	api := newPaymentsAPI(idempotent.NewMemoryStore())
	var b *server
	b = newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { api.serve(w, r, lastBody(b)) })
	a := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		redirectTo(w, r, b.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	client := &http.Client{Transport: newTransport(t, newFakeClock())}
	resp1, err := client.Do(newRequest(t, t.Context(), http.MethodPost, a.URL+"/payments", `{"amount":100}`))
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp1); body != `{"id":"p-1"}` {
		t.Fatalf("first payment: %s", body)
	}

	// The same amount again, a second payment: a template copy of the
	// request, without its key.
	req2 := resp1.Request.Clone(t.Context())
	req2.Header.Del(idemclient.HeaderKey)
	setBody(req2, `{"amount":100}`)
	resp2, err := client.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp2)
	if n := api.payments.Load(); n != 2 || resp2.Header.Get(idemclient.HeaderReplayed) != "" || body != `{"id":"p-2"}` {
		t.Fatalf("%d payments, second answer %s (replayed %q); want 2 payments, the second one's own answer",
			n, body, resp2.Header.Get(idemclient.HeaderReplayed))
	}
	if k1, k2 := idemclient.KeyOf(resp1), idemclient.KeyOf(resp2); k1 == k2 || !uuidV4.MatchString(k2) {
		t.Fatalf("keys %q and %q; want two generated keys", k1, k2)
	}
	if n := idemclient.AttemptsOf(resp2); n != 1 {
		t.Fatalf("AttemptsOf %d for the second payment, want 1 (its own count)", n)
	}
}

// TestReviewForgedRedirectLink: a request whose Response field points at a
// response that did not come from the transport, or at one that is no
// redirect, is a first hop; a Response/Request cycle (which net/http never
// builds, but a caller can) neither hangs nor inherits anything.
func TestReviewForgedRedirectLink(t *testing.T) {
	srv := newServer(t, status(http.StatusCreated))
	rt := newTransport(t, newFakeClock())

	t.Run("cycle", func(t *testing.T) {
		req := newRequest(t, t.Context(), http.MethodPost, srv.URL, "x")
		req.Response = &http.Response{StatusCode: http.StatusTemporaryRedirect, Request: req}
		done := make(chan error, 1)
		go func() {
			resp, err := rt.RoundTrip(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("RoundTrip did not return: it walks the Response/Request cycle forever")
		}
	})

	t.Run("a guarded 201 as the Response", func(t *testing.T) {
		resp1, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, "x"))
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp1)
		req := newRequest(t, t.Context(), http.MethodPost, srv.URL, "y")
		req.Response = resp1 // not a redirect: net/http never makes a hop of it
		resp2, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp2)
		if k1, k2 := idemclient.KeyOf(resp1), idemclient.KeyOf(resp2); k1 == k2 {
			t.Fatalf("the second request inherited key %q", k1)
		}
	})

	t.Run("the context of a guarded response's request", func(t *testing.T) {
		resp1, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL, "x"))
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp1)
		resp2, err := rt.RoundTrip(newRequest(t, resp1.Request.Context(), http.MethodGet, srv.URL, ""))
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp2)
		if n := idemclient.AttemptsOf(resp2); n != 0 {
			t.Fatalf("AttemptsOf %d for an unguarded GET, want 0", n)
		}
	})
}

// TestReviewNonCanonicalCallerKey: net/http lets a caller set a header
// under any spelling by assigning to the map (req.Header["idempotency-key"]);
// it is sent as written and the server reads it as Idempotency-Key. The
// transport looked only for the canonical name, so it added a generated key
// next to the caller's: the server saw two values. The idemhttp middleware
// refuses that (400), so the payment never goes through; a server that reads
// the first value dedupes by the generated key, so the caller's own key,
// which it keeps to learn the outcome after a crash, names nothing there.
func TestReviewNonCanonicalCallerKey(t *testing.T) {
	for _, name := range []string{"idempotency-key", "IDEMPOTENCY-KEY"} {
		t.Run(name, func(t *testing.T) {
			api := newPaymentsAPI(idempotent.NewMemoryStore())
			var s *server
			s = newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					api.lose(w, r, lastBody(s)) // made, answer lost: the retry must find it
					return
				}
				api.serve(w, r, lastBody(s))
			})
			rt := newTransport(t, newFakeClock())
			req := newRequest(t, t.Context(), http.MethodPost, s.URL+"/payments", `{"amount":100}`)
			req.Header[name] = []string{"order-42"}
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			if key := oneKey(t, s.Hits()); key != "order-42" {
				t.Fatalf("key %q on the wire, want the caller's", key)
			}
			if resp.StatusCode != http.StatusCreated || body != `{"id":"p-1"}` || idemclient.KeyOf(resp) != "order-42" {
				t.Fatalf("got %d %s, KeyOf %q; want the payment's 201 and the caller's key", resp.StatusCode, body, idemclient.KeyOf(resp))
			}

			// Sent again later under the canonical name (another process,
			// after a crash): the replay, not a second payment.
			req = newRequest(t, t.Context(), http.MethodPost, s.URL+"/payments", `{"amount":100}`)
			req.Header.Set(idemclient.HeaderKey, "order-42")
			resp, err = rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if n := api.payments.Load(); n != 1 || resp.Header.Get(idemclient.HeaderReplayed) != "true" {
				t.Fatalf("%d payments, replayed %q; want 1, the replay", n, resp.Header.Get(idemclient.HeaderReplayed))
			}
		})
	}
	t.Run("validated", func(t *testing.T) {
		for _, header := range []http.Header{
			{"idempotency-key": {"order 42"}},
			{"idempotency-key": {"order-42"}, idemclient.HeaderKey: {"order-43"}},
		} {
			srv := newServer(t, status(http.StatusCreated))
			req := newRequest(t, t.Context(), http.MethodPost, srv.URL, "x")
			req.Header = header
			_, err := newTransport(t, newFakeClock()).RoundTrip(req)
			var ke *idemclient.InvalidKeyError
			if !errors.As(err, &ke) || len(srv.Hits()) != 0 {
				t.Fatalf("header %v: err %v, %d sent; want *InvalidKeyError, nothing sent", header, err, len(srv.Hits()))
			}
		}
	})
	t.Run("dropped on a 303", func(t *testing.T) {
		result := newServer(t, status(http.StatusOK))
		a := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			redirectTo(w, r, result.URL+"/payments/p-1", http.StatusSeeOther)
		})
		client := &http.Client{Transport: newTransport(t, newFakeClock())}
		req := newRequest(t, t.Context(), http.MethodPost, a.URL+"/payments", `{"amount":100}`)
		req.Header["idempotency-key"] = []string{"order-42"}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if key := oneKey(t, a.Hits()); key != "order-42" {
			t.Fatalf("key %q, want the caller's", key)
		}
		if hits := result.Hits(); len(hits) != 1 || hits[0].keys != nil {
			t.Fatalf("GET hops %+v, want one without a key", hits)
		}
	})
}

// TestReviewInvalidRequest: a request net/http's Transport refuses (nil
// Header, nil URL) fails at once with an error and nothing sent: no panic
// (the transport wrote the key into a nil header map) and no retries with
// waits of a request that can never be sent.
func TestReviewInvalidRequest(t *testing.T) {
	srv := newServer(t, status(http.StatusCreated))
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		req  *http.Request
	}{
		{"nil Header", &http.Request{Method: http.MethodPost, URL: u}},
		{"nil URL", &http.Request{Method: http.MethodPost, Header: http.Header{}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := &closeCounter{Reader: strings.NewReader("x")}
			req := tt.req.WithContext(t.Context())
			req.Body, req.ContentLength = body, 1
			c := newFakeClock()
			rt := newTransport(t, c)
			var resp *http.Response
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("RoundTrip panicked: %v", p)
					}
				}()
				resp, err = rt.RoundTrip(req)
			}()
			if err == nil {
				readBody(t, resp)
				t.Fatal("no error")
			}
			if len(srv.Hits()) != 0 || len(c.Sleeps()) != 0 || body.Closes() == 0 {
				t.Fatalf("err %v, %d sent, waits %v, body closed %d times; want nothing sent, no wait, body closed",
					err, len(srv.Hits()), c.Sleeps(), body.Closes())
			}
		})
	}
}

// TestReviewKeyCrossesHosts is a regression guard of a decision: a 307 or
// 308 to another host carries the key even where net/http drops the
// credentials (Authorization, Cookie) because the host is not the first
// one's domain or a subdomain of it. The key is not a credential: servers
// scope it by caller (contract §4, the IETF draft's composite key), and the
// body it dedupes goes to that host anyway; dropping it would make the hop a
// new payment at a host that shares the first one's store.
func TestReviewKeyCrossesHosts(t *testing.T) {
	type seen struct{ key, auth []string }
	var mu sync.Mutex
	var got []seen
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{r.Header.Values(idemclient.HeaderKey), r.Header.Values("Authorization")})
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	defer b.Close()
	bu, err := url.Parse(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	other := "http://localhost:" + bu.Port() // another domain than 127.0.0.1 for net/http
	a := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		redirectTo(w, r, other+"/payments", http.StatusPermanentRedirect)
	})
	client := &http.Client{Transport: newTransport(t, newFakeClock())}
	req := newRequest(t, t.Context(), http.MethodPost, a.URL+"/payments", `{"amount":100}`)
	req.Header.Set("Authorization", "Bearer t")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	first := oneKey(t, a.Hits())
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || len(got[0].key) != 1 || got[0].key[0] != first || got[0].auth != nil {
		t.Fatalf("hop to %s saw %+v; want the key %q and no Authorization", other, got, first)
	}
}

// TestReviewConcurrentRequests: one transport, many goroutines, every
// first answer lost. Each request must get its own key, its own single run
// and its own answer (never another request's replay).
func TestReviewConcurrentRequests(t *testing.T) {
	const n = 24
	var runs atomic.Int32
	api := idemhttp.Middleware(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithLogger(quiet())))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		runs.Add(1)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"echo":%s}`, b)
	}))
	var mu sync.Mutex
	seenKey := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(idemclient.HeaderKey)
		mu.Lock()
		first := !seenKey[key]
		seenKey[key] = true
		mu.Unlock()
		if !first {
			api.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(httptest.NewRecorder(), r) // made, answer lost
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		c.Close()
	}))
	defer srv.Close()
	rt := newTransport(t, newFakeClock())
	keys := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"order":%d}`, i)
			resp, err := rt.RoundTrip(newRequest(t, context.Background(), http.MethodPost, srv.URL+"/orders", body))
			if err != nil {
				t.Errorf("order %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			var out struct{ Echo struct{ Order int } }
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Echo.Order != i ||
				resp.Header.Get(idemclient.HeaderReplayed) != "true" || idemclient.AttemptsOf(resp) != 2 {
				t.Errorf("order %d: answer for order %d (%v), replayed %q, %d attempts; want its own replay after 2",
					i, out.Echo.Order, err, resp.Header.Get(idemclient.HeaderReplayed), idemclient.AttemptsOf(resp))
			}
			keys[i] = idemclient.KeyOf(resp)
		})
	}
	wg.Wait()
	distinct := map[string]bool{}
	for _, k := range keys {
		distinct[k] = true
	}
	if runs.Load() != n || len(distinct) != n || len(seenKey) != n {
		t.Fatalf("%d runs, %d distinct keys, %d keys at the server; want %d of each", runs.Load(), len(distinct), len(seenKey), n)
	}
}

// TestReviewInProgressThenReplay: the first attempt's connection drops while
// its handler still runs; the retry finds the key in progress (409,
// Retry-After: 1), waits what the server asked and then gets the replay:
// one payment, and the caller sees the payment's answer.
func TestReviewInProgressThenReplay(t *testing.T) {
	var payments atomic.Int32
	started, release, finished := make(chan struct{}), make(chan struct{}), make(chan struct{})
	pay := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if payments.Load() == 0 {
			close(started)
			<-release
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":"p-%d"}`, payments.Add(1))
	})
	// The retries reach another instance of the service sharing the store
	// (another Store value: within one process duplicates coalesce in
	// memory instead of getting 409).
	store := idempotent.NewMemoryStore()
	api := idemhttp.Middleware(idempotent.New(store, idempotent.WithLogger(quiet())))(pay)
	other := idemhttp.Middleware(idempotent.New(&struct{ idempotent.Store }{store}, idempotent.WithLogger(quiet())))(pay)
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) > 1 {
			other.ServeHTTP(w, r)
			return
		}
		r2 := r.WithContext(context.WithoutCancel(r.Context()))
		go func() {
			defer close(finished)
			api.ServeHTTP(httptest.NewRecorder(), r2)
		}()
		<-started
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		c.Close()
	}))
	defer srv.Close()
	c := newFakeClock()
	var sleeps atomic.Int32
	c.onSleep = func() {
		if sleeps.Add(1) == 2 { // after the 409: the first run ends
			close(release)
			<-finished
		}
	}
	var statuses []int
	rt := newTransport(t, c, idemclient.WithOnAttempt(func(i idemclient.AttemptInfo) { statuses = append(statuses, i.Status) }))
	resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{"amount":100}`))
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if payments.Load() != 1 || resp.StatusCode != http.StatusCreated || resp.Header.Get(idemclient.HeaderReplayed) != "true" || body != `{"id":"p-1"}` {
		t.Fatalf("%d payments, got %d %s replayed=%q; want 1 payment, its replay", payments.Load(), resp.StatusCode, body, resp.Header.Get(idemclient.HeaderReplayed))
	}
	if fmt.Sprint(statuses) != "[0 409 201]" || c.Sleeps()[1] != time.Second {
		t.Fatalf("statuses %v, waits %v; want a transport error, 409, 201 and the 409's Retry-After of 1s", statuses, c.Sleeps())
	}
}

// TestReviewBrokenBase: a base RoundTripper that returns neither a response
// nor an error (net/http's Client reports that as an error) is a failed
// attempt whose outcome is unknown: retried with the key, then an
// *AttemptError; never a panic, never a success.
func TestReviewBrokenBase(t *testing.T) {
	var calls atomic.Int32
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, nil
	})
	c := newFakeClock()
	rt := idemclient.NewTransport(base, idemclient.WithMaxAttempts(2), idemclient.WithLogger(quiet()),
		idemclient.WithTestTime(c.Now, c.Sleep, func() float64 { return 1 }))
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("RoundTrip panicked: %v", p)
			}
		}()
		var resp *http.Response
		resp, err = rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, "http://127.0.0.1:1/payments", "x"))
		if resp != nil {
			t.Fatalf("a response (%d) from a base that returned none", resp.StatusCode)
		}
	}()
	var ae *idemclient.AttemptError
	if !errors.As(err, &ae) || ae.Attempts != 2 || ae.Key == "" || calls.Load() != 2 {
		t.Fatalf("err %v after %d calls; want *AttemptError after 2 attempts with the key", err, calls.Load())
	}
}

// outerRetry is a RoundTripper stacked above the transport that sends a
// request again, as it is, after a 503.
type outerRetry struct{ next http.RoundTripper }

func (o outerRetry) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := o.next.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		return resp, err
	}
	drainClose(resp)
	if r.GetBody != nil {
		if r.Body, err = r.GetBody(); err != nil {
			return nil, err
		}
	}
	return o.next.RoundTrip(r)
}

func drainClose(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// TestReviewHopSentAgainByAnOuterRoundTripper: a hop that a RoundTripper
// above the transport sends again (the same request) is still the hop: it
// carries the first hop's key, so the host that made the payment and lost
// its answer replays it.
func TestReviewHopSentAgainByAnOuterRoundTripper(t *testing.T) {
	api := newPaymentsAPI(idempotent.NewMemoryStore())
	var b *server
	b = newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			api.serve(httptest.NewRecorder(), r, lastBody(b)) // made, answer lost behind a 503
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		api.serve(w, r, lastBody(b))
	})
	a := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		redirectTo(w, r, b.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	client := &http.Client{Transport: outerRetry{newTransport(t, newFakeClock(), idemclient.WithMaxAttempts(1))}}
	resp, err := client.Do(newRequest(t, t.Context(), http.MethodPost, a.URL+"/payments", `{"amount":100}`))
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	oneKey(t, append(a.Hits(), b.Hits()...))
	if n := api.payments.Load(); n != 1 || body != `{"id":"p-1"}` {
		t.Fatalf("%d payments, answer %s; want 1 payment, its replay", n, body)
	}
}
