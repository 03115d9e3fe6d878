package sqsbatch_test

import (
	"context"
	"encoding/json"
	"math/big"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/keyjson"
	"github.com/idemlambda/idemlambda/idempotent/sqsbatch"
)

// FuzzBodyKey feeds arbitrary bodies to a body-keyed handler: each record
// either runs or is reported failed, and nothing panics.
func FuzzBodyKey(f *testing.F) {
	for _, s := range []string{`{"orderId":"o-1"}`, `{"orderId":1e400}`, `{"orderId":[1,{"a":null}]}`, `"x"`, `null`, `{`, "\xff", `{"orderId":"o"} {}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		runs := 0
		h := sqsbatch.Wrap(guardOf(idempotent.NewMemoryStore()), func(context.Context, events.SQSMessage) error { runs++; return nil },
			base(sqsbatch.WithBodyKey("orderId"))...)
		resp, err := h(context.Background(), batch(raw("m1", body)))
		if err != nil {
			t.Fatal(err)
		}
		if runs+len(resp.BatchItemFailures) != 1 {
			t.Fatalf("body %q: %d runs and %d failures, want exactly one of them", body, runs, len(resp.BatchItemFailures))
		}
	})
}

// FuzzBodyKeyEqualValue checks, pairwise, that equal SQS body keys mean
// equal handler-visible values: when the second of two messages replays the
// first (one run), both bodies carry the same orderId, byte for byte
// (keyjson.Decode keeps invalid UTF-8 and lone surrogates; numbers compare
// by value).
func FuzzBodyKeyEqualValue(f *testing.F) {
	for _, s := range [][2]string{
		{"{\"orderId\":\"\xff\"}", "{\"orderId\":\"\xfe\"}"},
		{`{"orderId":"\ud800"}`, `{"orderId":"\udc00"}`},
		{`{"orderId":"\ud800"}`, `{"orderId":"\ufffd"}`},
		{`{"orderId":1}`, `{"orderId":1.0}`},
		{`{"orderId":"o-1"}`, `{"orderId":"o-1","x":1}`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		runs := 0
		h := sqsbatch.Wrap(guardOf(idempotent.NewMemoryStore()), func(context.Context, events.SQSMessage) error { runs++; return nil },
			base(sqsbatch.WithBodyKey("orderId"))...)
		resp, err := h(context.Background(), batch(raw("m1", a), raw("m2", b)))
		if err != nil {
			t.Fatal(err)
		}
		if runs != 1 || len(resp.BatchItemFailures) != 0 {
			return // two keys, or an unreadable one
		}
		va, okA := orderID(a)
		vb, okB := orderID(b)
		if !okA || !okB || va != vb {
			t.Fatalf("%q replayed %q, but the handler sees orderId %q (%v) and %q (%v)", b, a, va, okA, vb, okB)
		}
	})
}

// orderID is the orderId a handler reads from body, as comparable text:
// strings keep their raw bytes, numbers are normalized to their value.
func orderID(body string) (string, bool) {
	doc, err := keyjson.Decode([]byte(body))
	if err != nil {
		return "", false
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return "", false
	}
	switch v := m["orderId"].(type) {
	case string:
		return "s:" + v, true
	case json.Number:
		f, _, err := big.ParseFloat(string(v), 10, 512, big.ToNearestEven)
		if err != nil {
			return "n:" + string(v), true
		}
		return "n:" + f.Text('g', -1), true
	case nil:
		return "", false
	default:
		b, err := keyjson.Append(nil, v)
		return "j:" + string(b), err == nil
	}
}
