package idemhttp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
)

func post(t *testing.T, srv *httptest.Server, key, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/things", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set(idemhttp.HeaderKey, key)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// TestResponseSize: a response within the limit is stored and replayed
// whole, flushed or not; a 2xx streamed past it completes the key without a
// stored response (never rerun: 410); a streamed failure releases the key.
func TestResponseSize(t *testing.T) {
	const limit = 1024
	tests := []struct {
		name   string
		size   int
		flush  bool
		status int
		second string // "replay", "gone" (410, not run) or "rerun"
	}{
		{name: "under the limit is stored", size: limit - 1, status: 201, second: "replay"},
		{name: "exactly the limit is stored and replayed whole", size: limit, status: 201, second: "replay"},
		{name: "a flushed response within the limit is teed, stored and replayed whole", size: limit, flush: true, status: 201, second: "replay"},
		{name: "over the limit is streamed and never rerun", size: limit + 1, status: 201, second: "gone"},
		{name: "far over the limit is streamed and never rerun", size: 20 * limit, status: 201, second: "gone"},
		{name: "a flushed response over the limit is never rerun", size: 2 * limit, flush: true, status: 200, second: "gone"},
		{name: "a streamed failure releases the key", size: 2 * limit, status: 500, second: "rerun"},
		{name: "a flushed failure releases the key", size: 10, flush: true, status: 503, second: "rerun"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs atomic.Int64
			payload := strings.Repeat("x", tt.size)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				runs.Add(1)
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Add("X-Multi", "a")
				w.Header().Add("X-Multi", "b")
				w.WriteHeader(tt.status)
				// Written in small pieces, as handlers do.
				for i := 0; i < len(payload); i += 100 {
					_, _ = io.WriteString(w, payload[i:min(i+100, len(payload))])
					if tt.flush {
						if err := http.NewResponseController(w).Flush(); err != nil {
							t.Error(err)
						}
					}
				}
			})
			var mu sync.Mutex
			var statuses []int
			var outcomes []idempotent.Outcome
			obs := idempotent.Observer{
				HTTP: func(_ context.Context, e idempotent.HTTPReport) {
					mu.Lock()
					statuses = append(statuses, e.Status)
					mu.Unlock()
				},
				Call: func(_ context.Context, e idempotent.Report) {
					mu.Lock()
					outcomes = append(outcomes, e.Outcome)
					mu.Unlock()
				},
			}
			srv := httptest.NewServer(idemhttp.Middleware(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithObserver(obs)),
				idemhttp.WithMaxBody(limit))(h))
			defer srv.Close()

			res, body := post(t, srv, "k", `{"a":1}`)
			if res.StatusCode != tt.status || body != payload || res.Header.Get("Content-Type") != "text/plain" || strings.Join(res.Header.Values("X-Multi"), ",") != "a,b" {
				t.Fatalf("first: %d (%d bytes) %v", res.StatusCode, len(body), res.Header)
			}
			res, body = post(t, srv, "k", `{"a":1}`)
			wantRuns := int64(1)
			switch tt.second {
			case "replay":
				if res.StatusCode != tt.status || body != payload || res.Header.Get(idemhttp.HeaderReplayed) != "true" || strings.Join(res.Header.Values("X-Multi"), ",") != "a,b" {
					t.Fatalf("second: %d (%d bytes) %v, want the replay", res.StatusCode, len(body), res.Header)
				}
			case "gone":
				if res.StatusCode != http.StatusGone || res.Header.Get("Content-Type") != idemhttp.ContentTypeProblem ||
					!strings.Contains(body, `"type":"https://github.com/idemlambda/idemlambda/blob/main/docs/http.md#response-not-stored"`) || res.Header.Get("Retry-After") != "" {
					t.Fatalf("second: %d %v %s, want 410 response-not-stored", res.StatusCode, res.Header, body)
				}
			case "rerun":
				wantRuns = 2
				if res.StatusCode != tt.status || body != payload || res.Header.Get(idemhttp.HeaderReplayed) != "" {
					t.Fatalf("second: %d (%d bytes) %v, want a second run", res.StatusCode, len(body), res.Header)
				}
			}
			if runs.Load() != wantRuns {
				t.Fatalf("handler ran %d times, want %d", runs.Load(), wantRuns)
			}
			mu.Lock()
			defer mu.Unlock()
			// The first response is reported with its real status; a
			// delivered success is a completed call, a failure a failed one.
			wantOutcome := idempotent.OutcomeCompleted
			if tt.second == "rerun" {
				wantOutcome = idempotent.OutcomeFailed
			}
			if len(statuses) != 2 || statuses[0] != tt.status || len(outcomes) != 2 || outcomes[0] != wantOutcome {
				t.Fatalf("reported statuses %v outcomes %v, want first %d %v", statuses, outcomes, tt.status, wantOutcome)
			}
		})
	}
}

func TestRequestBody(t *testing.T) {
	var got []string
	var mu sync.Mutex
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		if _, ok := idempotent.RecordIDFromContext(r.Context()); !ok && r.Header.Get(idemhttp.HeaderKey) != "" {
			t.Error("no record key in the handler's context")
		}
		w.WriteHeader(http.StatusCreated)
	})
	srv := httptest.NewServer(idemhttp.Middleware(idempotent.New(idempotent.NewMemoryStore()), idemhttp.WithMaxBody(16))(h))
	defer srv.Close()

	tests := []struct {
		name, key, body string
		status          int
	}{
		{name: "the handler reads the whole body", key: "a", body: `{"n":1}`, status: 201},
		{name: "body over the limit → 413", key: "b", body: strings.Repeat("y", 17), status: 413},
		{name: "keyless body over the limit passes through", body: strings.Repeat("z", 17), status: 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := post(t, srv, tt.key, tt.body)
			if res.StatusCode != tt.status {
				t.Fatalf("%d %s", res.StatusCode, body)
			}
			if tt.status == 413 && res.Header.Get("Content-Type") != idemhttp.ContentTypeProblem {
				t.Fatalf("Content-Type %q", res.Header.Get("Content-Type"))
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != `{"n":1}` || got[1] != strings.Repeat("z", 17) {
		t.Fatalf("handler read %q", got)
	}
}

func TestSniffedContentTypeReplayed(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<html><body>ok</body></html>")
	})
	srv := httptest.NewServer(idemhttp.Middleware(idempotent.New(idempotent.NewMemoryStore()))(h))
	defer srv.Close()
	first, _ := post(t, srv, "k", "")
	second, _ := post(t, srv, "k", "")
	if ct := first.Header.Get("Content-Type"); ct == "" || ct != second.Header.Get("Content-Type") || second.Header.Get(idemhttp.HeaderReplayed) != "true" {
		t.Fatalf("%q vs %q", first.Header, second.Header)
	}
}

func TestConfigErrors(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	tests := []struct {
		name  string
		store idempotent.Store
		opts  []idemhttp.Option
	}{
		{name: "nil store", store: nil},
		{name: "zero max body", store: idempotent.NewMemoryStore(), opts: []idemhttp.Option{idemhttp.WithMaxBody(0)}},
		{name: "nil scope", store: idempotent.NewMemoryStore(), opts: []idemhttp.Option{idemhttp.WithScope(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/", nil)
			req.Header.Set(idemhttp.HeaderKey, "k")
			idemhttp.Middleware(idempotent.New(tt.store), tt.opts...)(ok).ServeHTTP(rec, req)
			if rec.Code != 500 || rec.Header().Get("Content-Type") != idemhttp.ContentTypeProblem {
				t.Fatalf("%d %q", rec.Code, rec.Header())
			}
		})
	}
}
