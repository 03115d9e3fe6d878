package idemhttp_test

import (
	"cmp"
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
	status   int // the handler's status (0: 201)
	pad      int // bytes of padding in the handler's body
	mw       []idemhttp.Option
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
		w.WriteHeader(cmp.Or(e.status, http.StatusCreated))
		_, _ = fmt.Fprintf(w, `{"id":"p-%d","pad":%q}`, n, strings.Repeat("x", e.pad))
	})
}

// api returns the middleware of a new instance.
func (e *reviewEnv) api(opts ...idempotent.Option) http.Handler {
	opts = append([]idempotent.Option{idempotent.WithClock(e.clk.Now), idempotent.WithTTL(time.Hour),
		idempotent.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	return idemhttp.Middleware(idempotent.New(e.instance(), opts...), e.mw...)(e.handler())
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
		want int   // the unmarked duplicate's status (0: not checked)
		runs int64 // handler runs in the scenario (0: not checked)
		play func(e *reviewEnv, marked bool) reviewOutcome
	}{
		{"completed: replay", 201, 1, func(e *reviewEnv, marked bool) reviewOutcome {
			e.send(e.api(), body, false)
			return e.send(e.api(), body, marked)
		}},
		{"completed, another payload: 422", 422, 1, func(e *reviewEnv, marked bool) reviewOutcome {
			e.send(e.api(), body, false)
			return e.send(e.api(), `{"amount":9999}`, marked)
		}},
		{"completed and expired: runs again", 201, 2, func(e *reviewEnv, marked bool) reviewOutcome {
			e.send(e.api(), body, false)
			e.clk.Add(time.Hour + time.Second)
			return e.send(e.api(), body, marked)
		}},
		{"in progress on another instance: 409", 409, 1, func(e *reviewEnv, marked bool) reviewOutcome {
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
		{"in progress, lease ended: taken over", 201, 2, func(e *reviewEnv, marked bool) reviewOutcome {
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
		{"handler answered 503 (not stored): runs again", 503, 2, func(e *reviewEnv, marked bool) reviewOutcome {
			e.status = http.StatusServiceUnavailable
			e.send(e.api(), body, false)
			return e.send(e.api(), body, marked)
		}},
		{"streamed, not stored: 410", 410, 1, func(e *reviewEnv, marked bool) reviewOutcome {
			e.pad, e.mw = 4096, []idemhttp.Option{idemhttp.WithMaxBody(1024)}
			e.send(e.api(), body, false)
			return e.send(e.api(), body, marked)
		}},
		{"completed, duplicate whose client is gone", 0, 1, func(e *reviewEnv, marked bool) reviewOutcome {
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
				if sc.want != 0 && got[0].Status != sc.want || sc.runs != 0 && got[0].Runs != sc.runs {
					t.Errorf("unmarked duplicate %+v; want status %d after %d runs", got[0], sc.want, sc.runs)
				}
				if got[0] != got[1] {
					t.Errorf("the same duplicate got\n  unmarked:                 %+v\n  Idempotency-Attempt: 2:   %+v\nwant one outcome (the header is a cost hint only)", got[0], got[1])
				}
			})
		}
	}
}
