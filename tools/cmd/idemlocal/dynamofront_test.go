package main

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/idemlambda/idemlambda/tools/internal/rie"
)

func TestDynamoFrontCountsAndHolds(t *testing.T) {
	var served atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = io.Copy(w, r.Body)
	}))
	t.Cleanup(backend.Close)
	f, err := startDynamoFront(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
	send := func(op, table string) error {
		req, _ := http.NewRequest("POST", f.url, strings.NewReader(`{"TableName":"`+table+`"}`))
		req.Header.Set("X-Amz-Target", "DynamoDB_20120810."+op)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if string(body) != `{"TableName":"`+table+`"}` {
			return errors.New("the body did not reach the server: " + string(body))
		}
		return nil
	}

	held, release := f.holdAfter("T", 1)
	defer release()
	for _, c := range []call{{"PutItem", "T"}, {"GetItem", "U"}} {
		if err := send(c.op, c.table); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- send("UpdateItem", "T") }()
	<-held
	if n := served.Load(); n != 2 {
		t.Errorf("the server saw %d calls while one is held, want 2", n)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := send("UpdateItem", "T"); err != nil { // the hold caught one call only
		t.Fatal(err)
	}
	want := map[call]int{{"PutItem", "T"}: 1, {"GetItem", "U"}: 1, {"UpdateItem", "T"}: 2}
	if got := f.snapshot(); !maps.Equal(got, want) {
		t.Errorf("counts %v, want %v", got, want)
	}
	if got := writes(f.since(map[call]int{{"UpdateItem", "T"}: 1}), "T"); got != 2 {
		t.Errorf("writes to T since = %d, want 2", got)
	}
}

func TestServeInvoke(t *testing.T) {
	invoke := func(_ context.Context, fn string, payload []byte) (rie.Result, error) {
		switch fn {
		case "OrdersFunction":
			return rie.Result{RequestID: "r-1", Payload: []byte(`{"batchItemFailures":[]}`)}, nil
		case "Failing":
			return rie.Result{RequestID: "r-2", Err: &rie.FunctionError{Type: "invalidOrderError", Message: "bad"}}, nil
		case "Crashing":
			return rie.Result{}, rie.ErrExited
		}
		return rie.Result{}, errNoFunction
	}
	tests := []struct {
		name, method, path, body, invocationType string
		wantStatus                               int
		wantFunctionError                        string
		wantBody                                 string
	}{
		{name: "ok", method: "POST", path: "/2015-03-31/functions/OrdersFunction/invocations", body: `{}`, wantStatus: 200, wantBody: `{"batchItemFailures":[]}`},
		{name: "handler error", method: "POST", path: "/2015-03-31/functions/Failing/invocations", body: `{}`, wantStatus: 200, wantFunctionError: "Unhandled", wantBody: `{"errorType":"invalidOrderError","errorMessage":"bad"}`},
		{name: "crash", method: "POST", path: "/2015-03-31/functions/Crashing/invocations", body: `{}`, wantStatus: 500},
		{name: "unknown function", method: "POST", path: "/2015-03-31/functions/Nope/invocations", body: `{}`, wantStatus: 404},
		{name: "GET", method: "GET", path: "/2015-03-31/functions/OrdersFunction/invocations", wantStatus: 404},
		{name: "no name", method: "POST", path: "/2015-03-31/functions//invocations", body: `{}`, wantStatus: 404},
		{name: "not json", method: "POST", path: "/2015-03-31/functions/OrdersFunction/invocations", body: `nope`, wantStatus: 400},
		{name: "async", method: "POST", path: "/2015-03-31/functions/OrdersFunction/invocations", body: `{}`, invocationType: "Event", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := testAPI(io.Discard, invoke)
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.invocationType != "" {
				r.Header.Set("X-Amz-Invocation-Type", tt.invocationType)
			}
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, r)
			if rec.Code != tt.wantStatus || rec.Header().Get("X-Amz-Function-Error") != tt.wantFunctionError {
				t.Errorf("got %d %v %s, want %d with X-Amz-Function-Error %q", rec.Code, rec.Header(), rec.Body, tt.wantStatus, tt.wantFunctionError)
			}
			if tt.wantBody != "" && strings.TrimSpace(rec.Body.String()) != tt.wantBody {
				t.Errorf("body %s, want %s", rec.Body, tt.wantBody)
			}
		})
	}
}
