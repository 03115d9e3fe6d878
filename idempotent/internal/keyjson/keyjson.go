// Package keyjson is the lossless JSON of key material: a decoder that keeps
// every byte of a string and refuses duplicate object members, and a
// canonical encoder that escapes bytes that are not UTF-8 unambiguously.
//
// encoding/json turns invalid UTF-8 and lone surrogate escapes (\ud800) into
// U+FFFD in both directions, so two different binary values would give one
// key. Here decoding and encoding are injective: distinct JSON values give
// distinct canonical bytes. For valid UTF-8 the canonical form is byte for
// byte what json.Marshal writes for the decoded value (members sorted, HTML
// characters escaped), so record ids derived from it stay what they were.
package keyjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrDuplicateMember is the error of Decode for an object that names a member
// twice ({"amount":1,"amount":1000}). Such a document means different things
// to different parsers (encoding/json keeps the last member, others the
// first), so no key or fingerprint is read from it.
var ErrDuplicateMember = errors.New("duplicate object member")

// ErrSurrogateBytes is the error of Decode for a string whose raw bytes encode
// a UTF-16 surrogate (ED A0..BF xx). Lone surrogate escapes decode to exactly
// those bytes, so such raw bytes would be indistinguishable from them.
var ErrSurrogateBytes = errors.New("raw bytes of a UTF-16 surrogate in a string")

// Decode decodes exactly one JSON value (surrounded by optional whitespace)
// into nil, bool, string, json.Number, []any and map[string]any, as
// encoding/json with UseNumber does, except that strings keep raw bytes that
// are not UTF-8 as they are, a lone surrogate escape becomes its WTF-8 bytes
// (ED A0..BF 80..BF) and a duplicate member is ErrDuplicateMember.
func Decode(b []byte) (any, error) {
	d := decoder{b: b}
	d.space()
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.space()
	if d.i != len(d.b) {
		return nil, d.errorf("data after the first value")
	}
	return v, nil
}

// maxDepth bounds nesting as encoding/json does.
const maxDepth = 10000

type decoder struct {
	b []byte
	i int
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", d.i, fmt.Sprintf(format, args...))
}

func (d *decoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, d.errorf("nested too deeply")
	}
	if d.i >= len(d.b) {
		return nil, d.errorf("unexpected end of input")
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		return d.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	}
	for _, lit := range []struct {
		s string
		v any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if len(d.b)-d.i >= len(lit.s) && string(d.b[d.i:d.i+len(lit.s)]) == lit.s {
			d.i += len(lit.s)
			return lit.v, nil
		}
	}
	return nil, d.errorf("invalid character %q", d.b[d.i])
}

func (d *decoder) object(depth int) (any, error) {
	d.i++ // {
	m := map[string]any{}
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, nil
	}
	for {
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, d.errorf("object member name expected")
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%w %s", ErrDuplicateMember, strconv.QuoteToASCII(k))
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, d.errorf("':' expected")
		}
		d.i++
		d.space()
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[k] = v
		d.space()
		if d.i >= len(d.b) {
			return nil, d.errorf("unexpected end of input")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return m, nil
		default:
			return nil, d.errorf("',' or '}' expected")
		}
	}
}

func (d *decoder) array(depth int) (any, error) {
	d.i++ // [
	a := []any{}
	d.space()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return a, nil
	}
	for {
		d.space()
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		d.space()
		if d.i >= len(d.b) {
			return nil, d.errorf("unexpected end of input")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return a, nil
		default:
			return nil, d.errorf("',' or ']' expected")
		}
	}
}

func (d *decoder) number() (any, error) {
	start := d.i
	digits := func() int {
		n := 0
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.b[d.i] == '-' {
		d.i++
	}
	if d.i < len(d.b) && d.b[d.i] == '0' {
		d.i++
	} else if digits() == 0 {
		return nil, d.errorf("invalid number")
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return nil, d.errorf("invalid number")
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return nil, d.errorf("invalid number")
		}
	}
	return json.Number(d.b[start:d.i]), nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// str decodes a string literal at d.i.
func (d *decoder) str() (string, error) {
	d.i++ // "
	var out []byte
	start := d.i
	for {
		if d.i >= len(d.b) {
			return "", d.errorf("unterminated string")
		}
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if out == nil {
				return string(s), nil
			}
			return string(append(out, s...)), nil
		case c < 0x20:
			return "", d.errorf("control character %#x in string", c)
		case c == 0xED && d.i+1 < len(d.b) && d.b[d.i+1] >= 0xA0 && d.b[d.i+1] <= 0xBF:
			return "", fmt.Errorf("offset %d: %w", d.i, ErrSurrogateBytes)
		case c != '\\':
			d.i++
			continue
		}
		out = append(out, d.b[start:d.i]...)
		d.i++ // backslash
		if d.i >= len(d.b) {
			return "", d.errorf("unterminated string")
		}
		e := d.b[d.i]
		d.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(d.b[d.i:])
			if !ok {
				return "", d.errorf("invalid \\u escape")
			}
			d.i += 4
			if utf16.IsSurrogate(r) && r < 0xDC00 && d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
				if r2, ok := hex4(d.b[d.i+2:]); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
					d.i += 6
					r = utf16.DecodeRune(r, r2)
				}
			}
			if utf16.IsSurrogate(r) {
				// A lone surrogate: its WTF-8 bytes, which no raw
				// string can hold (ErrSurrogateBytes).
				out = append(out, 0xED, byte(0x80|(r>>6)&0x3F), byte(0x80|r&0x3F))
			} else {
				out = utf8.AppendRune(out, r)
			}
		default:
			return "", d.errorf("invalid escape \\%c", e)
		}
		start = d.i
	}
}

// ErrUnsupported is the error of Append for a value that is not decoded
// JSON.
var ErrUnsupported = errors.New("not a decoded JSON value")

// Append appends the canonical form of the decoded JSON value v (as Decode
// returns, plus float64 and int for numbers an expression computes):
// object members sorted by name, no insignificant whitespace, strings as
// json.Marshal writes them, except that a byte that is not part of valid
// UTF-8 is written \xHH (lower-case hex), which json.Marshal never writes.
func Append(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case string:
		return AppendString(dst, v), nil
	case json.Number, float64, int:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return append(dst, b...), nil
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = Append(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = Append(dst, v[k]); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnsupported, v)
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string the way json.Marshal does (HTML
// characters, U+2028 and U+2029 escaped), except that each byte that is not
// part of valid UTF-8 is written \xHH, so distinct strings stay distinct.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\b':
				dst = append(dst, '\\', 'b')
			case c == '\f':
				dst = append(dst, '\\', 'f')
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xF])
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
