package httpidem

import (
	"errors"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
		ok     bool
	}{
		{name: "token", values: []string{"order-123"}, want: "order-123", ok: true},
		{name: "every visible ASCII but the comma", values: []string{"!~#$%&'*+-.^_`|09azAZ;:<>=?@[]{}()/\\\""}, want: "!~#$%&'*+-.^_`|09azAZ;:<>=?@[]{}()/\\\"", ok: true},
		{name: "comma-joined identical", values: []string{"a,a"}, want: "a", ok: true},
		{name: "comma-joined identical with spaces", values: []string{"a , a"}, want: "a", ok: true},
		{name: "repeats across values and commas", values: []string{"a", "a,a"}, want: "a", ok: true},
		{name: "sf-string with comma", values: []string{`"a,b"`}, want: "a,b", ok: true},
		{name: "sf-strings with commas, joined", values: []string{`"a,b", "a,b"`}, want: "a,b", ok: true},
		{name: "sf-string with escaped quote and comma", values: []string{`"a\",b"`}, want: `a",b`, ok: true},
		{name: "quote inside a token is a character", values: []string{`a"b`}, want: `a"b`, ok: true},
		{name: "255 chars", values: []string{strings.Repeat("k", 255)}, want: strings.Repeat("k", 255), ok: true},
		{name: "surrounding whitespace trimmed", values: []string{" \tabc\t "}, want: "abc", ok: true},
		{name: "sf-string", values: []string{`"abc"`}, want: "abc", ok: true},
		{name: "sf-string with space and escapes", values: []string{`"a b\"c\\d"`}, want: `a b"c\d`, ok: true},
		{name: "sf-string 255 unquoted", values: []string{`"` + strings.Repeat("q", 255) + `"`}, want: strings.Repeat("q", 255), ok: true},
		{name: "same value twice", values: []string{"abc", "abc"}, want: "abc", ok: true},
		{name: "token and equal sf-string", values: []string{"abc", `"abc"`}, want: "abc", ok: true},

		{name: "empty", values: []string{""}},
		{name: "blank", values: []string{"   "}},
		{name: "256 chars", values: []string{strings.Repeat("k", 256)}},
		{name: "300 chars", values: []string{strings.Repeat("k", 300)}},
		{name: "inner space", values: []string{"a b"}},
		{name: "tab inside", values: []string{"a\tb"}},
		{name: "non-ASCII", values: []string{"clé"}},
		{name: "emoji", values: []string{"key-🔑"}},
		{name: "control char", values: []string{"a\x01b"}},
		{name: "DEL", values: []string{"a\x7fb"}},
		{name: "unterminated quote", values: []string{`"abc`}},
		{name: "empty sf-string", values: []string{`""`}},
		{name: "blank sf-string", values: []string{`"   "`}},
		{name: "bad escape", values: []string{`"a\nb"`}},
		{name: "trailing backslash", values: []string{`"ab\"`}},
		{name: "unescaped quote inside", values: []string{`"a"b"`}},
		{name: "non-ASCII in sf-string", values: []string{`"clé"`}},
		{name: "sf-string 256 unquoted", values: []string{`"` + strings.Repeat("q", 256) + `"`}},
		{name: "two different values", values: []string{"abc", "abd"}},
		{name: "comma-joined different (HTTP API v2, Function URL)", values: []string{"a,b"}},
		{name: "comma-joined different across values", values: []string{"a", "a,b"}},
		{name: "sf-string and token differ", values: []string{`"a,b",a`}},
		{name: "trailing comma", values: []string{"a,"}},
		{name: "leading comma", values: []string{",a"}},
		{name: "comma only", values: []string{","}},
		{name: "quote inside a token does not quote a comma", values: []string{`a"b,c"`}},
		{name: "unterminated sf-string with comma", values: []string{`"a,b`}},
		{name: "no values", values: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.values)
			if tt.ok {
				if err != nil || got != tt.want {
					t.Fatalf("ParseKey(%q) = %q, %v; want %q", tt.values, got, err, tt.want)
				}
				return
			}
			if _, ok := errors.AsType[*KeyError](err); !ok {
				t.Fatalf("ParseKey(%q) = %q, %v; want a *KeyError", tt.values, got, err)
			}
		})
	}
}

