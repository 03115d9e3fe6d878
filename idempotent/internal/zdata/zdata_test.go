package zdata_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent/internal/zdata"
	"github.com/idemlambda/idemlambda/internal/benchdata"
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

// A frame damaged anywhere never decodes to other bytes: the frame's
// checksum fails it (ErrUndecodable), so a store reports a corrupt record
// instead of replaying garbage.
func TestDamagedFrameFailsClosed(t *testing.T) {
	data := benchdata.JSON(4096, 7)
	z, f, err := zdata.Encode(data, 512)
	if err != nil || f != zdata.Zstd {
		t.Fatal(f, err)
	}
	for i := range z {
		bad := bytes.Clone(z)
		bad[i] ^= 0x10
		out, err := zdata.Decode(bad, f)
		if err == nil && !bytes.Equal(out, data) {
			t.Fatalf("a frame damaged at byte %d of %d decodes to other bytes", i, len(z))
		}
		if err != nil && !errors.Is(err, zdata.ErrUndecodable) {
			t.Fatalf("damaged at byte %d: %v, want ErrUndecodable", i, err)
		}
	}
}

// Encode and Decode are safe for concurrent use: the stores call them from
// every invocation at once (go test -race).
func TestConcurrentUse(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				data := benchdata.JSON(2048+64*j, uint64(i))
				z, f, err := zdata.Encode(data, 512)
				if err != nil || f != zdata.Zstd {
					t.Errorf("Encode: %q, %v", f, err)
					return
				}
				out, err := zdata.Decode(z, f)
				if err != nil || !bytes.Equal(out, data) {
					t.Errorf("Decode(Encode(x)) differs: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkCodec measures Encode and Decode of a 20 KB JSON result (make
// bench's large result), the stores' share of a guarded call's CPU.
func BenchmarkCodec(b *testing.B) {
	data := benchdata.JSON(20<<10, 1)
	z, f, err := zdata.Encode(data, 512)
	if err != nil || f != zdata.Zstd {
		b.Fatal(f, err)
	}
	b.Run("encode/20KB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, _, err := zdata.Encode(data, 512); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/20KB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := zdata.Decode(z, zdata.Zstd); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel/20KB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				z, f, err := zdata.Encode(data, 512)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := zdata.Decode(z, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
