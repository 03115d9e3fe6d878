package httpidem_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
)

const body = `{"amount":1250,"currency":"EUR","customer":"c-1"}`

// counter is a handler that answers status with a body naming its run.
type counter struct {
	runs   atomic.Int64
	status int
	err    error
	keys   sync.Map // record keys seen through RecordIDFromContext
}

func (c *counter) handle(ctx context.Context, r req) (resp, error) {
	n := c.runs.Add(1)
	if k, ok := idempotent.RecordIDFromContext(ctx); ok {
		c.keys.Store(k, true)
	}
	if c.err != nil {
		return resp{}, c.err
	}
	st := c.status
	if st == 0 {
		st = 201
	}
	return resp{Status: st, Headers: map[string]string{"Content-Type": "application/json"}, Body: fmt.Sprintf(`{"run":%d,"body":%q}`, n, r.Body)}, nil
}

type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func checkProblem(t *testing.T, r resp, status int) problem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (body %s)", r.Status, status, r.Body)
	}
	if ct := r.header("Content-Type"); ct != apigw.ContentTypeProblem {
		t.Fatalf("Content-Type %q, want %q", ct, apigw.ContentTypeProblem)
	}
	var p problem
	if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
		t.Fatalf("problem body %q: %v", r.Body, err)
	}
	if p.Type == "" || p.Title == "" || p.Status != status || p.Detail == "" {
		t.Fatalf("incomplete problem %+v", p)
	}
	return p
}

func replayed(r resp) bool { return r.header(apigw.HeaderReplayed) == "true" }

// call fails the test on a Go error.
func call(t *testing.T, send func(context.Context, req) (resp, error), r req) resp {
	t.Helper()
	out, err := send(context.Background(), r)
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	return out
}

