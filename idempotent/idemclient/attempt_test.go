package idemclient_test

import (
	"context"
	"io"
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
)

// peekCounting is a memory store that counts its read-first reads and its
// acquires.
type peekCounting struct {
	*idempotent.MemoryStore
	peeks, acquires atomic.Int32
}

func (s *peekCounting) Peek(ctx context.Context, id string) (*idempotent.Record, error) {
	s.peeks.Add(1)
	return s.MemoryStore.Peek(ctx, id)
}

func (s *peekCounting) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	s.acquires.Add(1)
	return s.MemoryStore.Acquire(ctx, rec, now)
}

// TestResendCarriesAttempt: the first attempt carries no Idempotency-Attempt
// header, every resend to the same URL its number there; our server reads
// the record first for it, so the replay after a lost answer costs one read
// and no acquire. A caller's own value is kept.
func TestResendCarriesAttempt(t *testing.T) {
	store := &peekCounting{MemoryStore: idempotent.NewMemoryStore()}
	pay := &payments{}
	api := idemhttp.Middleware(guard(store))(pay)
	var (
		mu   sync.Mutex
		seen [][]string
	)
	var s *server
	s = newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Values(idemclient.HeaderAttempt))
		mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(s.Hits()[n-1].body))
		if n > 2 {
			api.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(httptest.NewRecorder(), r) // made (or replayed), answer lost
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		c.Close()
	})
	rt := newTransport(t, newFakeClock(), idemclient.WithMaxAttempts(3))
	req := newRequest(t, t.Context(), http.MethodPost, s.URL+"/payments", `{"amount":1250}`)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != 201 || body != `{"id":"p-1"}` || resp.Header.Get(idemclient.HeaderReplayed) != "true" || pay.runs.Load() != 1 {
		t.Fatalf("%d %s replayed=%q, %d payments; want the replay of p-1", resp.StatusCode, body, resp.Header.Get(idemclient.HeaderReplayed), pay.runs.Load())
	}
	mu.Lock()
	got := seen
	mu.Unlock()
	if len(got) != 3 || len(got[0]) != 0 || len(got[1]) != 1 || got[1][0] != "2" || len(got[2]) != 1 || got[2][0] != "3" {
		t.Fatalf("Idempotency-Attempt per attempt %q; want none, 2, 3", got)
	}
	// The first attempt wrote first (1 acquire, no read); both resends read
	// first and replayed without an acquire.
	if p, a := store.peeks.Load(), store.acquires.Load(); p != 2 || a != 1 {
		t.Errorf("%d reads first, %d acquires; want 2 and 1", p, a)
	}

	// A caller that sets the header itself keeps its value on every attempt.
	mu.Lock()
	seen = nil
	mu.Unlock()
	req = newRequest(t, t.Context(), http.MethodPost, s.URL+"/payments", `{"amount":1}`)
	req.Header.Set(idemclient.HeaderAttempt, "7")
	if resp, err = rt.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || len(seen[0]) != 1 || seen[0][0] != "7" {
		t.Errorf("caller's Idempotency-Attempt: seen %q, want 7", seen)
	}
}
