package idempotent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/jmespath/go-jmespath"
)

// eventKeyFunc builds the function that turns an event into key material
// and payload fingerprint material for Wrap, checking the options against In.
func eventKeyFunc[In any](c *config) (func(In) (key, fp string, err error), error) {
	if c.err != nil {
		return nil, c.err
	}
	if c.fingerprint != nil {
		return nil, &ConfigError{Option: "WithFingerprint", Err: errors.New("applies to Do; Wrap uses WithPayloadPath")}
	}
	var userKey func(In) (string, error)
	if c.keyFunc != nil {
		f, ok := c.keyFunc.(func(In) (string, error))
		if !ok {
			return nil, &ConfigError{Option: "WithKeyFunc", Err: fmt.Errorf("key function is %T, the handler's event type needs func(%s) (string, error)", c.keyFunc, reflect.TypeFor[In]())}
		}
		if c.keyPath != nil {
			return nil, &ConfigError{Option: "WithKeyFunc", Err: errors.New("WithKeyPath and WithKeyFunc are exclusive")}
		}
		userKey = f
	}
	return func(event In) (string, string, error) {
		// The JSON form is needed for the default key and for JMESPath.
		var raw []byte
		if userKey == nil || c.payloadPath != nil {
			var err error
			raw, err = json.Marshal(event)
			if err != nil {
				return "", "", fmt.Errorf("%w: event does not encode as JSON: %w", ErrNoKey, err)
			}
		}
		// doc, the decoded event, is made at most once and only when a
		// JMESPath search needs it.
		var doc any
		decoded := false
		document := func() (any, error) {
			if !decoded {
				d, err := decodeJSON(raw)
				if err != nil {
					return nil, fmt.Errorf("%w: %w", ErrNoKey, err)
				}
				doc, decoded = d, true
			}
			return doc, nil
		}
		var key string
		switch {
		case userKey != nil:
			k, err := userKey(event)
			if err != nil {
				return "", "", fmt.Errorf("%w: key function: %w", ErrNoKey, err)
			}
			key = k
		case c.keyPath != nil:
			if k, ok := lookupScalar(raw, c.keyFields); ok {
				key = k
				break
			}
			d, err := document()
			if err != nil {
				return "", "", err
			}
			k, err := search(c.keyPath, d)
			if err != nil {
				return "", "", fmt.Errorf("%w: key path: %w", ErrNoKey, err)
			}
			key = k
		default:
			if !empty(raw) {
				key = string(raw)
			}
		}
		fp := ""
		if c.payloadPath != nil {
			d, err := document()
			if err != nil {
				return "", "", err
			}
			v, err := c.payloadPath.Search(d)
			if err != nil {
				return "", "", fmt.Errorf("%w: payload path: %w", ErrNoKey, err)
			}
			b, err := json.Marshal(v)
			if err != nil {
				return "", "", fmt.Errorf("%w: payload path: %w", ErrNoKey, err)
			}
			fp = string(b)
		}
		return key, fp, nil
	}, nil
}

// search evaluates a key path; a result of null, "", [] or {} is no key. The
// key material is the result's canonical JSON (object keys sorted), so the
// string "1" and the number 1 are different keys.
func search(p *jmespath.JMESPath, doc any) (string, error) {
	v, err := p.Search(doc)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	if empty(b) {
		return "", nil
	}
	return string(b), nil
}

func decodeJSON(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		return nil, fmt.Errorf("event is not JSON: %w", err)
	}
	return doc, nil
}

func empty(b []byte) bool {
	switch string(b) {
	case "", "null", `""`, "[]", "{}":
		return true
	}
	return false
}

// simpleFields returns the field names of a key path that is a plain chain
// of JMESPath identifiers ("id", "detail.orderId"), or nil.
func simpleFields(expr string) []string {
	fields := strings.Split(expr, ".")
	for _, f := range fields {
		if f == "" {
			return nil
		}
		for i, r := range f {
			if r != '_' && !(r >= 'a' && r <= 'z') && !(r >= 'A' && r <= 'Z') && !(i > 0 && r >= '0' && r <= '9') {
				return nil
			}
		}
	}
	return fields
}

// lookupScalar is the fast path of a plain field path: it finds the value at
// fields in the compact JSON raw (as json.Marshal writes it) without
// decoding the document, and returns the key material search would return
// for it. ok is false when the fast path cannot tell (the value is an object
// or an array, a string has escapes, anything unexpected): the caller then
// takes the general path, so the key is the same either way.
func lookupScalar(raw []byte, fields []string) (key string, ok bool) {
	if len(fields) == 0 {
		return "", false
	}
	v := raw
	for _, f := range fields {
		if len(v) == 0 || v[0] != '{' {
			if len(v) > 0 && v[0] != '[' {
				return "", true // a field of a scalar: JMESPath yields null
			}
			return "", false
		}
		var found bool
		v, found, ok = member(v, f)
		if !ok {
			return "", false
		}
		if !found {
			return "", true // no such field: null, no key
		}
	}
	switch {
	case len(v) == 0, v[0] == '{', v[0] == '[':
		return "", false
	case v[0] == '"' && bytes.IndexByte(v, '\\') >= 0:
		return "", false
	case empty(v):
		return "", true
	}
	return string(v), true
}

// member returns the raw value of the member name of the JSON object obj.
// ok is false on anything the fast path does not handle.
func member(obj []byte, name string) (val []byte, found, ok bool) {
	i := 1
	for i < len(obj) {
		if obj[i] == '}' {
			return nil, false, true
		}
		if obj[i] != '"' {
			return nil, false, false
		}
		kEnd := endOfValue(obj, i)
		if kEnd < 0 || kEnd >= len(obj) || obj[kEnd] != ':' {
			return nil, false, false
		}
		k := obj[i+1 : kEnd-1]
		if bytes.IndexByte(k, '\\') >= 0 {
			return nil, false, false
		}
		vEnd := endOfValue(obj, kEnd+1)
		if vEnd < 0 || vEnd >= len(obj) {
			return nil, false, false
		}
		if string(k) == name {
			return obj[kEnd+1 : vEnd], true, true
		}
		switch obj[vEnd] {
		case ',':
			i = vEnd + 1
		case '}':
			i = vEnd
		default:
			return nil, false, false
		}
	}
	return nil, false, false
}

// endOfValue returns the index just past the compact JSON value starting at
// b[i], or -1.
func endOfValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return -1
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := endOfValue(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}
