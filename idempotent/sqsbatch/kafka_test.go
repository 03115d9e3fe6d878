package sqsbatch_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/sqsbatch"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// kafkaFixture is aws-lambda-go's Kafka event (testdata/kafka-event.json):
// one record, AWSKafkaTopic partition 0 offset 0.
func kafkaFixture(t *testing.T) events.KafkaEvent {
	t.Helper()
	b, err := os.ReadFile("testdata/kafka-event.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.KafkaEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Records["AWSKafkaTopic-0"]) != 1 {
		t.Fatalf("fixture records: %v", ev.Records)
	}
	return ev
}

// kafkaBatch grows the fixture to offsets 0..n0-1 of partition 0 and
// 0..n1-1 of partition 1; value gives each record's decoded value (nil
// keeps the fixture's).
func kafkaBatch(t *testing.T, n0, n1 int, value func(part, off int) []byte) events.KafkaEvent {
	t.Helper()
	ev := kafkaFixture(t)
	tmpl := ev.Records["AWSKafkaTopic-0"][0]
	ev.Records = map[string][]events.KafkaRecord{}
	for part, n := range []int{n0, n1} {
		key := fmt.Sprintf("AWSKafkaTopic-%d", part)
		for off := range n {
			r := tmpl
			r.Partition, r.Offset = int64(part), int64(off)
			if value != nil {
				r.Value = base64.StdEncoding.EncodeToString(value(part, off))
			}
			ev.Records[key] = append(ev.Records[key], r)
		}
	}
	return ev
}

// kafkaRec is the Kafka test function: it records runs by "partition/offset"
// and fails or panics where told.
type kafkaRec struct {
	mu    sync.Mutex
	runs  []string
	fail  map[string]bool
	panic map[string]bool
}

func newKafkaRec() *kafkaRec { return &kafkaRec{fail: map[string]bool{}, panic: map[string]bool{}} }

func (k *kafkaRec) handle(ctx context.Context, r events.KafkaRecord) error {
	if _, ok := idempotent.RecordIDFromContext(ctx); !ok {
		return errors.New("no record key in context")
	}
	id := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
	k.mu.Lock()
	k.runs = append(k.runs, id)
	fail, pan := k.fail[id], k.panic[id]
	k.mu.Unlock()
	if pan {
		panic("test panic at " + id)
	}
	if fail {
		return errRecord
	}
	return nil
}

func (k *kafkaRec) ran() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := slices.Clone(k.runs)
	k.runs = nil
	return out
}

// dynaliteStore is a dynamostore on a fresh dynalite table.
func dynaliteStore(t *testing.T) idempotent.Store {
	t.Helper()
	client := testdynamo.NewClient(testdynamo.Endpoint(t))
	return dynamostore.New(client, testdynamo.NewTable(t, client))
}

// responseJSON marshals a response the way the Lambda runtime does.
func responseJSON(t *testing.T, r sqsbatch.KafkaEventResponse) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantJSON(t *testing.T, what string, r sqsbatch.KafkaEventResponse, err error, want string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got := responseJSON(t, r); got != want {
		t.Errorf("%s: response\n got %s\nwant %s", what, got, want)
	}
}

// TestKafkaAllSucceed: the fixture itself, then a two-partition batch, on
// dynalite; every record runs once and the response lists no failures; the
// same batch delivered again replays without running.
func TestKafkaAllSucceed(t *testing.T) {
	store := dynaliteStore(t)
	rec := newKafkaRec()
	h := sqsbatch.WrapKafka(idempotent.New(store, idempotent.WithLogger(quiet)), rec.handle)
	ctx := context.Background()

	resp, err := h(ctx, kafkaFixture(t))
	wantJSON(t, "fixture", resp, err, `{"batchItemFailures":[]}`)
	if ran := rec.ran(); !slices.Equal(ran, []string{"0/0"}) {
		t.Errorf("fixture ran %v", ran)
	}

	ev := kafkaBatch(t, 3, 2, nil)
	resp, err = h(ctx, ev)
	wantJSON(t, "batch", resp, err, `{"batchItemFailures":[]}`)
	// 0/0 is the fixture's record: completed, it replays.
	if ran := rec.ran(); !slices.Equal(ran, []string{"0/1", "0/2", "1/0", "1/1"}) {
		t.Errorf("batch ran %v", ran)
	}
	resp, err = h(ctx, ev)
	wantJSON(t, "redelivered", resp, err, `{"batchItemFailures":[]}`)
	if ran := rec.ran(); len(ran) != 0 {
		t.Errorf("redelivered batch ran %v", ran)
	}
}

