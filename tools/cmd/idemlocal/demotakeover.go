package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// stepTakeover shows a lease takeover: request A's run dies mid-run (the
// proxy holds its complete until Lambda's timeout kills the process, as a
// crash would), so its record stays in progress until its lease — the
// invocation's deadline — ends; the retry then takes the lease over and runs
// again. The payments function counts it in the LeaseTakeovers metric and
// logs it at WARN. Deterministic, but it waits for the function's timeout.
func (d *demoRun) stepTakeover(ctx context.Context) error {
	if d.front == nil {
		fmt.Fprintln(d.out, "\n(skipped: it needs the demo's own stack, whose DynamoDB proxy can hold a request)")
		return nil
	}
	fmt.Fprintln(d.out, "\nThe DynamoDB proxy holds request A after its acquire until the function's timeout kills its process.")
	held, release := d.front.holdAfter(d.table("IdempotencyTable"), 1)
	defer release()
	key := d.key(8)
	type answer struct {
		x   *exchange
		err error
	}
	first := make(chan answer, 1)
	go func() {
		x, err := d.do(ctx, "POST", "/payments", key, demoBody)
		first <- answer{x, err}
	}()
	select {
	case <-held:
	case a := <-first:
		return fmt.Errorf("request A finished without being held: %v", a.err)
	case <-ctx.Done():
		return ctx.Err()
	}
	a := <-first // when the function times out and its process is killed
	release()
	if a.err != nil {
		return fmt.Errorf("request A: %w", a.err)
	}
	fmt.Fprintln(d.out, "\nA, whose process died mid-run (its record stays in progress until its lease ends):")
	d.print(a.x)
	if a.x.status < 500 {
		return fmt.Errorf("request A: status %d, want a 5xx from the timed-out function", a.x.status)
	}
	// The lease ended with A's deadline, when its process was killed; a
	// retry that still meets it (clock granularity) is told when to retry.
	var b *exchange
	for try := 0; ; try++ {
		x, err := d.do(ctx, "POST", "/payments", key, demoBody)
		if err != nil {
			return fmt.Errorf("request B: %w", err)
		}
		b = x
		if x.status != http.StatusConflict || try == 2 {
			break
		}
		wait, _ := strconv.Atoi(x.header.Get("Retry-After"))
		select {
		case <-time.After(time.Duration(max(wait, 1)) * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	fmt.Fprintln(d.out, "\nB, the retry: it takes the ended lease over and runs the handler again (LeaseTakeovers = 1 in the metrics below):")
	d.print(b)
	switch {
	case b.status != http.StatusCreated:
		return fmt.Errorf("request B: status %d, want 201", b.status)
	case b.header.Get("Idempotent-Replayed") != "":
		return errors.New("request B was replayed; want a new run after the takeover")
	}
	return nil
}
