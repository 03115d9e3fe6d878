package httpidem

import (
	"errors"
	"fmt"
	"strings"
)

// Header names.
const (
	// HeaderKey is the request header that carries the idempotency key.
	HeaderKey = "Idempotency-Key"
	// HeaderReplayed is set to "true" on every replayed response.
	HeaderReplayed = "Idempotent-Replayed"
	// ContentTypeProblem is the media type of the library's error responses.
	ContentTypeProblem = "application/problem+json"
	// MaxKeyLen is the longest accepted key, in characters (after unquoting).
	MaxKeyLen = 255
)

// KeyError reports an Idempotency-Key header value that is not a valid key.
type KeyError struct {
	// Reason says what is wrong, for the problem detail.
	Reason string
}

func (e *KeyError) Error() string { return "invalid Idempotency-Key header: " + e.Reason }

// ParseKey validates the values of the Idempotency-Key header (all values
// found, from single- and multi-value header maps) and returns the key.
//
// A value is trimmed of surrounding spaces and tabs (RFC 9110 field-value
// whitespace), then it is either a token of 1–255 visible ASCII characters
// (0x21–0x7E), or an RFC 8941 sf-string in double quotes whose content
// (escapes \" and \\ only, characters 0x20–0x7E) is 1–255 characters and not
// blank; the key is the unquoted content. Several values are accepted only
// when they are equal.
func ParseKey(values []string) (string, error) {
	if len(values) == 0 {
		return "", &KeyError{Reason: "missing"}
	}
	key, err := parseOne(values[0])
	if err != nil {
		return "", err
	}
	for _, v := range values[1:] {
		k, err := parseOne(v)
		if err != nil {
			return "", err
		}
		if k != key {
			return "", &KeyError{Reason: "the header is present more than once with different values"}
		}
	}
	return key, nil
}

func parseOne(v string) (string, error) {
	v = strings.Trim(v, " \t")
	if v == "" {
		return "", &KeyError{Reason: "empty value"}
	}
	if v[0] == '"' {
		return unquote(v)
	}
	if len(v) > MaxKeyLen {
		return "", &KeyError{Reason: fmt.Sprintf("%d characters, at most %d allowed", len(v), MaxKeyLen)}
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x21 || c > 0x7e {
			return "", &KeyError{Reason: fmt.Sprintf("character %s at position %d; only visible ASCII (0x21-0x7E) is allowed", describe(v, i), i+1)}
		}
	}
	return v, nil
}

// unquote parses an RFC 8941 §3.3.3 sf-string.
func unquote(v string) (string, error) {
	if len(v) < 2 || v[len(v)-1] != '"' {
		return "", &KeyError{Reason: "quoted value without closing double quote"}
	}
	in := v[1 : len(v)-1]
	var b strings.Builder
	b.Grow(len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case c == '\\':
			if i+1 >= len(in) || (in[i+1] != '"' && in[i+1] != '\\') {
				return "", &KeyError{Reason: fmt.Sprintf("invalid escape at position %d of the quoted value; only \\\" and \\\\ are allowed", i+2)}
			}
			i++
			b.WriteByte(in[i])
		case c == '"':
			return "", &KeyError{Reason: fmt.Sprintf("unescaped double quote at position %d of the quoted value", i+2)}
		case c < 0x20 || c > 0x7e:
			return "", &KeyError{Reason: fmt.Sprintf("character %s at position %d of the quoted value; only printable ASCII is allowed", describe(in, i), i+2)}
		default:
			b.WriteByte(c)
		}
	}
	k := b.String()
	switch {
	case strings.Trim(k, " ") == "":
		return "", &KeyError{Reason: "blank quoted value"}
	case len(k) > MaxKeyLen:
		return "", &KeyError{Reason: fmt.Sprintf("%d characters, at most %d allowed", len(k), MaxKeyLen)}
	}
	return k, nil
}

func describe(s string, i int) string {
	if s[i] < 0x80 {
		return fmt.Sprintf("%q", s[i])
	}
	return fmt.Sprintf("byte 0x%02X (non-ASCII)", s[i])
}

// HeaderValues returns every value of the header name (case-insensitive) in
// an event's header maps. Multi-value maps hold the complete list when an
// event has both (API Gateway REST, ALB), so they are preferred.
func HeaderValues(single map[string]string, multi map[string][]string, name string) []string {
	var out []string
	for k, vs := range multi {
		if strings.EqualFold(k, name) {
			out = append(out, vs...)
		}
	}
	if out != nil {
		return out
	}
	for k, v := range single {
		if strings.EqualFold(k, name) {
			out = append(out, v)
		}
	}
	return out
}

var errNotStored = errors.New("httpidem: response not stored")
