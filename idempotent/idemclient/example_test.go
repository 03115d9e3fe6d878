package idemclient_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemclient"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
)

// A payment API behind the idempotency middleware loses its first answer
// (the connection drops after the payment was made). The client's retry
// carries the same key and gets the first answer again: one payment.
func ExampleNewClient() {
	var payments atomic.Int32
	api := idemhttp.Middleware(idempotent.New(idempotent.NewMemoryStore()))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":"p-%d"}`, payments.Add(1))
	}))
	var lost atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lost.CompareAndSwap(false, true) {
			api.ServeHTTP(httptest.NewRecorder(), r) // served, then the answer is lost
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
			return
		}
		api.ServeHTTP(w, r)
	}))
	defer srv.Close()

	client := idemclient.NewClient(idemclient.WithBackoff(10*time.Millisecond, time.Second))
	resp, err := client.Post(srv.URL+"/payments", "application/json", strings.NewReader(`{"amount":100}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get(idemclient.HeaderReplayed), string(body))
	fmt.Println("attempts:", idemclient.AttemptsOf(resp), "key length:", len(idemclient.KeyOf(resp)), "payments:", payments.Load())
	// Output:
	// 201 true {"id":"p-1"}
	// attempts: 2 key length: 36 payments: 1
}
