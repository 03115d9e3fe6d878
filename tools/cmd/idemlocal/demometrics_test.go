package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/emf"
)

// TestEMFCollectorReadsEMFRecords: the demo finds the records emf writes
// (which start with "level", not "_aws") in the prefixed log stream, and
// skips the other lines.
func TestEMFCollectorReadsEMFRecords(t *testing.T) {
	var rec bytes.Buffer
	m, err := emf.New(func(o *emf.Options) { o.Writer = &rec; o.Dimensions = map[string]string{} })
	if err != nil {
		t.Fatal(err)
	}
	m.Observer().Call(context.Background(), idempotent.Report{Outcome: idempotent.OutcomeCompleted})
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	var c emfCollector
	stream := `[PaymentsFunction] {"time":"2026-12-07T05:00:00Z","level":"INFO","msg":"payment created"}` + "\n" +
		"[PaymentsFunction] " + rec.String()
	if _, err := c.Write([]byte(stream)); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	c.print(&out)
	if !strings.Contains(out.String(), "PaymentsFunction (1 records): Calls=1 Completed=1") {
		t.Fatalf("summary:\n%s", out.String())
	}
}
