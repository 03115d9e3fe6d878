package apigw_test

import (
	"context"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/apigw"
)

// TestDisabledRunsUnguarded: IDEMPOTENCY_DISABLED lets an adapter built
// without a store pass every request through, as Wrap, Do and sqsbatch do.
func TestDisabledRunsUnguarded(t *testing.T) {
	t.Setenv(idempotent.DisabledEnv, "true")
	h := apigw.WrapV2(idempotent.New(nil), created)
	for range 2 {
		resp, err := h(context.Background(), loadV2(t))
		if err != nil || resp.StatusCode != 201 || resp.Headers["Idempotent-Replayed"] != "" {
			t.Fatalf("disabled = %d %v %v, want the handler's 201", resp.StatusCode, resp.Headers, err)
		}
	}
}
