package idempotent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

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
		var doc any
		var raw []byte
		if userKey == nil || c.payloadPath != nil {
			var err error
			raw, err = json.Marshal(event)
			if err != nil {
				return "", "", fmt.Errorf("%w: event does not encode as JSON: %w", ErrNoKey, err)
			}
			if c.keyPath != nil || c.payloadPath != nil {
				if doc, err = decodeJSON(raw); err != nil {
					return "", "", fmt.Errorf("%w: %w", ErrNoKey, err)
				}
			}
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
			k, err := search(c.keyPath, doc)
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
			v, err := c.payloadPath.Search(doc)
			if err != nil {
				return "", "", fmt.Errorf("idempotent: payload path: %w", err)
			}
			b, err := json.Marshal(v)
			if err != nil {
				return "", "", fmt.Errorf("idempotent: payload path: %w", err)
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
