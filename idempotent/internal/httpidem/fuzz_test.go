package httpidem

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseKey feeds arbitrary Idempotency-Key header values to ParseKey.
// No panic; an accepted key is 1–255 characters of printable ASCII (visible
// ASCII for a bare token, space allowed inside a quoted sf-string) and
// parses back to itself in its canonical spelling; a rejected one is a
// *KeyError.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		"k-1", "  k-1\t", `"a b"`, `"a\"b\\c"`, `"a\qb"`, `"unterminated`, `""`, `"   "`, "", " ",
		"k\x7f", "k\x00", "ключ", strings.Repeat("k", 255), strings.Repeat("k", 256),
		`"` + strings.Repeat("k", 255) + `"`, `"` + strings.Repeat("k", 256) + `"`, `"a"b"`, `a"b`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		key, err := ParseKey([]string{v})
		if err != nil {
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("ParseKey(%q) error %v is not a *KeyError", v, err)
			}
			return
		}
		if n := len(key); n < 1 || n > MaxKeyLen {
			t.Fatalf("ParseKey(%q) = %q: %d characters", v, key, n)
		}
		quoted := strings.HasPrefix(strings.Trim(v, " \t"), `"`)
		for i := 0; i < len(key); i++ {
			c := key[i]
			if c > 0x7e || c < 0x20 || (!quoted && c == 0x20) {
				t.Fatalf("ParseKey(%q) = %q: character %#x at %d", v, key, c, i)
			}
		}
		if strings.TrimSpace(key) == "" {
			t.Fatalf("ParseKey(%q) = %q: blank key", v, key)
		}
		// Canonical spelling: the token itself, or the sf-string.
		spelled := key
		if quoted {
			spelled = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(key) + `"`
		}
		again, err := ParseKey([]string{spelled, v})
		if err != nil || again != key {
			t.Fatalf("ParseKey(%q) = %q, but its spelling %q parses to %q, %v", v, key, spelled, again, err)
		}
	})
}

// FuzzCanonicalJSON checks the fingerprint's canonical JSON on pairs of
// documents: it accepts exactly the valid JSON documents, its output is
// valid JSON and a fixed point, and two documents get the same canonical
// form exactly when they decode to the same value (numbers compared as
// their literal text) — equal objects give equal fingerprints, different
// ones different fingerprints. Bodies that are not valid UTF-8 are left out
// here (they are compared raw): see TestHTTPInvalidUTF8BodiesAreDifferentPayloads
// in tools/internal/chaos.
func FuzzCanonicalJSON(f *testing.F) {
	for _, p := range [][2]string{
		{`{"b":1,"a":[1,2]}`, ` { "a" : [ 1 , 2 ] , "b" : 1 } `},
		{`{"a":1}`, `{"a":1.0}`},
		{`{"a":"é"}`, `{"a":"\u00e9"}`},
		{`{"a":"<&>"}`, `{"a":"\u003c\u0026\u003e"}`},
		{`[1e400, 123456789012345678901234567890]`, `[1E400,123456789012345678901234567890]`},
		{`{"a":{"c":null,"b":true}}`, `{"a":{"b":true,"c":null}}`},
		{`"x"`, `"x" "y"`},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{`-0`, `0`},
		{`{}`, `[]`},
		{``, `  `},
		{`{"a":"\ud800"}`, `{"a":"\ufffd"}`},
	} {
		f.Add([]byte(p[0]), []byte(p[1]))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if !utf8.Valid(a) || !utf8.Valid(b) {
			return
		}
		ca, okA := CanonicalJSON(a)
		cb, okB := CanonicalJSON(b)
		for _, c := range []struct {
			in, canon []byte
			ok        bool
		}{{a, ca, okA}, {b, cb, okB}} {
			// Valid documents are canonicalised, except those that decode
			// to U+FFFD (lone surrogate escapes, or U+FFFD itself), which are
			// compared raw so that no two bodies collapse into one.
			if c.ok != json.Valid(c.in) && (c.ok || !decodesToReplacement(t, c.in)) {
				t.Fatalf("CanonicalJSON(%q) ok = %v, json.Valid = %v", c.in, c.ok, !c.ok)
			}
			if !c.ok {
				continue
			}
			if !json.Valid(c.canon) {
				t.Fatalf("CanonicalJSON(%q) = %q, not valid JSON", c.in, c.canon)
			}
			if again, ok := CanonicalJSON(c.canon); !ok || !bytes.Equal(again, c.canon) {
				t.Fatalf("CanonicalJSON is not a fixed point: %q -> %q -> %q", c.in, c.canon, again)
			}
		}
		if !okA || !okB {
			return
		}
		same := reflect.DeepEqual(decodeNumbers(t, a), decodeNumbers(t, b))
		if same != bytes.Equal(ca, cb) {
			t.Fatalf("%q and %q: equal values = %v, but canonical forms %q and %q", a, b, same, ca, cb)
		}
	})
}

func decodesToReplacement(t *testing.T, b []byte) bool {
	t.Helper()
	out, err := json.Marshal(decodeNumbers(t, b))
	if err != nil {
		t.Fatalf("re-encode %q: %v", b, err)
	}
	return bytes.ContainsRune(out, utf8.RuneError)
}

func decodeNumbers(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}
