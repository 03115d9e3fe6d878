package sqsbatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/sqsbatch"
)

const (
	standardARN = "arn:aws:sqs:us-east-1:123456789012:orders"
	fifoARN     = "arn:aws:sqs:us-east-1:123456789012:orders.fifo"
)

var errRecord = errors.New("record failed")

// quiet is the logger of every test handler: failures are expected.
var quiet = slog.New(slog.DiscardHandler)

// msg is a standard-queue message whose body tells the test function what
// to do: {"orderId": key, "do": "" | "fail" | "panic" | "goexit"}.
func msg(id, key, do string) events.SQSMessage {
	body, _ := json.Marshal(map[string]string{"orderId": key, "do": do})
	return events.SQSMessage{
		MessageId:      id,
		ReceiptHandle:  "rh-" + id,
		Body:           string(body),
		EventSourceARN: standardARN,
		EventSource:    "aws:sqs",
		AWSRegion:      "us-east-1",
		Attributes:     map[string]string{"ApproximateReceiveCount": "1"},
	}
}

// raw is a standard-queue message with the body as given.
func raw(id, body string) events.SQSMessage {
	m := msg(id, "", "")
	m.Body = body
	return m
}

// fifo is a FIFO message of group.
func fifo(id, group, do string) events.SQSMessage {
	m := msg(id, id, do)
	m.EventSourceARN = fifoARN
	m.Attributes["MessageGroupId"] = group
	m.Attributes["MessageDeduplicationId"] = "dedup-" + id
	return m
}

func batch(msgs ...events.SQSMessage) events.SQSEvent { return events.SQSEvent{Records: msgs} }

// failed lists the item identifiers of a response.
func failed(r events.SQSEventResponse) []string {
	out := []string{}
	for _, f := range r.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	return out
}

// recorder is the test function: it counts runs per message id and acts as
// the body says.
type recorder struct {
	mu   sync.Mutex
	runs map[string]int
	// ok overrides "fail" and "panic" for these message ids (the fix before
	// a redelivery).
	ok map[string]bool
	// hook runs at the start of every run.
	hook func(m events.SQSMessage)
}

func newRecorder() *recorder { return &recorder{runs: map[string]int{}, ok: map[string]bool{}} }

func (r *recorder) handle(ctx context.Context, m events.SQSMessage) error {
	if _, ok := idempotent.RecordIDFromContext(ctx); !ok {
		return errors.New("no record key in context")
	}
	if r.hook != nil {
		r.hook(m)
	}
	r.mu.Lock()
	r.runs[m.MessageId]++
	fix := r.ok[m.MessageId]
	r.mu.Unlock()
	var body struct {
		Do string `json:"do"`
	}
	_ = json.Unmarshal([]byte(m.Body), &body)
	switch {
	case fix:
		return nil
	case body.Do == "fail":
		return fmt.Errorf("message %s: %w", m.MessageId, errRecord)
	case body.Do == "panic":
		panic("test panic in " + m.MessageId)
	case body.Do == "goexit":
		runtime.Goexit()
	}
	return nil
}

func (r *recorder) fix(ids ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		r.ok[id] = true
	}
}

// ran lists the message ids that ran, sorted, with repeats.
func (r *recorder) ran() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []string{}
	for id, n := range r.runs {
		for range n {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.runs)
}

// failingStore fails every call.
type failingStore struct{ err error }

func (s failingStore) Acquire(context.Context, idempotent.Record, time.Time) (*idempotent.Record, bool, error) {
	return nil, false, s.err
}
func (s failingStore) Get(context.Context, string) (*idempotent.Record, error) { return nil, s.err }
func (s failingStore) Complete(context.Context, idempotent.Record) error       { return s.err }
func (s failingStore) Release(context.Context, string, string) error           { return s.err }

// holder keeps keys in progress: it runs a handler of the same name whose
// function blocks until release.
type holder struct {
	release chan struct{}
	done    chan struct{}
}

// hold starts an invocation of a handler built with opts that takes the keys
// of msgs and blocks; it returns once every record has started. The
// invocation runs in another process: over another Store value on the same
// records, so that calls on store meet it in the store, not in memory.
func hold(t *testing.T, store idempotent.Store, msgs []events.SQSMessage, opts ...sqsbatch.Option) *holder {
	t.Helper()
	h := &holder{release: make(chan struct{}), done: make(chan struct{})}
	started := make(chan struct{}, len(msgs))
	fn := func(ctx context.Context, m events.SQSMessage) error {
		started <- struct{}{}
		<-h.release
		return nil
	}
	elsewhere := &struct{ idempotent.Store }{store}
	wrapped := sqsbatch.Wrap(guardOf(elsewhere), fn, append(opts, sqsbatch.WithConcurrency(len(msgs)))...)
	go func() {
		defer close(h.done)
		_, _ = wrapped(context.Background(), batch(msgs...))
	}()
	for range msgs {
		<-started
	}
	return h
}

func (h *holder) stop() {
	close(h.release)
	<-h.done
}

func ptr[T any](v T) *T { return &v }

// clock is a manual clock for the deadline margin.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
