package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestInvokeUsageNamesMakeVariables: a bare make invoke (no FN, no EVENT)
// says which make variables to set, not the Go flags.
func TestInvokeUsageNamesMakeVariables(t *testing.T) {
	for _, args := range [][]string{
		{"invoke", "-template", "../../../template.yaml"},
		{"invoke", "-template", "../../../template.yaml", "FN=OrdersFunction"},
		{"invoke", "-template", "../../../template.yaml", "FN=", "EVENT="},
	} {
		err := run(context.Background(), args, os.Stdout, slog.New(slog.DiscardHandler))
		if err == nil {
			t.Fatalf("run(%q) succeeded", args)
		}
		msg := err.Error()
		for _, want := range []string{"make invoke FN=", "EVENT=", "OrdersFunction", "PaymentsFunction", "fresh stack", "URL="} {
			if !strings.Contains(msg, want) {
				t.Errorf("run(%q): %q does not say %q", args, msg, want)
			}
		}
		if strings.Contains(msg, "-fn") || strings.Contains(msg, "-event") {
			t.Errorf("run(%q): %q names the Go flags", args, msg)
		}
	}
}

// localEndpoint returns a DynamoDB endpoint: AWS_ENDPOINT_URL_DYNAMODB, or a
// dynalite of the test's own.
func localEndpoint(t *testing.T) string {
	t.Helper()
	if ep := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"); ep != "" {
		return ep
	}
	ep, stop, err := startDynalite(context.Background(), "../../../dynalite", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return ep
}

// TestCreateTablesTTLNote: the local server's missing TTL API is one plain
// INFO line that says it is expected, not the raw UnknownOperationException.
func TestCreateTablesTTLNote(t *testing.T) {
	tpl := repoTemplate(t)
	var logs bytes.Buffer
	prefix := "ttl-" + strings.ToLower(rand.Text()[:8]) + "-"
	err := createTables(context.Background(), newDynamoClient(localEndpoint(t), "us-east-1"), tpl.Tables(), prefix, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "TTL") {
			notes = append(notes, line)
		}
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "level=INFO") || !strings.Contains(notes[0], "expected") ||
		!strings.Contains(notes[0], prefix+"IdempotencyTable") {
		t.Errorf("TTL lines %q, want one INFO line saying it is expected, naming %sIdempotencyTable", notes, prefix)
	}
	if strings.Contains(logs.String(), "UnknownOperationException") {
		t.Errorf("the log shows the raw error:\n%s", logs.String())
	}
}

// cancelOn calls cancel once the text it collects contains marker.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.marker) {
		c.cancel()
	}
	return len(p), nil
}

// TestRunStopsCleanlyOnSignal: run's context ends when SIGINT or SIGTERM
// arrives (main's signal.NotifyContext); run then stops the stack and returns
// nil, so Ctrl-C on make run exits 0 — during the start as well as after it.
func TestRunStopsCleanlyOnSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the functions and starts the local stack")
	}
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", localEndpoint(t))
	args := []string{"run", "-template", "../../../template.yaml", "-port", "0", "-build-dir", t.TempDir(),
		"-table-prefix", "sig-" + strings.ToLower(rand.Text()[:8]) + "-", "-instances", "1"}
	t.Run("while serving", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &cancelOn{marker: "Stop with Ctrl-C.", cancel: cancel}
		logs := &lockedBuffer{}
		if err := run(ctx, args, out, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
			t.Fatalf("run after the signal: %v, want nil\n%s", err, logs)
		}
		if !strings.Contains(logs.String(), "msg=stopped") {
			t.Errorf("no stopped line in the log:\n%s", logs)
		}
	})
	t.Run("while starting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := run(ctx, args, &bytes.Buffer{}, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatalf("run interrupted at start: %v, want nil", err)
		}
	})
}
