package benchdata

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestJSON(t *testing.T) {
	for _, size := range []int{0, 64, 200, 1000, 20 << 10, 300 << 10} {
		b := JSON(size, 7)
		if len(b) != max(size, 64) {
			t.Errorf("JSON(%d) has %d bytes", size, len(b))
		}
		if !json.Valid(b) {
			t.Errorf("JSON(%d) is not valid JSON: %.80s...", size, b)
		}
		if !bytes.Equal(b, JSON(size, 7)) {
			t.Errorf("JSON(%d) is not deterministic", size)
		}
	}
	if r := Random(1001, 1); len(r) != 1001 || bytes.Equal(r, Random(1001, 2)) {
		t.Errorf("Random: len %d or seeds collide", len(r))
	}
}
