package idemclient_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemclient"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
)

// paymentsAPI is a payment handler behind the idemhttp middleware over
// store: hosts given the same store share its records, as the instances of
// one service behind a load balancer do.
type paymentsAPI struct {
	payments atomic.Int32
	http.Handler
}

func newPaymentsAPI(store idempotent.Store) *paymentsAPI {
	a := &paymentsAPI{}
	a.Handler = idemhttp.Middleware(idempotent.New(store))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":"p-%d"}`, a.payments.Add(1))
	}))
	return a
}

// serve passes a request the test server already read to the API.
func (a *paymentsAPI) serve(w http.ResponseWriter, r *http.Request, body string) {
	r.Body = io.NopCloser(strings.NewReader(body))
	a.ServeHTTP(w, r)
}

// lose serves the request, then drops the connection: the payment is made,
// its answer lost.
func (a *paymentsAPI) lose(w http.ResponseWriter, r *http.Request, body string) {
	a.serve(httptest.NewRecorder(), r, body)
	c, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	c.Close()
}

// lastBody returns the body of the server's latest request (answer runs
// after the request was recorded).
func lastBody(s *server) string {
	h := s.Hits()
	return h[len(h)-1].body
}

func redirectTo(w http.ResponseWriter, r *http.Request, url string, code int) {
	http.Redirect(w, r, url, code)
}

// keysOf returns the Idempotency-Key values of every hit, in order.
func keysOf(servers ...*server) [][]string {
	var out [][]string
	for _, s := range servers {
		for _, h := range s.Hits() {
			out = append(out, h.keys)
		}
	}
	return out
}

// TestRedirectKeepsTheKey: a payment is made at host A, its answer is lost;
// the retry at A is redirected (307/308) to host B, which shares A's store.
// Every hop carries the key of the first attempt, so B finds the payment and
// replays it: one payment. With a key per hop, B would charge again.
func TestRedirectKeepsTheKey(t *testing.T) {
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		for _, callerKey := range []string{"", "order-42"} {
			t.Run(fmt.Sprintf("%d caller key %q", code, callerKey), func(t *testing.T) {
				api := newPaymentsAPI(idempotent.NewMemoryStore())
				var b *server
				b = newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { api.serve(w, r, lastBody(b)) })
				var a *server
				a = newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
					if n == 1 {
						api.lose(w, r, lastBody(a))
						return
					}
					redirectTo(w, r, b.URL+r.URL.Path, code)
				})
				var infos []idemclient.AttemptInfo
				client := &http.Client{Transport: newTransport(t, newFakeClock(),
					idemclient.WithOnAttempt(func(i idemclient.AttemptInfo) { infos = append(infos, i) }))}
				req := newRequest(t, t.Context(), http.MethodPost, a.URL+"/payments", `{"amount":100}`)
				if callerKey != "" {
					req.Header.Set(idemclient.HeaderKey, callerKey)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body := readBody(t, resp)

				if n := api.payments.Load(); n != 1 {
					t.Fatalf("%d payments, want 1: the hop to B must carry A's key", n)
				}
				key := oneKey(t, append(a.Hits(), b.Hits()...))
				if callerKey != "" && key != callerKey {
					t.Fatalf("key %q on the wire, want the caller's %q", key, callerKey)
				}
				if resp.StatusCode != http.StatusCreated || resp.Header.Get(idemclient.HeaderReplayed) != "true" || body != `{"id":"p-1"}` {
					t.Fatalf("got %d replayed=%q %s, want A's payment replayed by B", resp.StatusCode, resp.Header.Get(idemclient.HeaderReplayed), body)
				}
				if len(a.Hits()) != 2 || len(b.Hits()) != 1 {
					t.Fatalf("A saw %d, B %d requests; want 2 and 1", len(a.Hits()), len(b.Hits()))
				}
				if idemclient.KeyOf(resp) != strings.Trim(key, `"`) || idemclient.AttemptsOf(resp) != 3 {
					t.Fatalf("KeyOf %q, AttemptsOf %d; want %q and 3 (two at A, one at B)", idemclient.KeyOf(resp), idemclient.AttemptsOf(resp), key)
				}
				var numbers []int
				for _, i := range infos {
					numbers = append(numbers, i.Attempt)
					if i.Key != idemclient.KeyOf(resp) {
						t.Fatalf("attempt %d reported key %q, want %q", i.Attempt, i.Key, idemclient.KeyOf(resp))
					}
				}
				if !slices.Equal(numbers, []int{1, 2, 3}) {
					t.Fatalf("attempts reported %v, want 1, 2, 3: one logical request over both hops", numbers)
				}
			})
		}
	}
}