func TestMatrix(t *testing.T) {
	for _, a := range adapters {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			setup := func(t *testing.T, store idempotent.Store, h *counter, o opts) func(context.Context, req) (resp, error) {
				if store == nil {
					store = idempotent.NewMemoryStore()
				}
				if o.clock == nil {
					o.clock = newClock().Now
				}
				return a.build(t, store, h.handle, o)
			}

			t.Run("new key runs, duplicate replays the stored response", func(t *testing.T) {
				h := &counter{}
				send := setup(t, nil, h, opts{})
				first := call(t, send, req{Key: ptr("k-1"), Body: body})
				second := call(t, send, req{Key: ptr("k-1"), Body: body})
				if first.Status != 201 || replayed(first) {
					t.Fatalf("first: %+v", first)
				}
				if !replayed(second) || !reflect.DeepEqual(second.withoutReplayed(), first.normal()) {
					t.Fatalf("replay differs:\n first %+v\nsecond %+v", first, second)
				}
				if h.runs.Load() != 1 {
					t.Fatalf("handler ran %d times", h.runs.Load())
				}
				n := 0
				h.keys.Range(func(any, any) bool { n++; return true })
				if n != 1 {
					t.Fatalf("RecordIDFromContext: %d keys seen, want 1", n)
				}
			})

			t.Run("canonical JSON: other key order and whitespace replay", func(t *testing.T) {
				h := &counter{}
				send := setup(t, nil, h, opts{})
				call(t, send, req{Key: ptr("k"), Body: body})
				second := call(t, send, req{Key: ptr("k"), Body: "{\n  \"customer\": \"c-1\",\n  \"currency\": \"EUR\", \"amount\": 1250 }\n"})
				if !replayed(second) || second.Status != 201 || h.runs.Load() != 1 {
					t.Fatalf("want replay, got %+v (runs %d)", second, h.runs.Load())
				}
			})

			t.Run("quoted key equals token key", func(t *testing.T) {
				h := &counter{}
				send := setup(t, nil, h, opts{})
				call(t, send, req{Key: ptr("abc"), Body: body})
				if r := call(t, send, req{Key: ptr(`"abc"`), Body: body}); !replayed(r) {
					t.Fatalf("want replay, got %+v", r)
				}
			})

			t.Run("base64 body fingerprinted decoded", func(t *testing.T) {
				if a.name == "net/http" {
					t.Skip("no base64 flag on the wire")
				}
				h := &counter{}
				send := setup(t, nil, h, opts{})
				call(t, send, req{Key: ptr("k"), Body: body})
				r := call(t, send, req{Key: ptr("k"), Body: base64.StdEncoding.EncodeToString([]byte(body)), Base64: true})
				if !replayed(r) {
					t.Fatalf("want replay, got %+v", r)
				}
				r = call(t, send, req{Key: ptr("k2"), Body: "%%%", Base64: true})
				checkProblem(t, r, 400)
			})

			t.Run("same key, other path or method → another record, not 422", func(t *testing.T) {
				h := &counter{}
				send := setup(t, nil, h, opts{})
				first := call(t, send, req{Key: ptr("k"), Body: body})
				for _, r := range []req{
					{Key: ptr("k"), Body: body, Path: "/payments/other"},
					{Key: ptr("k"), Body: body, Method: "PATCH"},
				} {
					if got := call(t, send, r); got.Status != 201 || replayed(got) || got.Body == first.Body {
						t.Fatalf("%s %s: %+v", method(r), path(r), got)
					}
				}
				if h.runs.Load() != 3 {
					t.Fatalf("handler ran %d times, want 3 (three records)", h.runs.Load())
				}
				for _, r := range []req{{Key: ptr("k"), Body: body}, {Key: ptr("k"), Body: body, Path: "/payments/other"}} {
					if got := call(t, send, r); !replayed(got) {
						t.Fatalf("%s: want a replay of its own record, got %+v", path(r), got)
					}
				}
			})

			t.Run("duplicate JSON member → 400 invalid-body", func(t *testing.T) {
				h := &counter{}
				send := setup(t, nil, h, opts{})
				for _, b := range []string{`{"amount":1,"amount":2}`, `{"a":{"b":1,"b":1}}`, `[{"x":"\u00e9","\u00e9":0,"x":0}]`} {
					p := checkProblem(t, call(t, send, req{Keys: []string{"k-dup"}, Body: b}), 400)
					if !strings.HasSuffix(p.Type, "#invalid-body") || h.runs.Load() != 0 {
						t.Fatalf("body %s: %+v, runs %d", b, p, h.runs.Load())
					}
				}
				// Repeated names in different objects, and non-JSON bodies, are fine.
				for i, b := range []string{`{"a":{"x":1},"b":{"x":1}}`, `a=1&a=2`} {
					if r := call(t, send, req{Keys: []string{fmt.Sprint("k-ok-", i)}, Body: b}); r.Status != 201 {
						t.Fatalf("body %s: %+v", b, r)
					}
				}
			})

			repeated := []struct {
				name string
				keys []string
				ok   bool
			}{
				{name: "two different values → 400", keys: []string{"a", "b"}},
				{name: "a value and a quoted other → 400", keys: []string{"a", `"b"`}},
				{name: "an empty repeat → 400", keys: []string{"a", ""}},
				{name: "identical values are one key", keys: []string{"a", "a"}, ok: true},
				{name: "a token and the same quoted are one key", keys: []string{"a", `"a"`}, ok: true},
				{name: "quoted values with commas inside are one key", keys: []string{`"a,b"`, `"a,b"`}, ok: true},
			}
			for _, tt := range repeated {
				t.Run("repeated header: "+tt.name, func(t *testing.T) {
					h := &counter{}
					send := setup(t, nil, h, opts{})
					r := call(t, send, req{Keys: tt.keys, Body: body})
					if !tt.ok {
						p := checkProblem(t, r, 400)
						if !strings.HasSuffix(p.Type, "#invalid-idempotency-key") || h.runs.Load() != 0 {
							t.Fatalf("%+v, runs %d", p, h.runs.Load())
						}
						return
					}
					if r.Status != 201 || h.runs.Load() != 1 {
						t.Fatalf("%+v", r)
					}
					if again := call(t, send, req{Keys: tt.keys, Body: body}); !replayed(again) {
						t.Fatalf("want a replay, got %+v", again)
					}
				})
			}

			t.Run("a single value with a comma is two values → 400; quoted it is one key", func(t *testing.T) {
				h := &counter{}
				send := setup(t, nil, h, opts{})
				checkProblem(t, call(t, send, req{Key: ptr("a,b"), Body: body}), 400)
				if r := call(t, send, req{Key: ptr(`"a,b"`), Body: body}); r.Status != 201 {
					t.Fatalf("%+v", r)
				}
				if h.runs.Load() != 1 {
					t.Fatalf("handler ran %d times, want 1", h.runs.Load())
				}
			})

			mismatch := []struct {
				name   string
				second req
			}{
				{name: "other body", second: req{Key: ptr("k"), Body: `{"amount":999,"currency":"EUR","customer":"c-1"}`}},
				{name: "other number literal", second: req{Key: ptr("k"), Body: `{"amount":1250.0,"currency":"EUR","customer":"c-1"}`}},
				{name: "other query", second: req{Key: ptr("k"), Body: body, Query: "dry_run=1"}},
			}
			for _, tt := range mismatch {
				t.Run("same key, "+tt.name+" → 422", func(t *testing.T) {
					h := &counter{}
					send := setup(t, nil, h, opts{})
					call(t, send, req{Key: ptr("k"), Body: body})
					checkProblem(t, call(t, send, tt.second), 422)
					if h.runs.Load() != 1 {
						t.Fatalf("handler ran %d times", h.runs.Load())
					}
				})
			}

			t.Run("extra fingerprint header", func(t *testing.T) {
				h := &counter{}
				send := setup(t, nil, h, opts{fpHeaders: []string{"X-Tenant"}})
				call(t, send, req{Key: ptr("k"), Body: body, Headers: map[string]string{"x-tenant": "a"}})
				checkProblem(t, call(t, send, req{Key: ptr("k"), Body: body, Headers: map[string]string{"x-tenant": "b"}}), 422)
			})

			t.Run("two callers with the same key never share a response", func(t *testing.T) {
				h := &counter{}
				send := setup(t, nil, h, opts{})
				alice := call(t, send, req{Key: ptr("shared"), Body: body, User: "alice"})
				bob := call(t, send, req{Key: ptr("shared"), Body: body, User: "bob"})
				if replayed(bob) || alice.Body == bob.Body || h.runs.Load() != 2 {
					t.Fatalf("bob got alice's response: %+v / %+v", alice, bob)
				}
				if r := call(t, send, req{Key: ptr("shared"), Body: body, User: "alice"}); !replayed(r) || r.Body != alice.Body {
					t.Fatalf("alice's replay: %+v", r)
				}
			})

			invalid := []struct{ name, key string }{
				{name: "300 characters", key: strings.Repeat("a", 300)},
				{name: "256 characters", key: strings.Repeat("a", 256)},
				{name: "non-ASCII", key: "clé-ü"},
				{name: "inner whitespace", key: "a b"},
				{name: "blank", key: "   "},
				{name: "blank quoted", key: `"  "`},
				{name: "bad escape in quoted", key: `"a\qb"`},
			}
			for _, tt := range invalid {
				t.Run("invalid key "+tt.name+" → 400", func(t *testing.T) {
					h := &counter{}
					send := setup(t, nil, h, opts{})
					checkProblem(t, call(t, send, req{Key: ptr(tt.key), Body: body}), 400)
					if h.runs.Load() != 0 {
						t.Fatal("handler ran")
					}
				})
			}

			t.Run("255-character key accepted", func(t *testing.T) {
				h := &counter{}
				send := setup(t, nil, h, opts{})
				if r := call(t, send, req{Key: ptr(strings.Repeat("a", 255)), Body: body}); r.Status != 201 {
					t.Fatalf("%+v", r)
				}
			})

			passThrough := []struct {
				name string
				o    opts
				r    req
			}{
				{name: "GET with key", r: req{Method: "GET", Key: ptr("k")}},
				{name: "PUT with key (not guarded by default)", r: req{Method: "PUT", Key: ptr("k"), Body: body}},
				{name: "keyless POST", r: req{Body: body}},
				{name: "POST when only PUT is guarded", o: opts{methods: []string{"PUT"}}, r: req{Key: ptr("k"), Body: body}},
			}
			for _, tt := range passThrough {
				t.Run("pass through: "+tt.name, func(t *testing.T) {
					h := &counter{}
					send := setup(t, nil, h, tt.o)
					for range 2 {
						if r := call(t, send, tt.r); replayed(r) || r.Status != 201 {
							t.Fatalf("%+v", r)
						}
					}
					if h.runs.Load() != 2 {
						t.Fatalf("handler ran %d times, want 2", h.runs.Load())
					}
				})
			}

			t.Run("PATCH is guarded by default", func(t *testing.T) {
				h := &counter{}
				send := setup(t, nil, h, opts{})
				call(t, send, req{Method: "PATCH", Key: ptr("k"), Body: body})
				if r := call(t, send, req{Method: "PATCH", Key: ptr("k"), Body: body}); !replayed(r) {
					t.Fatalf("%+v", r)
				}
			})

			t.Run("required key missing → 400", func(t *testing.T) {
				h := &counter{}
				send := setup(t, nil, h, opts{require: true})
				checkProblem(t, call(t, send, req{Body: body}), 400)
				if h.runs.Load() != 0 {
					t.Fatal("handler ran")
				}
			})

			stored := []struct {
				name   string
				status int
				o      opts
				stored bool
			}{
				{name: "503 not stored", status: 503},
				{name: "500 not stored", status: 500},
				{name: "429 not stored", status: 429},
				{name: "409 not stored", status: 409},
				{name: "400 stored", status: 400, stored: true},
				{name: "404 stored", status: 404, stored: true},
				{name: "302 stored", status: 302, stored: true},
				{name: "400 not stored under a custom predicate", status: 400, o: opts{stored: func(s int) bool { return s < 300 }}},
			}
			for _, tt := range stored {
				t.Run(tt.name, func(t *testing.T) {
					h := &counter{status: tt.status}
					send := setup(t, nil, h, tt.o)
					first := call(t, send, req{Key: ptr("k"), Body: body})
					second := call(t, send, req{Key: ptr("k"), Body: body})
					if first.Status != tt.status || second.Status != tt.status {
						t.Fatalf("statuses %d, %d", first.Status, second.Status)
					}
					if tt.stored != replayed(second) || (tt.stored && h.runs.Load() != 1) || (!tt.stored && h.runs.Load() != 2) {
						t.Fatalf("stored=%v: replayed=%v runs=%d", tt.stored, replayed(second), h.runs.Load())
					}
				})
			}

			t.Run("Go error releases the key", func(t *testing.T) {
				h := &counter{err: errors.New("downstream failed")}
				send := setup(t, nil, h, opts{})
				for range 2 {
					r, err := send(context.Background(), req{Key: ptr("k"), Body: body})
					if a.goErrors && (err == nil || !strings.Contains(err.Error(), "downstream failed")) {
						t.Fatalf("want the handler's error, got %v", err)
					}
					if !a.goErrors && r.Status != 500 {
						t.Fatalf("%+v", r)
					}
				}
				if h.runs.Load() != 2 {
					t.Fatalf("handler ran %d times, want 2", h.runs.Load())
				}
			})

			t.Run("store failure → 503 with Retry-After, handler not run", func(t *testing.T) {
				h := &counter{}
				send := setup(t, &failingStore{}, h, opts{})
				r := call(t, send, req{Key: ptr("k"), Body: body})
				checkProblem(t, r, 503)
				if r.header("Retry-After") != "1" || h.runs.Load() != 0 {
					t.Fatalf("Retry-After %q, runs %d", r.header("Retry-After"), h.runs.Load())
				}
			})

			t.Run("store failure after the run → 503 saying the outcome is unknown", func(t *testing.T) {
				h := &counter{}
				send := setup(t, failingComplete{idempotent.NewMemoryStore()}, h, opts{})
				r := call(t, send, req{Key: ptr("k"), Body: body})
				p := checkProblem(t, r, 503)
				if !strings.HasSuffix(p.Type, "#outcome-unknown") || !strings.Contains(p.Detail, "was processed") || r.header("Retry-After") == "" || h.runs.Load() != 1 {
					t.Fatalf("detail %q, Retry-After %q, runs %d", p.Detail, r.header("Retry-After"), h.runs.Load())
				}
			})

			t.Run("corrupt record → 500 problem, handler not run", func(t *testing.T) {
				h := &counter{}
				send := setup(t, corruptStore{idempotent.NewMemoryStore()}, h, opts{})
				checkProblem(t, call(t, send, req{Key: ptr("k"), Body: body}), 500)
				if h.runs.Load() != 0 {
					t.Fatal("handler ran")
				}
			})

			t.Run("concurrent duplicate → 409 with Retry-After, then replay", func(t *testing.T) {
				started, release := make(chan struct{}), make(chan struct{})
				h := &counter{}
				var once sync.Once
				hold := func(ctx context.Context, r req) (resp, error) {
					once.Do(func() { close(started); <-release })
					return h.handle(ctx, r)
				}
				mem := idempotent.NewMemoryStore()
				clk := newClock().Now
				send := a.build(t, mem, hold, opts{clock: clk})
				// The first request runs in another environment: in this
				// one, the duplicate would wait for it in memory.
				other := a.build(t, elsewhere(mem), hold, opts{clock: clk})
				done := make(chan resp)
				go func() {
					r, _ := other(context.Background(), req{Key: ptr("k"), Body: body})
					done <- r
				}()
				<-started
				released := false
				defer func() { // let the first request end before cleanup, even on failure
					if !released {
						close(release)
						<-done
					}
				}()
				dup := call(t, send, req{Key: ptr("k"), Body: body})
				checkProblem(t, dup, 409)
				// No deadline in the test: the lease is 60 s on a clock that
				// does not move; the advertised retry is 1 s, not the lease.
				if got := dup.header("Retry-After"); got != "1" {
					t.Fatalf("Retry-After %q, want 1", got)
				}
				close(release)
				released = true
				first := <-done
				if r := call(t, send, req{Key: ptr("k"), Body: body}); !replayed(r) || r.Body != first.Body {
					t.Fatalf("after completion: %+v", r)
				}
			})

			t.Run("concurrent duplicate waits with WithWait", func(t *testing.T) {
				started, release := make(chan struct{}), make(chan struct{})
				h := &counter{}
				var once sync.Once
				hold := func(ctx context.Context, r req) (resp, error) {
					once.Do(func() { close(started); <-release })
					return h.handle(ctx, r)
				}
				store := &pollSignal{Store: idempotent.NewMemoryStore(), polled: make(chan struct{})}
				clk := newClock().Now
				send := a.build(t, store, hold, opts{clock: clk, wait: time.Minute})
				other := a.build(t, elsewhere(store), hold, opts{clock: clk, wait: time.Minute}) // another environment
				first := make(chan resp, 1)
				go func() {
					r, _ := other(context.Background(), req{Key: ptr("k"), Body: body})
					first <- r
				}()
				<-started
				second := make(chan resp, 1)
				go func() {
					r, _ := send(context.Background(), req{Key: ptr("k"), Body: body})
					second <- r
				}()
				// The first run finishes only once the duplicate is polling, so
				// the duplicate's answer can only come from waiting. One that
				// answers without polling fails the test at once.
				select {
				case <-store.polled:
				case s := <-second:
					close(release) // let the first request end before cleanup
					t.Fatalf("the duplicate answered without waiting: %+v", s)
				}
				close(release)
				f, s := <-first, <-second
				if !replayed(s) || s.Body != f.Body || h.runs.Load() != 1 {
					t.Fatalf("waiting duplicate: %+v (first %+v, runs %d)", s, f, h.runs.Load())
				}
			})

			t.Run("replay restores headers, multi-value headers, cookies and base64 exactly", func(t *testing.T) {
				rich := resp{
					Status:  201,
					Headers: map[string]string{"Content-Type": "image/png", "Location": "/payments/p-1", "X-Request-Run": "1"},
					Multi:   map[string][]string{"X-Multi": {"a", "b", "c"}},
					Cookies: []string{"session=abc; Path=/; HttpOnly", "theme=dark"},
					Body:    base64.StdEncoding.EncodeToString([]byte{0x89, 'P', 'N', 'G', 0, 1, 2, 0xff}),
					Base64:  true,
				}
				var runs atomic.Int64
				send := a.build(t, idempotent.NewMemoryStore(), func(context.Context, req) (resp, error) {
					runs.Add(1)
					return rich, nil
				}, opts{clock: newClock().Now})
				first := call(t, send, req{Key: ptr("k"), Body: body})
				second := call(t, send, req{Key: ptr("k"), Body: body})
				if !replayed(second) || runs.Load() != 1 {
					t.Fatalf("not a replay: %+v", second)
				}
				if !reflect.DeepEqual(second.withoutReplayed(), first.normal()) {
					t.Fatalf("replay differs:\n first %#v\nsecond %#v", first, second)
				}
				if a.name == "v2" && !reflect.DeepEqual(first.normal(), rich.normal()) {
					t.Fatalf("first response altered:\n got %#v\nwant %#v", first, rich)
				}
			})
		})
	}
}

// elsewhere is store as another process sees it: the same records, another
// Store value, so no in-process coalescing with calls on store.
func elsewhere(store idempotent.Store) idempotent.Store {
	return &struct{ idempotent.Store }{store}
}
