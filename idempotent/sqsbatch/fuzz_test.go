package sqsbatch_test

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
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
