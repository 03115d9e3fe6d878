package sqsbatch_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/sqsbatch"
)

// TestAttributeKeyKeepsInvalidUTF8: two attribute values that differ only
// in bytes that are not UTF-8 are two records: both run. json.Marshal wrote
// both as U+FFFD, so the second replayed the first's completion.
func TestAttributeKeyKeepsInvalidUTF8(t *testing.T) {
	attr := func(id, v string) events.SQSMessage {
		m := msg(id, id, "")
		m.MessageAttributes = map[string]events.SQSMessageAttribute{"requestId": {StringValue: &v, DataType: "String"}}
		return m
	}
	rec := newRecorder()
	h := sqsbatch.Wrap(guardOf(idempotent.NewMemoryStore()), rec.handle, base(sqsbatch.WithAttributeKey("requestId"))...)
	resp, err := h(context.Background(), batch(attr("m1", "r-\xff"), attr("m2", "r-\xfe"), attr("m3", "r-\ufffd")))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%v, %v", failed(resp), err)
	}
	if got, want := rec.ran(), []string{"m1", "m2", "m3"}; !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q: distinct values collapsed", got, want)
	}
}

// TestDeduplicationKeyKeepsInvalidUTF8: the same for deduplication ids and
// message groups.
func TestDeduplicationKeyKeepsInvalidUTF8(t *testing.T) {
	dup := func(id, group, dedup string) events.SQSMessage {
		m := fifo(id, group, "")
		m.Attributes["MessageDeduplicationId"] = dedup
		return m
	}
	rec := newRecorder()
	h := sqsbatch.Wrap(guardOf(idempotent.NewMemoryStore()), rec.handle, base(sqsbatch.WithDeduplicationKey())...)
	resp, err := h(context.Background(), batch(dup("m1", "A", "d-\xff"), dup("m2", "A", "d-\xfe"), dup("m3", "\xff", "d"), dup("m4", "\xfe", "d")))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%v, %v", failed(resp), err)
	}
	if got, want := rec.ran(), []string{"m1", "m2", "m3", "m4"}; !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q: distinct ids collapsed", got, want)
	}
}