// TestRedirectToGetCarriesNoKey: a 301, 302 or 303 turns the POST into a GET
// of another resource (the result); that hop carries no key, not even the
// caller's, and is sent once.
func TestRedirectToGetCarriesNoKey(t *testing.T) {
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther} {
		for _, callerKey := range []string{"", "order-42"} {
			t.Run(fmt.Sprintf("%d caller key %q", code, callerKey), func(t *testing.T) {
				result := newServer(t, status(http.StatusServiceUnavailable, http.StatusOK))
				a := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
					redirectTo(w, r, result.URL+"/payments/p-1", code)
				})
				client := &http.Client{Transport: newTransport(t, newFakeClock())}
				req := newRequest(t, t.Context(), http.MethodPost, a.URL+"/payments", `{"amount":100}`)
				if callerKey != "" {
					req.Header.Set(idemclient.HeaderKey, callerKey)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				readBody(t, resp)
				key := oneKey(t, a.Hits())
				if callerKey != "" && key != callerKey {
					t.Fatalf("key %q, want the caller's", key)
				}
				hits := result.Hits()
				if len(hits) != 1 || hits[0].method != http.MethodGet || hits[0].keys != nil {
					t.Fatalf("result hops %+v, want one GET without a key", hits)
				}
				// The GET's answer as it came, not guarded; KeyOf names the
				// POST's key, to send the POST again with.
				if resp.StatusCode != http.StatusServiceUnavailable || idemclient.KeyOf(resp) != key || idemclient.AttemptsOf(resp) != 0 {
					t.Fatalf("got %d, KeyOf %q (POST's %q), AttemptsOf %d; want the GET's answer as it came, not guarded",
						resp.StatusCode, idemclient.KeyOf(resp), key, idemclient.AttemptsOf(resp))
				}
			})
		}
	}
}

// TestRedirectChains: the key is kept over a chain of same-method hops and
// dropped for good once a hop turned the method into GET.
func TestRedirectChains(t *testing.T) {
	tests := []struct {
		name  string
		codes []int // the answers of the hops before the last one
		keyed int   // hops that must carry the key, the first ones
	}{
		{name: "307 then 308", codes: []int{307, 308}, keyed: 3},
		{name: "308 then 307 then 307", codes: []int{308, 307, 307}, keyed: 4},
		{name: "307 then 303", codes: []int{307, 303}, keyed: 2},
		{name: "303 then 307", codes: []int{303, 307}, keyed: 1},
	}
	for _, tt := range tests {
		for _, callerKey := range []string{"", `"order 42"`} {
			t.Run(fmt.Sprintf("%s caller key %q", tt.name, callerKey), func(t *testing.T) {
				last := newServer(t, status(http.StatusCreated))
				hops := []*server{last}
				for i := len(tt.codes) - 1; i >= 0; i-- {
					next, code := hops[0], tt.codes[i]
					hops = append([]*server{newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
						redirectTo(w, r, next.URL+"/payments", code)
					})}, hops...)
				}
				client := &http.Client{Transport: newTransport(t, newFakeClock())}
				req := newRequest(t, t.Context(), http.MethodPost, hops[0].URL+"/payments", `{"amount":100}`)
				if callerKey != "" {
					req.Header.Set(idemclient.HeaderKey, callerKey)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				readBody(t, resp)
				keys := keysOf(hops...)
				if len(keys) != len(hops) {
					t.Fatalf("%d hops sent, want %d", len(keys), len(hops))
				}
				var all []hit
				for _, s := range hops[:tt.keyed] {
					all = append(all, s.Hits()...)
				}
				key := oneKey(t, all)
				if callerKey != "" && key != callerKey {
					t.Fatalf("key %q, want the caller's %q", key, callerKey)
				}
				for i, k := range keys[tt.keyed:] {
					if k != nil {
						t.Fatalf("hop %d (a GET) carries key %q, want none", tt.keyed+i+1, k)
					}
				}
				want := 0
				if tt.keyed == len(hops) {
					want = len(hops) // every hop guarded: one attempt each
				}
				if idemclient.AttemptsOf(resp) != want {
					t.Fatalf("AttemptsOf %d, want %d", idemclient.AttemptsOf(resp), want)
				}
			})
		}
	}
}

