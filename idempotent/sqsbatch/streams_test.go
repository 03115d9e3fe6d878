package sqsbatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/sqsbatch"
)

func kinesisRecord(seq, data string) events.KinesisEventRecord {
	return events.KinesisEventRecord{
		EventID:        "shardId-000000000000:" + seq,
		EventSource:    "aws:kinesis",
		EventSourceArn: "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
		Kinesis:        events.KinesisRecord{SequenceNumber: seq, PartitionKey: "p", Data: []byte(data)},
	}
}

func dynamoRecord(seq string) events.DynamoDBEventRecord {
	return events.DynamoDBEventRecord{
		EventID:     "event-" + seq,
		EventName:   "INSERT",
		EventSource: "aws:dynamodb",
		Change:      events.DynamoDBStreamRecord{SequenceNumber: seq},
	}
}

func TestWrapKinesisStopsAtFirstFailure(t *testing.T) {
	tests := []struct {
		name       string
		opts       []sqsbatch.Option
		records    []events.KinesisEventRecord
		fail       map[string]bool // by sequence number
		wantFailed []string
		wantRan    []string
	}{
		{
			name:       "all succeed",
			records:    []events.KinesisEventRecord{kinesisRecord("1", `{}`), kinesisRecord("2", `{}`)},
			wantFailed: []string{},
			wantRan:    []string{"1", "2"},
		},
		{
			name:       "later records are not run",
			records:    []events.KinesisEventRecord{kinesisRecord("1", `{}`), kinesisRecord("2", `{}`), kinesisRecord("3", `{}`), kinesisRecord("4", `{}`)},
			fail:       map[string]bool{"2": true},
			wantFailed: []string{"2", "3", "4"},
			wantRan:    []string{"1", "2"},
		},
		{
			name:       "body key on the data",
			opts:       []sqsbatch.Option{sqsbatch.WithBodyKey("orderId")},
			records:    []events.KinesisEventRecord{kinesisRecord("1", `{"orderId":"o-1"}`), kinesisRecord("2", `{"orderId":"o-1"}`), kinesisRecord("3", `{"orderId":"o-3"}`)},
			wantFailed: []string{},
			wantRan:    []string{"1", "3"},
		},
		{
			name:       "unreadable data stops the shard",
			opts:       []sqsbatch.Option{sqsbatch.WithBodyKey("orderId")},
			records:    []events.KinesisEventRecord{kinesisRecord("1", `{"orderId":"o-1"}`), kinesisRecord("2", `not json`), kinesisRecord("3", `{"orderId":"o-3"}`)},
			wantFailed: []string{"2", "3"},
			wantRan:    []string{"1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ran []string
			fn := func(_ context.Context, r events.KinesisEventRecord) error {
				ran = append(ran, r.Kinesis.SequenceNumber)
				if tt.fail[r.Kinesis.SequenceNumber] {
					return errRecord
				}
				return nil
			}
			h := sqsbatch.WrapKinesis(guardOf(idempotent.NewMemoryStore()), fn, base(append(tt.opts, sqsbatch.WithConcurrency(4))...)...)
			resp, err := h(context.Background(), events.KinesisEvent{Records: tt.records})
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, f := range resp.BatchItemFailures {
				got = append(got, f.ItemIdentifier)
			}
			if !slices.Equal(got, tt.wantFailed) {
				t.Errorf("failures %q, want %q", got, tt.wantFailed)
			}
			if ran == nil {
				ran = []string{}
			}
			if !slices.Equal(ran, tt.wantRan) {
				t.Errorf("ran %q, want %q", ran, tt.wantRan)
			}
		})
	}
}

func TestWrapDynamoDBRedelivery(t *testing.T) {
	store := idempotent.NewMemoryStore()
	var ran []string
	broken := true
	fn := func(_ context.Context, r events.DynamoDBEventRecord) error {
		ran = append(ran, r.Change.SequenceNumber)
		if r.Change.SequenceNumber == "200" && broken {
			panic("broken")
		}
		return nil
	}
	h := sqsbatch.WrapDynamoDB(guardOf(store), fn, base()...)
	ev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{dynamoRecord("100"), dynamoRecord("200"), dynamoRecord("300")}}
	resp, err := h(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	want := []events.DynamoDBBatchItemFailure{{ItemIdentifier: "200"}, {ItemIdentifier: "300"}}
	if !slices.Equal(resp.BatchItemFailures, want) {
		t.Errorf("failures %+v, want %+v", resp.BatchItemFailures, want)
	}
	// Lambda retries from sequence number 200, with the whole batch again
	// when it cannot split it.
	broken, ran = false, nil
	resp, err = h(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("retry failures %+v, want none", resp.BatchItemFailures)
	}
	if want := []string{"200", "300"}; !slices.Equal(ran, want) {
		t.Errorf("retry ran %q, want %q", ran, want)
	}
}

func TestStreamKeyOptionsRejected(t *testing.T) {
	kfn := func(context.Context, events.KinesisEventRecord) error { return nil }
	dfn := func(context.Context, events.DynamoDBEventRecord) error { return nil }
	store := idempotent.NewMemoryStore()
	tests := []struct {
		name   string
		invoke func() error
	}{
		{"kinesis attribute key", func() error {
			_, err := sqsbatch.WrapKinesis(idempotent.New(store), kfn, sqsbatch.WithAttributeKey("a"))(context.Background(), events.KinesisEvent{})
			return err
		}},
		{"kinesis deduplication key", func() error {
			_, err := sqsbatch.WrapKinesis(idempotent.New(store), kfn, sqsbatch.WithDeduplicationKey())(context.Background(), events.KinesisEvent{})
			return err
		}},
		{"dynamodb body key", func() error {
			_, err := sqsbatch.WrapDynamoDB(idempotent.New(store), dfn, sqsbatch.WithBodyKey("id"))(context.Background(), events.DynamoDBEvent{})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ce *idempotent.ConfigError
			if err := tt.invoke(); !errors.As(err, &ce) {
				t.Errorf("error %v, want a *idempotent.ConfigError", err)
			}
		})
	}
}

func TestPanicIsLoggedWithItsMessageID(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	rec := newRecorder()
	h := sqsbatch.Wrap(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithLogger(logger), idempotent.WithName("orders")), rec.handle)
	if _, err := h(context.Background(), batch(msg("m1", "o-1", ""), msg("m2", "o-2", "panic"))); err != nil {
		t.Fatal(err)
	}
	var found bool
	for line := range strings.Lines(buf.String()) {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry["level"] == "ERROR" && entry["itemIdentifier"] == "m2" {
			found = strings.Contains(entry["panic"].(string), "test panic in m2") && strings.Contains(entry["stack"].(string), "recorder")
		}
	}
	if !found {
		t.Errorf("no ERROR log for m2 with the panic value and stack in:\n%s", buf.String())
	}
}
