package idemkms_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/idemlambda/idemlambda/idempotent"
)

// TestKeyPendingDeletion: local-kms answers Decrypt under a key pending
// deletion with AccessDeniedException, as for a disabled key: a *StoreError,
// the handler does not run. (KMS itself says KMSInvalidStateException, a
// corrupt record: TestKMSErrorsOnTheWire.) A new record under that key
// cannot be sealed: a *StoreError of complete, nothing stored.
func TestKeyPendingDeletion(t *testing.T) {
	c := localKMS(t)
	ctx := context.Background()
	inner := newSpy()
	if _, _, err := run(t, wrap(t, inner, c, aliasDisable), "p", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyDisable), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(keyDisable)})
		_, _ = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(keyDisable)})
	})
	_, ran, err := run(t, wrap(t, inner, c, aliasDisable), "p", "rerun")
	var ae smithy.APIError
	if _, ok := errors.AsType[*idempotent.StoreError](err); ran || !ok || !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Fatalf("replay under a key pending deletion: ran=%v err=%v, want a *StoreError for AccessDeniedException", ran, err)
	}
	before := len(inner.ids())
	_, _, err = run(t, wrap(t, inner, c, aliasDisable), "q", "v")
	if se, ok := errors.AsType[*idempotent.StoreError](err); !ok || se.Op != "complete" || len(inner.ids()) != before {
		t.Fatalf("new record under a key pending deletion: %v, want a *StoreError of complete and nothing stored", err)
	}
}