// TestRedirectRetryOnSecondHop: the second hop's retries carry the first
// hop's key too, and the attempts bound counts over both hops.
func TestRedirectRetryOnSecondHop(t *testing.T) {
	b := newServer(t, status(http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusCreated))
	a := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		redirectTo(w, r, b.URL+"/payments", http.StatusTemporaryRedirect)
	})
	client := &http.Client{Transport: newTransport(t, newFakeClock(), idemclient.WithMaxAttempts(3))}
	resp, err := client.Post(a.URL+"/payments", "application/json", strings.NewReader(`{"amount":100}`))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	oneKey(t, append(a.Hits(), b.Hits()...))
	if len(b.Hits()) != 2 || resp.StatusCode != http.StatusServiceUnavailable || idemclient.AttemptsOf(resp) != 3 {
		t.Fatalf("B saw %d attempts, got %d, AttemptsOf %d; want 2 at B (3 in all, the bound), the last 503",
			len(b.Hits()), resp.StatusCode, idemclient.AttemptsOf(resp))
	}
}

// TestRedirectUserClient: a caller's own http.Client with the transport and
// its own CheckRedirect keeps the key over redirects, and its CheckRedirect
// still runs (and still decides).
func TestRedirectUserClient(t *testing.T) {
	b := newServer(t, status(http.StatusCreated))
	a := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		redirectTo(w, r, b.URL+"/payments", http.StatusTemporaryRedirect)
	})
	var checked int
	client := &http.Client{
		Transport: newTransport(t, newFakeClock()),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			checked++
			req.Header.Set("X-Hop", fmt.Sprint(len(via)))
			return nil
		},
	}
	var keys []string
	for range 2 {
		resp, err := client.Post(a.URL+"/payments", "application/json", strings.NewReader(`{"amount":100}`))
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		keys = append(keys, idemclient.KeyOf(resp))
	}
	for i := range 2 {
		if got := oneKey(t, []hit{a.Hits()[i], b.Hits()[i]}); got != keys[i] {
			t.Fatalf("request %d: key %q on the wire, KeyOf %q", i+1, got, keys[i])
		}
	}
	if keys[0] == keys[1] || checked != 2 {
		t.Fatalf("keys %q, CheckRedirect ran %d times; want two keys, 2 runs", keys, checked)
	}

	// A CheckRedirect that drops the caller's key from the hop: the hop
	// still carries it, as the first hop sent it.
	client.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		req.Header.Del(idemclient.HeaderKey)
		return nil
	}
	req := newRequest(t, t.Context(), http.MethodPost, a.URL+"/payments", `{"amount":100}`)
	req.Header.Set(idemclient.HeaderKey, "order-42")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if got := oneKey(t, []hit{a.Hits()[2], b.Hits()[2]}); got != "order-42" {
		t.Fatalf("key %q, want the caller's on both hops", got)
	}

	stop := errors.New("no redirects")
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return stop }
	resp, err = client.Post(a.URL+"/payments", "application/json", strings.NewReader(`{"amount":100}`))
	if !errors.Is(err, stop) || resp == nil || resp.StatusCode != http.StatusTemporaryRedirect || len(b.Hits()) != 3 {
		t.Fatalf("err %v, B saw %d; want the CheckRedirect's error and no hop", err, len(b.Hits()))
	}
}

