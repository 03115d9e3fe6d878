package dynamostore_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// TestHTTPStoredFormatOnServer: the net/http middleware's stored responses
// through DynamoDB (dynalite): header bytes that are not valid UTF-8 and
// trailers come back exactly, a record of the previous format replays, and a
// 2xx too large to store completes the key (410 on a duplicate, no rerun).
func TestHTTPStoredFormatOnServer(t *testing.T) {
	client := testdynamo.Client(t)
	store := dynamostore.New(client, testdynamo.NewTable(t, client))
	runs := 0
	var id string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs++
		id, _ = idempotent.RecordIDFromContext(r.Context())
		w.Header().Set("X-Raw", "caf\xe9\xff")
		w.Header().Set("Trailer", "X-Sum")
		if r.URL.Path == "/big" {
			_, _ = io.WriteString(w, strings.Repeat("b", 100))
			return
		}
		_, _ = io.WriteString(w, "ok")
		w.Header().Set("X-Sum", "s\xe9")
	})
	srv := httptest.NewServer(idemhttp.Middleware(idempotent.New(store), idemhttp.WithMaxBody(64))(h))
	defer srv.Close()
	send := func(path, key string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(`{}`))
		req.Header.Set(idemhttp.HeaderKey, key)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}

	for i := range 2 {
		res, body := send("/x", "k")
		if res.StatusCode != 200 || body != "ok" || res.Header.Get("X-Raw") != "caf\xe9\xff" || res.Trailer.Get("X-Sum") != "s\xe9" {
			t.Fatalf("call %d: %d %q %q %q", i, res.StatusCode, body, res.Header, res.Trailer)
		}
	}
	rec, err := store.Get(context.Background(), id)
	if err != nil || rec == nil || !strings.HasPrefix(string(rec.Data), `{"v":2,`) {
		t.Fatalf("record %v %v", rec, err)
	}

	// A record of the previous format, under the key "old".
	runs = 0
	probe := idemhttp.Middleware(idempotent.New(idempotent.NewMemoryStore()))(h)
	preq := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(`{}`))
	preq.Header.Set(idemhttp.HeaderKey, "old")
	probe.ServeHTTP(httptest.NewRecorder(), preq)
	now := time.Now()
	old := idempotent.Record{ID: id, Status: idempotent.StatusInProgress, Expiration: now.Add(time.Hour),
		LeaseExpiration: now.Add(time.Minute), Owner: "o", Fingerprint: rec.Fingerprint}
	if _, ok, err := store.Acquire(context.Background(), old, now); err != nil || !ok {
		t.Fatalf("acquire %v %v", ok, err)
	}
	old.Status, old.LeaseExpiration = idempotent.StatusCompleted, time.Time{}
	old.Data = []byte(`{"status":201,"header":{"X-Old":["yes"]},"body":"b2xk"}`)
	if err := store.Complete(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	runs = 0
	if res, body := send("/x", "old"); res.StatusCode != 201 || body != "old" || res.Header.Get("X-Old") != "yes" || runs != 0 {
		t.Fatalf("format 1: %d %q %q, runs %d", res.StatusCode, body, res.Header, runs)
	}

	// Too large to store: completed without a stored response.
	runs = 0
	if res, body := send("/big", "k"); res.StatusCode != 200 || len(body) != 100 {
		t.Fatalf("big: %d %d bytes", res.StatusCode, len(body))
	}
	if res, body := send("/big", "k"); res.StatusCode != http.StatusGone || !strings.Contains(body, "#response-not-stored") || runs != 1 {
		t.Fatalf("big duplicate: %d %q, runs %d", res.StatusCode, body, runs)
	}
}
