// Package benchdata makes deterministic, realistic JSON results of a chosen
// size for benchmarks and size tests: a list of order lines with ids, names,
// prices and timestamps, the kind of document a Lambda handler returns. Its
// compressibility is that of typical API JSON (repeated keys, varied values),
// not that of a run of one byte.
package benchdata

import (
	"math/rand/v2"
	"strconv"
)

var (
	products = []string{"espresso beans", "oat milk", "paper filters", "ceramic mug", "burr grinder",
		"kettle", "scale", "travel tumbler", "cold brew jar", "descaler"}
	cities   = []string{"Lisbon", "Osaka", "Denver", "Tallinn", "Nairobi", "Quito", "Perth", "Bergen"}
	statuses = []string{"PAID", "SHIPPED", "PACKED", "BACKORDERED"}
)

// JSON returns a JSON object of exactly size bytes (at least 64) made from
// seed: {"orderId":...,"lines":[...],"pad":"..."}. Equal arguments give equal
// bytes.
func JSON(size int, seed uint64) []byte {
	size = max(size, 64)
	r := rand.New(rand.NewPCG(seed, 0x1de3))
	b := make([]byte, 0, size+256)
	b = append(b, `{"orderId":"ord-`...)
	b = strconv.AppendUint(b, r.Uint64()%1e12, 10)
	b = append(b, `","lines":[`...)
	const tail = `],"pad":""}`
	for i := 0; ; i++ {
		line := make([]byte, 0, 256)
		if i > 0 {
			line = append(line, ',')
		}
		line = append(line, `{"sku":"SKU-`...)
		line = strconv.AppendUint(line, uint64(r.IntN(90000)+10000), 10)
		line = append(line, `","name":"`...)
		line = append(line, products[r.IntN(len(products))]...)
		line = append(line, `","qty":`...)
		line = strconv.AppendInt(line, int64(r.IntN(9)+1), 10)
		line = append(line, `,"unitPrice":`...)
		line = strconv.AppendFloat(line, float64(r.IntN(20000))/100, 'f', 2, 64)
		line = append(line, `,"warehouse":"`...)
		line = append(line, cities[r.IntN(len(cities))]...)
		line = append(line, `","status":"`...)
		line = append(line, statuses[r.IntN(len(statuses))]...)
		line = append(line, `","updatedAt":"2025-`...)
		line = append2(line, r.IntN(12)+1)
		line = append(line, '-')
		line = append2(line, r.IntN(28)+1)
		line = append(line, 'T')
		line = append2(line, r.IntN(24))
		line = append(line, ':')
		line = append2(line, r.IntN(60))
		line = append(line, ':')
		line = append2(line, r.IntN(60))
		line = append(line, `Z","trace":"`...)
		line = strconv.AppendUint(line, r.Uint64(), 36)
		line = append(line, `"}`...)
		if len(b)+len(line)+len(tail) > size {
			break
		}
		b = append(b, line...)
	}
	b = append(b, tail[:len(tail)-2]...)
	for len(b)+2 < size {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// Random returns size bytes that do not compress (for worst-case tests).
func Random(size int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0xbad))
	b := make([]byte, size)
	for i := 0; i+8 <= size; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := size &^ 7; i < size; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}
