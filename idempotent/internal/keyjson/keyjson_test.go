package keyjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// stdCanon is the key material encoding/json gave before this package: the
// UseNumber decode, then json.Marshal.
func stdCanon(b []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("trailing")
	}
	return json.Marshal(v)
}

// lossy reports whether encoding/json could change b's strings: invalid
// UTF-8 or any \u escape of a surrogate.
func lossy(b []byte) bool {
	low := strings.ToLower(string(b))
	for _, p := range []string{`\ud8`, `\ud9`, `\uda`, `\udb`, `\udc`, `\udd`, `\ude`, `\udf`} {
		if strings.Contains(low, p) {
			return true
		}
	}
	return !utf8.Valid(b)
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		`{"b":[1,{"d":null,"c":"x"}],"a":1}`, `"\u00e9<>&\u2028\u2029\b\f\u0001"`, `12345678901234567890.5e-3`,
		`"\ud83d\ude00"`, `  [ ]  `, `{}`, `"\/"`, `-0`, `true`, `false`, `null`, `"\uFFFD"`, "\"\ufffd\"",
	} {
		want, err := stdCanon([]byte(s))
		if err != nil {
			t.Fatal(s, err)
		}
		v, err := Decode([]byte(s))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		got, err := Append(nil, v)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: got %s, %v; encoding/json gives %s", s, got, err, want)
		}
	}
}

func TestDistinct(t *testing.T) {
	// Each of these pairs is one value to encoding/json (U+FFFD).
	docs := []string{`"\ud800"`, `"\udc00"`, `"\ud800\ud800"`, "\"\xff\"", "\"\xfe\"", `"\ufffd"`, `"\\xff"`, "\"\xed\"", `"\ud800x"`}
	seen := map[string]string{}
	for _, s := range docs {
		v, err := Decode([]byte(s))
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		k, err := Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		if o, dup := seen[string(k)]; dup {
			t.Errorf("%q and %q share key material %q", s, o, k)
		}
		seen[string(k)] = s
	}
}

func TestRefused(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want error
	}{
		{`{"amount":1,"amount":1000}`, ErrDuplicateMember},
		{`{"a":{"x":1,"x":1}}`, ErrDuplicateMember},
		{`{"\u0061":1,"a":2}`, ErrDuplicateMember},
		{"\"\xed\xa0\x80\"", ErrSurrogateBytes},
	} {
		if _, err := Decode([]byte(c.doc)); !errors.Is(err, c.want) {
			t.Errorf("%q: %v, want %v", c.doc, err, c.want)
		}
	}
	for _, s := range []string{``, `{`, `[1,]`, `01`, `1.`, `"\x"`, `"a`, "\"\x01\"", `{"a" 1}`, `tru`, `1 2`, `"\u12"`} {
		if _, err := Decode([]byte(s)); err == nil {
			t.Errorf("%q decodes", s)
		}
	}
}

// FuzzDecode: the decoder accepts what encoding/json accepts and, where
// encoding/json is lossless, gives the same canonical bytes (so record ids
// do not change); two documents with equal canonical bytes decode to equal
// values, byte for byte.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"a":1,"a":2}`, `[1,"x",{"b":null}]`, `"\ud83d\ude00"`} {
		f.Add([]byte(s), []byte(`"\ufffd"`))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		va, errA := Decode(a)
		want, errStd := stdCanon(a)
		if errA == nil && errStd != nil {
			t.Fatalf("%q decodes here, not in encoding/json: %v", a, errStd)
		}
		if errA != nil {
			if errStd == nil && !errors.Is(errA, ErrDuplicateMember) && !errors.Is(errA, ErrSurrogateBytes) {
				t.Fatalf("%q: refused (%v), encoding/json takes it", a, errA)
			}
			return
		}
		ka, err := Append(nil, va)
		if err != nil {
			t.Fatal(err)
		}
		if !lossy(a) && !bytes.Equal(ka, want) {
			t.Fatalf("%q: %s, encoding/json %s", a, ka, want)
		}
		vb, err := Decode(b)
		if err != nil {
			return
		}
		kb, _ := Append(nil, vb)
		if bytes.Equal(ka, kb) != equal(va, vb) {
			t.Fatalf("%q and %q: key material %s and %s, values equal %v", a, b, ka, kb, equal(va, vb))
		}
	})
}

// equal compares decoded values, strings byte for byte.
func equal(a, b any) bool {
	switch a := a.(type) {
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !equal(a[i], b[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			w, ok := b[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	}
	return a == b
}