func TestHeaderValues(t *testing.T) {
	tests := []struct {
		name   string
		single map[string]string
		multi  map[string][]string
		want   []string
	}{
		{name: "lower case single", single: map[string]string{"idempotency-key": "a"}, want: []string{"a"}},
		{name: "mixed case single", single: map[string]string{"IdEmPoTeNcY-KeY": "a"}, want: []string{"a"}},
		{name: "multi preferred", single: map[string]string{"Idempotency-Key": "b"}, multi: map[string][]string{"idempotency-key": {"a", "b"}}, want: []string{"a", "b"}},
		{name: "absent", single: map[string]string{"x": "a"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HeaderValues(tt.single, tt.multi, HeaderKey)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || (got == nil) != (tt.want == nil) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCanonicalJSON(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{name: "key order and whitespace", a: `{"b":1,"a":{"y":[1,2],"x":"s"}}`, b: "{\r\n\t\"a\": {\"x\": \"s\", \"y\": [1, 2]},\n \"b\": 1\n}", same: true},
		{name: "big integer kept", a: `{"n":12345678901234567890123}`, b: `{"n":12345678901234567890124}`, same: false},
		{name: "number literal kept", a: `{"n":1.0}`, b: `{"n":1}`, same: false},
		{name: "array order matters", a: `[1,2]`, b: `[2,1]`, same: false},
		{name: "escapes normalised", a: `{"s":"\u0041<"}`, b: `{"s":"A<"}`, same: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, okA := CanonicalJSON([]byte(tt.a))
			cb, okB := CanonicalJSON([]byte(tt.b))
			if !okA || !okB {
				t.Fatalf("not JSON: %v %v", okA, okB)
			}
			if (string(ca) == string(cb)) != tt.same {
				t.Fatalf("canonical %s vs %s: same=%v, want %v", ca, cb, !tt.same, tt.same)
			}
		})
	}
	// Bodies that encoding/json would map to U+FFFD are compared raw, so
	// they never share a fingerprint with another body.
	for _, bad := range []string{``, `{`, `{"a":1} x`, `{"a":1}{"b":2}`, "\xff", "{\"note\":\"\xff\"}", `{"s":"\ud800"}`, `{"s":"\ufffd"}`} {
		if _, ok := CanonicalJSON([]byte(bad)); ok {
			t.Errorf("CanonicalJSON(%q) ok, want not JSON", bad)
		}
	}
	if c, _ := CanonicalJSON([]byte(`{"n": 12345678901234567890123, "f": 1e400}`)); string(c) != `{"f":1e400,"n":12345678901234567890123}` {
		t.Errorf("numbers changed: %s", c)
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct{ name, a, b string }{
		{name: "order of names", a: "b=2&a=1", b: "a=1&b=2"},
		{name: "escaping", a: "a=x%20y", b: "a=x+y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if CanonicalQuery(tt.a) != CanonicalQuery(tt.b) {
				t.Fatalf("%q != %q", CanonicalQuery(tt.a), CanonicalQuery(tt.b))
			}
		})
	}
	if CanonicalQuery("a=1&a=2") == CanonicalQuery("a=2&a=1") {
		t.Error("value order of one name must matter")
	}
	if got := CanonicalQueryMaps(nil, map[string][]string{"b": {"2"}, "a": {"x y"}}, false); got != CanonicalQuery("a=x%20y&b=2") {
		t.Errorf("maps: %q", got)
	}
	if got := CanonicalQueryMaps(map[string]string{"a": "x%20y"}, nil, true); got != CanonicalQuery("a=x%20y") {
		t.Errorf("escaped maps: %q", got)
	}
}

func TestDefaultStored(t *testing.T) {
	tests := []struct {
		status int
		want   bool
	}{
		{0, false}, {100, false}, {200, true}, {201, true}, {204, true}, {301, true}, {304, true},
		{400, true}, {404, true}, {408, false}, {409, false}, {422, true}, {425, false}, {429, false},
		{499, true}, {500, false}, {502, false}, {503, false}, {599, false},
	}
	for _, tt := range tests {
		if got := DefaultStored(tt.status); got != tt.want {
			t.Errorf("DefaultStored(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
}

func TestRetried(t *testing.T) {
	for _, tt := range []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"1"}, false},
		{[]string{"0"}, false},
		{[]string{"-2"}, false},
		{[]string{"two"}, false},
		{[]string{"2.0"}, false},
		{[]string{"2"}, true},
		{[]string{" 17 "}, true},
		{[]string{"3, 4"}, true},
		{[]string{"1", "2"}, false}, // the first value counts
		{[]string{"99999999999999999999"}, false},
	} {
		if got := Retried(tt.values); got != tt.want {
			t.Errorf("Retried(%q) = %v, want %v", tt.values, got, tt.want)
		}
	}
}