// TestNewClientRedirect: NewClient's client keeps the key over a redirect.
func TestNewClientRedirect(t *testing.T) {
	api := newPaymentsAPI(idempotent.NewMemoryStore())
	var b *server
	b = newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { api.serve(w, r, lastBody(b)) })
	a := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		redirectTo(w, r, b.URL+r.URL.Path, http.StatusPermanentRedirect)
	})
	client := idemclient.NewClient(idemclient.WithLogger(quiet()))
	defer client.CloseIdleConnections()
	for range 2 { // the second request is another logical request: another key, another payment
		resp, err := client.Post(a.URL+"/payments", "application/json", strings.NewReader(`{"amount":100}`))
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
	}
	ah, bh := a.Hits(), b.Hits()
	if len(ah) != 2 || len(bh) != 2 || api.payments.Load() != 2 {
		t.Fatalf("A %d, B %d, payments %d; want 2, 2, 2", len(ah), len(bh), api.payments.Load())
	}
	for i := range 2 {
		oneKey(t, []hit{ah[i], bh[i]})
	}
	if ah[0].keys[0] == ah[1].keys[0] {
		t.Fatal("two logical requests share a key")
	}
}

// TestHeadersAreTheServers: the client's header names are the middleware's.
func TestHeadersAreTheServers(t *testing.T) {
	if idemclient.HeaderKey != idemhttp.HeaderKey || idemclient.HeaderReplayed != idemhttp.HeaderReplayed {
		t.Fatalf("client headers %q, %q; middleware %q, %q", idemclient.HeaderKey, idemclient.HeaderReplayed, idemhttp.HeaderKey, idemhttp.HeaderReplayed)
	}
}

// TestResendAfterSeeOtherFailed: the payment is made and answered with a 303
// to its result, whose GET fails (503). KeyOf of that answer is the POST's
// key, so the caller's resend under it replays the payment: one payment,
// where a resend under a new key (KeyOf "") would pay twice.
func TestResendAfterSeeOtherFailed(t *testing.T) {
	api := newPaymentsAPI(idempotent.NewMemoryStore())
	result := newServer(t, status(http.StatusServiceUnavailable, http.StatusOK))
	var a *server
	a = newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		api.serve(rec, r, lastBody(a))
		if rec.Code != http.StatusCreated {
			w.WriteHeader(rec.Code)
			return
		}
		redirectTo(w, r, result.URL+"/payments/p-1", http.StatusSeeOther)
	})
	client := &http.Client{Transport: newTransport(t, newFakeClock())}
	resp, err := client.Do(newRequest(t, t.Context(), http.MethodPost, a.URL+"/payments", `{"amount":100}`))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	key := idemclient.KeyOf(resp)
	if resp.StatusCode != http.StatusServiceUnavailable || key == "" || key != oneKey(t, a.Hits()) {
		t.Fatalf("first: %d, KeyOf %q; want the GET's 503 and the POST's key", resp.StatusCode, key)
	}
	again := newRequest(t, t.Context(), http.MethodPost, a.URL+"/payments", `{"amount":100}`)
	again.Header.Set(idemclient.HeaderKey, key)
	resp, err = client.Do(again)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusOK || api.payments.Load() != 1 {
		t.Fatalf("resend: %d, %d payments; want the result and one payment", resp.StatusCode, api.payments.Load())
	}
}
