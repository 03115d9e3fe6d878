package idempotent

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

type marshalsItself struct{}

func (marshalsItself) MarshalJSON() ([]byte, error) {
	return []byte(` { "b" : [1, 2] , "a":"<x>" } `), nil
}

// The key material of a Go event is its json.Marshal bytes: record ids
// derived from it must not change with the pooled encoder.
func TestEncodeKeyJSONIsMarshal(t *testing.T) {
	big := strings.Repeat("y", 100<<10) // beyond maxPooledKeyJSON
	values := []any{
		struct {
			ID string `json:"id"`
		}{"o-1"},
		map[string]any{"z": 1, "a": []any{"<&>", "\u2028\u2029", 1.5, nil, true}},
		"é\ufffd\x7f",
		json.RawMessage(` {"b":1, "a" : 2} `),
		marshalsItself{},
		[]byte{0, 1, 0xff},
		time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		big,
		"short after big",
		12345678901234567890.0,
		nil,
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		k, err := encodeKeyJSON(v)
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		if got := k.bytes(); !bytes.Equal(got, want) {
			t.Errorf("%T: %q, json.Marshal %q", v, trim(got), trim(want))
		}
		k.free()
	}
}

func trim(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

func TestEncodeKeyJSONRefusesLoss(t *testing.T) {
	if _, err := encodeKeyJSON(struct{ S string }{"a\xffb"}); !errors.Is(err, errInvalidUTF8) {
		t.Fatalf("invalid UTF-8: %v, want errInvalidUTF8", err)
	}
	if _, err := encodeKeyJSON(func() {}); err == nil {
		t.Fatal("a func encodes")
	}
	// A valid U+FFFD is kept, not refused.
	k, err := encodeKeyJSON("\ufffd")
	if err != nil || string(k.bytes()) != "\"\ufffd\"" {
		t.Fatalf("U+FFFD: %v", err)
	}
	k.free()
}
