package dynamostore

import (
	"bytes"
	"compress/flate"
	"fmt"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/idemlambda/idemlambda/internal/benchdata"
)

// BenchmarkCodecs measures the candidate codecs on realistic JSON results:
// CPU per result (ns/op) against the DynamoDB write units it saves
// (units/op is what the data costs after compression, plus the record's
// ~300 bytes of other attributes; saved-units/op is the difference to storing
// it plain). docs/performance.md records the outcome; it chose zstd at its
// fastest level and the compression threshold.
//
//	go test -run '^$' -bench Codecs -benchtime 200x ./idempotent/dynamostore
func BenchmarkCodecs(b *testing.B) {
	zfast, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	zdef, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	zdec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	flateAt := func(level int) func([]byte) []byte {
		return func(p []byte) []byte {
			var buf bytes.Buffer
			w, _ := flate.NewWriter(&buf, level)
			_, _ = w.Write(p)
			_ = w.Close()
			return buf.Bytes()
		}
	}
	codecs := []struct {
		name   string
		encode func([]byte) []byte
	}{
		{"flate-1", flateAt(flate.BestSpeed)},
		{"flate-6", flateAt(flate.DefaultCompression)},
		{"s2", func(p []byte) []byte { return s2.Encode(nil, p) }},
		{"zstd-fastest", func(p []byte) []byte { return zfast.EncodeAll(p, nil) }},
		{"zstd-default", func(p []byte) []byte { return zdef.EncodeAll(p, nil) }},
	}
	const overhead = 300 // the record's other attributes
	units := func(n int) float64 { return float64((n + overhead + 1023) / 1024) }
	for _, size := range []int{512, 1 << 10, 2 << 10, 4 << 10, 20 << 10, 300 << 10, 1 << 20} {
		data := benchdata.JSON(size, 1)
		for _, c := range codecs {
			b.Run(fmt.Sprintf("codec=%s/size=%d", c.name, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				var out []byte
				for b.Loop() {
					out = c.encode(data)
				}
				b.ReportMetric(float64(len(out))/float64(size), "ratio")
				b.ReportMetric(units(len(out)), "units/op")
				b.ReportMetric(units(size)-units(len(out)), "saved-units/op")
			})
		}
		b.Run(fmt.Sprintf("codec=zstd-fastest-decode/size=%d", size), func(b *testing.B) {
			enc := zfast.EncodeAll(data, nil)
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := zdec.DecodeAll(enc, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
