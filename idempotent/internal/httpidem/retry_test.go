package httpidem

import (
	"testing"
	"time"
)

// TestInProgressRetryAfter: a 409 advertises one second, or the lease's end
// when sooner, never the whole lease; the header is whole seconds, at
// least 1.
func TestInProgressRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		left   time.Duration
		want   time.Duration
		header string
	}{
		{name: "the example function's 10 s lease", left: 10 * time.Second, want: time.Second, header: "1"},
		{name: "a 15 min lease", left: 15 * time.Minute, want: time.Second, header: "1"},
		{name: "lease ends in 300 ms", left: 300 * time.Millisecond, want: 300 * time.Millisecond, header: "1"},
		{name: "lease ends now", left: 0, want: time.Second, header: "1"},
		{name: "lease ended", left: -time.Second, want: time.Second, header: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := inProgressRetryAfter(now.Add(tt.left), now)
			if got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if h := (Problem{RetryAfter: got}).Headers()["Retry-After"]; h != tt.header {
				t.Fatalf("header %q, want %q", h, tt.header)
			}
		})
	}
}
