package sqsbatch

import (
	"encoding/json"
	"testing"
)

// TestJSONStringsIsMarshalForValidUTF8: record ids of valid input do not
// change with the lossless encoding (json.Marshal's bytes, HTML and line
// separator escapes included).
func TestJSONStringsIsMarshalForValidUTF8(t *testing.T) {
	for _, ss := range [][]string{
		{"requestId", "S", "r-1"},
		{"a\"b\\c", "<&>", "\u2028\u2029", "\x00\x1f\t\n", "é✓😀", ""},
		{"arn:aws:sqs:us-east-1:1:q.fifo", "group", "dedup"},
	} {
		want, err := json.Marshal(ss)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonStrings(ss...); got != string(want) {
			t.Errorf("jsonStrings(%q) = %s, json.Marshal = %s", ss, got, want)
		}
	}
}