// TestKafkaFailureStopsItsPartition: a failure at offset 1 of partition 0
// reports offsets 1..3 of partition 0 (2 and 3 without running); partition
// 1 runs and is acknowledged. Redelivered after the fix, the completed
// records replay and only the failed ones run.
func TestKafkaFailureStopsItsPartition(t *testing.T) {
	store := dynaliteStore(t)
	rec := newKafkaRec()
	rec.fail["0/1"] = true
	h := sqsbatch.WrapKafka(idempotent.New(store, idempotent.WithLogger(quiet)), rec.handle)
	ctx := context.Background()
	ev := kafkaBatch(t, 4, 3, nil)

	resp, err := h(ctx, ev)
	wantJSON(t, "first delivery", resp, err, `{"batchItemFailures":[`+
		`{"itemIdentifier":{"partition":"AWSKafkaTopic-0","offset":1}},`+
		`{"itemIdentifier":{"partition":"AWSKafkaTopic-0","offset":2}},`+
		`{"itemIdentifier":{"partition":"AWSKafkaTopic-0","offset":3}}]}`)
	if ran := rec.ran(); !slices.Equal(ran, []string{"0/0", "0/1", "1/0", "1/1", "1/2"}) {
		t.Errorf("first delivery ran %v, want 0/2 and 0/3 not run", ran)
	}

	delete(rec.fail, "0/1")
	resp, err = h(ctx, ev)
	wantJSON(t, "redelivery", resp, err, `{"batchItemFailures":[]}`)
	if ran := rec.ran(); !slices.Equal(ran, []string{"0/1", "0/2", "0/3"}) {
		t.Errorf("redelivery ran %v, want only the failed records", ran)
	}
}

// TestKafkaPanicIsAFailure: a panic at offset 0 of partition 1 is that
// record's failure (and its partition's later records'), never an ack; it
// does not escape the handler.
func TestKafkaPanicIsAFailure(t *testing.T) {
	store := dynaliteStore(t)
	rec := newKafkaRec()
	rec.panic["1/0"] = true
	h := sqsbatch.WrapKafka(idempotent.New(store, idempotent.WithLogger(quiet)), rec.handle)
	resp, err := h(context.Background(), kafkaBatch(t, 1, 2, nil))
	wantJSON(t, "panic", resp, err, `{"batchItemFailures":[`+
		`{"itemIdentifier":{"partition":"AWSKafkaTopic-1","offset":0}},`+
		`{"itemIdentifier":{"partition":"AWSKafkaTopic-1","offset":1}}]}`)
	if ran := rec.ran(); !slices.Equal(ran, []string{"0/0", "1/0"}) {
		t.Errorf("ran %v", ran)
	}
}

// TestKafkaBodyKey: WithBodyKey reads the base64-decoded value, so the same
// order at two offsets runs once; a value that is not JSON, one without the
// key, and one that is not base64 each fail their record without running.
func TestKafkaBodyKey(t *testing.T) {
	store := dynaliteStore(t)
	rec := newKafkaRec()
	h := sqsbatch.WrapKafka(idempotent.New(store, idempotent.WithLogger(quiet)), rec.handle, sqsbatch.WithBodyKey("orderId"))
	ev := kafkaBatch(t, 2, 3, func(part, off int) []byte {
		switch {
		case part == 0:
			return []byte(`{"orderId":"o-1"}`) // the same order at offsets 0 and 1
		case off == 0:
			return []byte(`{"orderId":"o-2"}`)
		case off == 1:
			return []byte(`{"other":1}`)
		}
		return []byte(`{"orderId":"o-3"}`)
	})
	ev.Records["AWSKafkaTopic-1"][2].Value = "%%% not base64"
	ev.Records["AWSKafkaTopic-2"] = []events.KafkaRecord{kafkaFixture(t).Records["AWSKafkaTopic-0"][0]} // value not JSON
	ev.Records["AWSKafkaTopic-2"][0].Partition = 2

	resp, err := h(context.Background(), ev)
	wantJSON(t, "body key", resp, err, `{"batchItemFailures":[`+
		`{"itemIdentifier":{"partition":"AWSKafkaTopic-1","offset":1}},`+
		`{"itemIdentifier":{"partition":"AWSKafkaTopic-1","offset":2}},`+
		`{"itemIdentifier":{"partition":"AWSKafkaTopic-2","offset":0}}]}`)
	if ran := rec.ran(); !slices.Equal(ran, []string{"0/0", "1/0"}) {
		t.Errorf("ran %v, want 0/1 replayed (same orderId) and the unreadable keys not run", ran)
	}
}

