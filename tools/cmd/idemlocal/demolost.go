package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/idemlambda/idemlambda/idempotent/idemclient"
	"github.com/idemlambda/idemlambda/tools/internal/chaos/faultproxy"
)

// stepLostAnswer: the payment is made but its answer is lost on the way
// back (a proxy resets the connection after the API answered). The client
// uses idemclient.NewClient: it made the key once, so its retry carries the
// same key and gets the first answer, replayed; the payment is made once.
func (d *demoRun) stepLostAnswer(ctx context.Context) error {
	lossy, err := faultproxy.Start(d.base, faultproxy.Config{Seed: 1, Rates: map[faultproxy.Kind]float64{faultproxy.Drop: 1}})
	if err != nil {
		return err
	}
	defer lossy.Close()
	var (
		mu    sync.Mutex
		tries []idemclient.AttemptInfo
	)
	client := idemclient.NewClient(
		idemclient.WithBackoff(100*time.Millisecond, time.Second),
		idemclient.WithLogger(slog.New(slog.DiscardHandler)),
		idemclient.WithOnAttempt(func(a idemclient.AttemptInfo) {
			mu.Lock()
			tries = append(tries, a)
			mu.Unlock()
			lossy.SetEnabled(false) // only the first answer is lost
		}),
	)
	defer client.CloseIdleConnections()
	const body = `{"amount":4200,"currency":"EUR","customer":"c-7"}`
	fmt.Fprintf(d.out, "\nclient := idemclient.NewClient()  // through a proxy that loses the next answer\nclient.Post(%q, \"application/json\", %s)\n", "/payments", body)
	var x *exchange
	calls, err := d.counted(func() error {
		resp, err := client.Post(lossy.URL()+"/payments", "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		x = &exchange{method: "POST", path: "/payments", reqHeader: resp.Request.Header, reqBody: body,
			status: resp.StatusCode, statusText: resp.Status, header: resp.Header, body: b}
		return err
	})
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintln(d.out)
	for _, a := range tries {
		switch {
		case a.Err != nil:
			fmt.Fprintf(d.out, "attempt %d, Idempotency-Key: %s -> %v (the API made the payment; its answer was lost)\n", a.Attempt, a.Key, a.Err)
		default:
			fmt.Fprintf(d.out, "attempt %d, Idempotency-Key: %s -> %d, Idempotent-Replayed: %t\n", a.Attempt, a.Key, a.Status, a.Replayed)
		}
	}
	fmt.Fprintf(d.out, "\nthe answer to attempt %d:", len(tries))
	d.print(x)
	d.printCalls(calls)
	switch {
	case len(tries) != 2 || tries[0].Err == nil || tries[1].Key != tries[0].Key:
		return fmt.Errorf("attempts %+v, want a lost answer, then a retry with the same key", tries)
	case x.status != http.StatusCreated || x.header.Get("Idempotent-Replayed") != "true":
		return fmt.Errorf("status %d, Idempotent-Replayed %q; want the first answer replayed: 201, true", x.status, x.header.Get("Idempotent-Replayed"))
	case calls != nil && writes(calls, d.table("PaymentsTable")) != 1:
		return fmt.Errorf("%d writes to PaymentsTable, want 1", writes(calls, d.table("PaymentsTable")))
	}
	return nil
}
