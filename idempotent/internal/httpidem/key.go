package httpidem

import (
	"errors"
	"fmt"
	"iter"
	"strings"
)

// Header names.
const (
	// HeaderKey is the request header that carries the idempotency key.
	HeaderKey = "Idempotency-Key"
	// HeaderAttempt, when a request carries it with a number of 2 or more,
	// says the request is a retry of one sent before with the same key (the
	// attempt number of the logical request; idemclient sends it on every
	// retry). The engine then reads the record first (idempotent.ReadFirstContext):
	// a retry is likely a duplicate, and a read is the cheaper replay. It is
	// a hint about cost only: any value, or none, leaves the outcome the same.
	HeaderAttempt = "Idempotency-Attempt"
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
// A header value is a comma-separated list (RFC 9110 §5.3, §5.6.1): a front
// that joins repeated headers (HTTP API v2, Function URLs) delivers a,b for
// the two headers a and b, so every value is split at commas outside a
// quoted string first, and each member is one value. A value is trimmed of
// surrounding spaces and tabs, then it is either a token of 1–255 visible
// ASCII characters (0x21–0x7E) other than a comma, or an RFC 8941 sf-string
// in double quotes whose content (escapes \" and \\ only, characters
// 0x20–0x7E, commas included) is 1–255 characters and not blank; the key is
// the unquoted content. Several values are accepted only when they are
// equal (a repeated header changes nothing); two different ones, or an
// empty member (a,), are a *KeyError.
func ParseKey(values []string) (string, error) {
	if len(values) == 0 {
		return "", &KeyError{Reason: "missing"}
	}
	key, n := "", 0
	for _, v := range values {
		for m := range members(v) {
			k, err := parseOne(m)
			if err != nil {
				return "", err
			}
			if n > 0 && k != key {
				return "", &KeyError{Reason: "two different values (the header is repeated, or its value has a comma outside double quotes); a key with a comma must be sent as a quoted string"}
			}
			key, n = k, n+1
		}
	}
	return key, nil
}

// members yields the members of a comma-separated header value. A member
// that starts with a double quote (after spaces and tabs) is a quoted
// string: commas up to its closing quote (escapes \" and \\ honoured)
// belong to it. A quote elsewhere is an ordinary character, left to
// parseOne.
func members(v string) iter.Seq[string] {
	return func(yield func(string) bool) {
		start := 0
		for start <= len(v) {
			i := start
			for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
				i++
			}
			if i < len(v) && v[i] == '"' {
				for i++; i < len(v) && v[i] != '"'; i++ {
					if v[i] == '\\' {
						i++
					}
				}
			}
			end := strings.IndexByte(v[min(i, len(v)):], ',')
			if end < 0 {
				yield(v[start:])
				return
			}
			end += min(i, len(v))
			if !yield(v[start:end]) {
				return
			}
			start = end + 1
		}
	}
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
