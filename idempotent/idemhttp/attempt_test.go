package idemhttp_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
	"github.com/idemlambda/idemlambda/internal/dynamocost"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// TestRetryReadsFirst: on dynalite, counted at the HTTP boundary, a request
// marked as a retry (Idempotency-Attempt: 2, as idemclient sends) replays
// with one eventually consistent GetItem and no write; the same duplicate
// unmarked, or marked with a value that is not a retry, is written first
// (a failed conditional PutItem, and the GetItem dynalite needs as it
// ignores ALL_OLD). Every one gets the same replay; the handler runs once.
func TestRetryReadsFirst(t *testing.T) {
	meter := &dynamocost.Meter{Next: &http.Transport{}}
	client := testdynamo.NewClient(testdynamo.Endpoint(t), func(o *dynamodb.Options) {
		o.HTTPClient = &http.Client{Transport: meter}
	})
	store := dynamostore.New(client, testdynamo.NewTable(t, client))
	runs := 0
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs++
		w.WriteHeader(201)
		_, _ = io.WriteString(w, `{"id":"p-1"}`)
	})
	guard := idempotent.New(store, idempotent.WithLogger(slog.New(slog.DiscardHandler)))
	srv := httptest.NewServer(idemhttp.Middleware(guard)(h))
	defer srv.Close()

	send := func(attempt ...string) (*http.Response, string, dynamocost.Stats) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/payments", strings.NewReader(`{"amount":1}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(idemhttp.HeaderKey, "pay-1")
		for _, a := range attempt {
			req.Header.Add(idemhttp.HeaderAttempt, a)
		}
		meter.Reset()
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, string(b), meter.Stats()
	}

	// A first attempt that says so writes first, as an unmarked one.
	res, body, st := send("1")
	if res.StatusCode != 201 || body != `{"id":"p-1"}` || st.Calls["PutItem"] != 1 || st.Calls["GetItem"] != 0 {
		t.Fatalf("first: %d %s, calls %v", res.StatusCode, body, st.Calls)
	}
	for _, tt := range []struct {
		name      string
		attempt   []string
		readFirst bool
	}{
		{name: "marked as attempt 2", attempt: []string{"2"}, readFirst: true},
		{name: "attempt 5 among several values", attempt: []string{" 5 ", "1"}, readFirst: true},
		{name: "unmarked"},
		{name: "attempt 1", attempt: []string{"1"}},
		{name: "not a number", attempt: []string{"again"}},
		{name: "negative", attempt: []string{"-3"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, body, st := send(tt.attempt...)
			if res.StatusCode != 201 || body != `{"id":"p-1"}` || res.Header.Get(idemhttp.HeaderReplayed) != "true" {
				t.Fatalf("%d %s replayed=%q, want the stored 201", res.StatusCode, body, res.Header.Get(idemhttp.HeaderReplayed))
			}
			if tt.readFirst {
				if st.Total() != 1 || st.Calls["GetItem"] != 1 || st.WriteUnits != 0 || st.ReadUnits != 0.5 {
					t.Errorf("calls %v, %v WRU, %v RRU; want one eventually consistent GetItem (0.5 RRU), no write", st.Calls, st.WriteUnits, st.ReadUnits)
				}
			} else if st.Calls["PutItem"] != 1 {
				t.Errorf("calls %v; want the conditional PutItem first", st.Calls)
			}
		})
	}
	if runs != 1 {
		t.Errorf("handler ran %d times, want 1", runs)
	}
}
