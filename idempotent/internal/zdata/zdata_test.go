package zdata_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent/internal/zdata"
)

func TestEncodeDecode(t *testing.T) {
	compressible := bytes.Repeat([]byte(`{"sku":"SKU-1","qty":1},`), 100)
	tests := []struct {
		name       string
		data       []byte
		threshold  int
		wantFormat string
	}{
		{name: "below the threshold", data: compressible[:100], threshold: 512, wantFormat: ""},
		{name: "compression off", data: compressible, threshold: -1, wantFormat: ""},
		{name: "compressed", data: compressible, threshold: 512, wantFormat: zdata.Zstd},
		{name: "does not shrink", data: []byte("x9#kQ!"), threshold: 1, wantFormat: ""},
		{name: "nil is empty", data: nil, threshold: 0, wantFormat: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, f, err := zdata.Encode(tt.data, tt.threshold)
			if err != nil || f != tt.wantFormat {
				t.Fatalf("Encode: format %q, err %v; want %q", f, err, tt.wantFormat)
			}
			out, err := zdata.Decode(b, f)
			if err != nil || out == nil || !bytes.Equal(out, tt.data) {
				t.Fatalf("Decode(Encode(x)) = %q, %v; want x", out, err)
			}
		})
	}
}

func TestDecodeBadInput(t *testing.T) {
	if _, err := zdata.Decode([]byte("x"), "brotli"); !errors.Is(err, zdata.ErrUnknownFormat) {
		t.Fatalf("unknown format: %v, want ErrUnknownFormat", err)
	}
	if _, err := zdata.Decode([]byte("not a frame"), zdata.Zstd); !errors.Is(err, zdata.ErrUndecodable) {
		t.Fatalf("bad frame: %v, want ErrUndecodable", err)
	}
}
