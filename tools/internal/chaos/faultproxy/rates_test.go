package faultproxy_test

import (
	"strings"
	"testing"

	"github.com/idemlambda/idemlambda/tools/internal/chaos/faultproxy"
)

func TestRates(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{name: "empty", in: "", want: ""},
		{name: "round trip in Kinds order", in: "drop=0.1, reset=0.2", want: "reset=0.2,drop=0.1"},
		{name: "not kind=rate", in: "reset", wantErr: `"reset" is not kind=rate`},
		{name: "unknown kind", in: "melt=0.1", wantErr: "melt"},
		{name: "rate above 1", in: "reset=1.5", wantErr: "not in [0, 1]"},
		{name: "rate not a number", in: "reset=x", wantErr: "not in [0, 1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rates, err := faultproxy.ParseRates(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRates(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := faultproxy.FormatRates(rates); got != tt.want {
				t.Fatalf("FormatRates(ParseRates(%q)) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
