package idemhttp_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
)

// logBuffer is a concurrency-safe log sink.
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

func TestResponseSize(t *testing.T) {
	const limit = 1024
	tests := []struct {
		name     string
		size     int
		flush    bool
		stored   bool
		wantLogs string
	}{
		{name: "under the limit is stored", size: limit - 1, stored: true},
		{name: "exactly the limit is stored and replayed whole", size: limit, stored: true},
		{name: "over the limit is streamed, not stored", size: limit + 1, wantLogs: "streamed and not stored"},
		{name: "far over the limit is streamed, not stored", size: 20 * limit, wantLogs: "streamed and not stored"},
		{name: "a flushed response is streamed, not stored", size: 10, flush: true, wantLogs: "streamed and not stored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs atomic.Int64
			logs := &logBuffer{}
			payload := strings.Repeat("x", tt.size)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				runs.Add(1)
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Add("X-Multi", "a")
				w.Header().Add("X-Multi", "b")
				w.WriteHeader(http.StatusCreated)
				// Written in small pieces, as handlers do.
				for i := 0; i < len(payload); i += 100 {
					_, _ = io.WriteString(w, payload[i:min(i+100, len(payload))])
					if tt.flush {
						w.(http.Flusher).Flush()
					}
				}
			})
			srv := httptest.NewServer(idemhttp.Middleware(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithLogger(slog.New(slog.NewTextHandler(logs, nil)))),
				idemhttp.WithMaxBody(limit))(h))
			defer srv.Close()

			for i := range 2 {
				res, body := post(t, srv, "k", `{"a":1}`)
				if res.StatusCode != 201 || body != payload || res.Header.Get("Content-Type") != "text/plain" || strings.Join(res.Header.Values("X-Multi"), ",") != "a,b" {
					t.Fatalf("call %d: %d %q (%d bytes) %v", i, res.StatusCode, res.Header, len(body), res.Header)
				}
				if i == 1 && (res.Header.Get(idemhttp.HeaderReplayed) == "true") != tt.stored {
					t.Fatalf("replayed=%q, stored=%v", res.Header.Get(idemhttp.HeaderReplayed), tt.stored)
				}
			}
			want := int64(2)
			if tt.stored {
				want = 1
			}
			if runs.Load() != want {
				t.Fatalf("handler ran %d times, want %d", runs.Load(), want)
			}
			if tt.wantLogs != "" && !strings.Contains(logs.String(), tt.wantLogs) {
				t.Fatalf("logs %q lack %q", logs.String(), tt.wantLogs)
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