// TestKafkaEmptyBatch answers an empty list, not null.
func TestKafkaEmptyBatch(t *testing.T) {
	rec := newKafkaRec()
	h := sqsbatch.WrapKafka(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithLogger(quiet)), rec.handle)
	for _, ev := range []events.KafkaEvent{{}, {Records: map[string][]events.KafkaRecord{"t-0": {}}}} {
		resp, err := h(context.Background(), ev)
		wantJSON(t, "empty", resp, err, `{"batchItemFailures":[]}`)
	}
}

// awsKafkaSchema is the partial batch response schema of AWS's page
// "Configuring error handling controls for Kafka event sources"
// (https://docs.aws.amazon.com/lambda/latest/dg/kafka-retry-configurations.html,
// section PartialBatchResponse), compacted and with its "..." dropped.
const awsKafkaSchema = `{"batchItemFailures":[{"itemIdentifier":{"partition":"topic-partition_number","offset":100}}]}`

// TestKafkaResponseIsAWSSchema pins the response to the documented schema:
// a failure at offset 100 of the fixture's partition marshals to exactly
// AWS's example, its placeholder replaced by the records-map key (a string,
// key name "partition"), the offset a JSON number. Lambda treats an
// identifier it cannot match as a failure of the whole batch.
func TestKafkaResponseIsAWSSchema(t *testing.T) {
	ev := kafkaFixture(t)
	ev.Records["AWSKafkaTopic-0"][0].Offset = 100
	rec := newKafkaRec()
	rec.fail["0/100"] = true
	h := sqsbatch.WrapKafka(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithLogger(quiet)), rec.handle)
	resp, err := h(context.Background(), ev)
	want := strings.Replace(awsKafkaSchema, "topic-partition_number", "AWSKafkaTopic-0", 1)
	wantJSON(t, "documented schema", resp, err, want)
	if ran := rec.ran(); !slices.Equal(ran, []string{"0/100"}) {
		t.Errorf("ran %v", ran)
	}
}

// TestKafkaRejectsSQSKeys: WithAttributeKey and WithDeduplicationKey do not
// apply to Kafka records and fail every invocation with a ConfigError.
func TestKafkaRejectsSQSKeys(t *testing.T) {
	rec := newKafkaRec()
	for _, o := range []sqsbatch.Option{sqsbatch.WithAttributeKey("a"), sqsbatch.WithDeduplicationKey()} {
		h := sqsbatch.WrapKafka(guardOf(idempotent.NewMemoryStore()), rec.handle, o)
		var ce *idempotent.ConfigError
		if _, err := h(context.Background(), kafkaFixture(t)); !errors.As(err, &ce) {
			t.Errorf("got %v, want a ConfigError", err)
		}
	}
	if ran := rec.ran(); len(ran) != 0 {
		t.Errorf("ran %v", ran)
	}
}

// TestKafkaKeyScopes: the default key tells topics, partitions, offsets and
// clusters apart: records equal but for one of them both run.
func TestKafkaKeyScopes(t *testing.T) {
	rec := newKafkaRec()
	h := sqsbatch.WrapKafka(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithLogger(quiet)), rec.handle)
	base := kafkaFixture(t)
	r := base.Records["AWSKafkaTopic-0"][0]
	other := r
	other.Topic = "AWSKafkaTopic-0" // topic names may contain dashes
	ctx := context.Background()
	for i, ev := range []events.KafkaEvent{
		base,
		{EventSourceARN: base.EventSourceARN + "-other", Records: base.Records},
		{EventSourceARN: base.EventSourceARN, Records: map[string][]events.KafkaRecord{"AWSKafkaTopic-0-0": {other}}},
	} {
		if _, err := h(ctx, ev); err != nil {
			t.Fatal(i, err)
		}
	}
	if ran := rec.ran(); len(ran) != 3 {
		t.Errorf("ran %v, want three records", ran)
	}
	empty := r
	empty.Topic = ""
	resp, err := h(ctx, events.KafkaEvent{Records: map[string][]events.KafkaRecord{"-0": {empty}}})
	wantJSON(t, "empty topic", resp, err, `{"batchItemFailures":[{"itemIdentifier":{"partition":"-0","offset":0}}]}`)
}
