package idemhttp_test

import (
	"context"
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
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// reviewClock is a settable clock shared by the guards of one scenario.
type reviewClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *reviewClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *reviewClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// reviewPeekable is another Store value over one memory store (another
// instance of the API: its own flights), which keeps Peek (ReplayReader),
// unlike struct{ idempotent.Store }.
type reviewPeekable struct{ *idempotent.MemoryStore }

// reviewOutcome is what a duplicate's client got, and how often the
// handler ran in the scenario.
type reviewOutcome struct {
	Status     int
	Body       string
	Replayed   string
	RetryAfter string
	Runs       int64
}

// reviewEnv is one scenario's world: instances of the API over one store.
type reviewEnv struct {
	t        *testing.T
	clk      *reviewClock
	instance func() idempotent.Store // a new Store value over the shared records
	runs     atomic.Int64
	block    chan struct{} // the first run waits on it when not nil
	started  chan struct{}
	first    atomic.Bool
}

func (e *reviewEnv) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		n := e.runs.Add(1)
		if e.block != nil && !e.first.Swap(true) {
			close(e.started)
			<-e.block
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = fmt.Fprintf(w, `{"id":"p-%d"}`, n)
	})
}

// api returns the middleware of a new instance.
func (e *reviewEnv) api(opts ...idempotent.Option) http.Handler {
	opts = append([]idempotent.Option{idempotent.WithClock(e.clk.Now), idempotent.WithTTL(time.Hour),
		idempotent.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	return idemhttp.Middleware(idempotent.New(e.instance(), opts...))(e.handler())
}

// send sends POST /payments with body over real HTTP to h (through wrap,
// if any), marked as attempt 2 or not.
func (e *reviewEnv) send(h http.Handler, body string, marked bool) reviewOutcome {
	e.t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/payments", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set(idemhttp.HeaderKey, "pay-1")
	req.Header.Set("Content-Type", "application/json")
	if marked {
		req.Header.Set(idemhttp.HeaderAttempt, "2")
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reviewOutcome{Status: res.StatusCode, Body: string(b), Replayed: res.Header.Get(idemhttp.HeaderReplayed),
		RetryAfter: res.Header.Get("Retry-After"), Runs: e.runs.Load()}
}

// cancelled is an outer layer that hands the middleware a request whose
// context has ended: the client went away (net/http cancels the request's
// context when the connection closes), or a deadline an outer middleware
// propagates has passed.
func cancelled(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// TestReviewAttemptHintChangesNoOutcome: contract §4, "The header changes
// cost only, never an outcome". Every scenario is played twice on a fresh
// store, once with the duplicate unmarked and once marked as a retry
// (Idempotency-Attempt: 2, which makes it read first); the duplicate's
// client must get the same answer, and the handler must run as often.
func TestReviewAttemptHintChangesNoOutcome(t *testing.T) {
	const body = `{"amount":1250}`
	scenarios := []struct {
		name string
		play func(e *reviewEnv, marked bool) reviewOutcome
	}{
		{"completed: replay", func(e *reviewEnv, marked bool) reviewOutcome {
			e.send(e.api(), body, false)
			return e.send(e.api(), body, marked)
		}},
		{"completed, another payload: 422", func(e *reviewEnv, marked bool) reviewOutcome {
			e.send(e.api(), body, false)
			return e.send(e.api(), `{"amount":9999}`, marked)
		}},
		{"completed and expired: runs again", func(e *reviewEnv, marked bool) reviewOutcome {
			e.send(e.api(), body, false)
			e.clk.Add(time.Hour + time.Second)
			return e.send(e.api(), body, marked)
		}},
		{"in progress on another instance: 409", func(e *reviewEnv, marked bool) reviewOutcome {
			e.block, e.started = make(chan struct{}), make(chan struct{})
			a := e.api()
			done := make(chan struct{})
			go func() {
				defer close(done)
				r := httptest.NewRequest(http.MethodPost, "/payments", strings.NewReader(body))
				r.Header.Set(idemhttp.HeaderKey, "pay-1")
				r.Header.Set("Content-Type", "application/json")
				a.ServeHTTP(httptest.NewRecorder(), r)
			}()
			<-e.started
			defer func() { close(e.block); <-done }()
			return e.send(e.api(), body, marked)
		}},
		{"in progress, lease ended: taken over", func(e *reviewEnv, marked bool) reviewOutcome {
			e.block, e.started = make(chan struct{}), make(chan struct{})
			a := e.api(idempotent.WithLease(10 * time.Second))
			done := make(chan struct{})
			go func() {
				defer close(done)
				r := httptest.NewRequest(http.MethodPost, "/payments", strings.NewReader(body))
				r.Header.Set(idemhttp.HeaderKey, "pay-1")
				r.Header.Set("Content-Type", "application/json")
				a.ServeHTTP(httptest.NewRecorder(), r)
			}()
			<-e.started
			defer func() { close(e.block); <-done }()
			e.clk.Add(11 * time.Second)
			return e.send(e.api(idempotent.WithLease(10*time.Second)), body, marked)
		}},
		{"completed, duplicate whose client is gone", func(e *reviewEnv, marked bool) reviewOutcome {
			e.send(e.api(), body, false)
			return e.send(cancelled(e.api()), body, marked)
		}},
	}
	stores := []struct {
		name string
		// backing returns a function making Store values (instances) over
		// one fresh set of records.
		backing func(t *testing.T) func() idempotent.Store
	}{
		{"memory", func(*testing.T) func() idempotent.Store {
			m := idempotent.NewMemoryStore()
			n := 0
			return func() idempotent.Store {
				n++
				if n == 1 {
					return m
				}
				return &reviewPeekable{m}
			}
		}},
		{"dynalite", func(t *testing.T) func() idempotent.Store {
			client := testdynamo.Client(t)
			table := testdynamo.NewTable(t, client)
			return func() idempotent.Store { return dynamostore.New(client, table) }
		}},
	}
	for _, st := range stores {
		for _, sc := range scenarios {
			t.Run(st.name+"/"+sc.name, func(t *testing.T) {
				var got [2]reviewOutcome
				for i, marked := range []bool{false, true} {
					e := &reviewEnv{t: t, clk: &reviewClock{now: time.Unix(1_800_000_000, 0)}, instance: st.backing(t)}
					got[i] = sc.play(e, marked)
				}
				if got[0] != got[1] {
					t.Errorf("the same duplicate got\n  unmarked:                 %+v\n  Idempotency-Attempt: 2:   %+v\nwant one outcome (the header is a cost hint only)", got[0], got[1])
				}
			})
		}
	}
}
