package idemhttp_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
)

// failingComplete is a memory store whose Complete fails (a store outage
// between the run and the write of its result).
type failingComplete struct{ *idempotent.MemoryStore }

func (failingComplete) Complete(context.Context, idempotent.Record) error {
	return errors.New("connection reset")
}

// TestOutcomeUnknownRetryAfter: after the handler ran and its response could
// not be stored, the key stays held until the lease ends; Retry-After says
// so (whole seconds, rounded up), and a retry before then gets 409.
func TestOutcomeUnknownRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tests := []struct {
		name  string
		lease time.Duration
		want  string
	}{
		{name: "WithLease 90s", lease: 90 * time.Second, want: "90"},
		{name: "a lease with a fraction is rounded up", lease: 2500 * time.Millisecond, want: "3"},
		{name: "the default lease (net/http has no deadline)", want: strconv.Itoa(int(idempotent.DefaultLease / time.Second))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := []idempotent.Option{idempotent.WithClock(clock), idempotent.WithLogger(slog.New(slog.DiscardHandler))}
			if tt.lease > 0 {
				core = append(core, idempotent.WithLease(tt.lease))
			}
			store := failingComplete{idempotent.NewMemoryStore()}
			runs := 0
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { runs++; w.WriteHeader(201) })
			srv := httptest.NewServer(idemhttp.Middleware(idempotent.New(store, core...))(h))
			defer srv.Close()
			res, body := post(t, srv, "k", `{}`)
			if res.StatusCode != 503 || !strings.Contains(body, "#outcome-unknown") || res.Header.Get("Retry-After") != tt.want {
				t.Fatalf("%d Retry-After %q %s, want 503 with Retry-After %s", res.StatusCode, res.Header.Get("Retry-After"), body, tt.want)
			}
			// The key is held: a retry before the lease end does not run.
			res, _ = post(t, srv, "k", `{}`)
			if res.StatusCode != 409 || runs != 1 {
				t.Fatalf("retry: %d, handler ran %d times", res.StatusCode, runs)
			}
		})
	}
}
