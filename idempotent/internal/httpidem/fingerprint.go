package httpidem

import (
	"github.com/idemlambda/idemlambda/idempotent"

	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// CanonicalJSON returns the canonical form of a JSON document: object keys
// sorted, insignificant whitespace removed, numbers kept as their literal
// text (so 1.0 and 1 differ, and big integers keep every digit). ok is false
// when b is not exactly one JSON value (optionally surrounded by whitespace).
func CanonicalJSON(b []byte) (canon []byte, ok bool) {
	// encoding/json turns invalid UTF-8 and lone surrogate escapes into
	// U+FFFD, which would give different bodies one fingerprint: such
	// bodies (rare, and not valid JSON text per RFC 8259 §8.1) are compared
	// byte for byte instead.
	if !utf8.Valid(b) {
		return nil, false
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, false // trailing data
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, false
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
	if bytes.ContainsRune(out, utf8.RuneError) {
		return nil, false
	}
	return out, true
}

// CanonicalQuery returns a raw query string in canonical form: parameters
// sorted by name, the order of one name's values kept, escaping normalised.
// A query that does not parse is returned as it is.
func CanonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return raw
	}
	return v.Encode()
}

// CanonicalQueryMaps is CanonicalQuery for events that carry the query as
// maps of decoded parameters (API Gateway REST). Multi-value maps are
// preferred when present. With escaped set (ALB, which passes parameters as
// received), names and values are unescaped first.
func CanonicalQueryMaps(single map[string]string, multi map[string][]string, escaped bool) string {
	v := url.Values{}
	unesc := func(s string) string {
		if !escaped {
			return s
		}
		if u, err := url.QueryUnescape(s); err == nil {
			return u
		}
		return s
	}
	if len(multi) > 0 {
		for k, vs := range multi {
			for _, x := range vs {
				v.Add(unesc(k), unesc(x))
			}
		}
	} else {
		for k, x := range single {
			v.Add(unesc(k), unesc(x))
		}
	}
	return v.Encode()
}

// fingerprint hashes the payload: canonical query, the body (canonical JSON,
// else raw bytes) and the configured extra headers. Method and path are
// hashed too, although they are part of the scope (scopeKey), so they never
// differ within one record: they stay so that records written by earlier
// versions keep matching. Each field is length-prefixed so no two payloads
// share the material.
func fingerprint(method, path, query string, body []byte, names []string, header func(string) []string) string {
	h := sha256.New()
	field(h, "m", []byte(method))
	field(h, "p", []byte(path))
	field(h, "q", []byte(query))
	if c, ok := CanonicalJSON(body); ok {
		field(h, "j", c)
	} else {
		field(h, "b", body)
	}
	for _, n := range names {
		vs := slices.Clone(header(n))
		for i := range vs {
			vs[i] = strings.Trim(vs[i], " \t")
		}
		field(h, "h", []byte(n))
		field(h, "v", []byte(strings.Join(vs, "\x00")))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func field(h hash.Hash, tag string, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write([]byte(tag))
	h.Write(n[:])
	h.Write(b)
}

// scopeKey is the key material: principal, method, path and key, length
// prefixed, so two callers, methods or paths never share a record.
func scopeKey(principal, method, path, key string) string {
	var b strings.Builder
	for _, s := range [...]string{principal, method, path, key} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		b.Write(n[:])
		b.WriteString(s)
	}
	return b.String()
}

// Step is the Do step of every HTTP record.
const Step = "http"

// RecordID is the record id of an HTTP request with Idempotency-Key key from
// principal (Anonymous when none) to method and path, in namespace name.
func RecordID(name, principal, method, path, key string) string {
	if principal == "" {
		principal = Anonymous
	}
	return idempotent.StepRecordID(name, Step, scopeKey(principal, method, path, key))
}
