package idempotent_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
)

// IDEMPOTENCY_DISABLED set to a value that is not a boolean ("yes", "on")
// leaves idempotency on and says so in a warning.
func TestDisabledEnvNotBooleanWarns(t *testing.T) {
	tests := []struct {
		name, value string
		warn        bool
	}{
		{"yes", "yes", true},
		{"on", "on", true},
		{"false", "false", false},
		{"unset", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(idempotent.DisabledEnv, tt.value)
			var buf bytes.Buffer
			h := idempotent.Wrap(idempotent.NewMemoryStore(), func(_ context.Context, n int) (int, error) { return n, nil },
				idempotent.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
			if _, err := h(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			if idempotent.Disabled() {
				t.Fatalf("%q disables idempotency", tt.value)
			}
			if got := strings.Contains(buf.String(), "not a boolean"); got != tt.warn {
				t.Fatalf("warning logged = %v, want %v; log: %s", got, tt.warn, buf.String())
			}
		})
	}
}
