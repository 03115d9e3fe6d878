package idempotent

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// eventKeyFunc builds the function that turns an event into key material
// and payload fingerprint material for Wrap, checking the options against In.
func eventKeyFunc[In any](c *wrapConfig) (func(In) (key, fp string, err error), error) {
	if c.err != nil {
		return nil, c.err
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
		var key string
		if userKey != nil {
			k, err := userKey(event)
			if err != nil {
				return "", "", fmt.Errorf("%w: key function: %w", ErrNoKey, err)
			}
			key = k
			if c.payloadPath == nil {
				return key, "", nil
			}
		}
		// The whole-event key, key paths and payload paths read the
		// event's JSON form, decoded once. A []byte event that holds a
		// JSON document is that document, as a json.RawMessage is, not
		// the base64 string json.Marshal would make of it.
		bytesEvent, isBytes := any(event).([]byte)
		bytesJSON := isBytes && json.Valid(bytesEvent)
		raw := bytesEvent
		if !bytesJSON {
			kj, err := encodeKeyJSON(event)
			if err != nil {
				return "", "", fmt.Errorf("%w: event does not encode as JSON: %w", ErrNoKey, err)
			}
			defer kj.free()
			raw = kj.bytes()
		}
		doc, err := decodeJSON(raw)
		if err != nil {
			return "", "", fmt.Errorf("%w: event: %w", ErrNoKey, err)
		}
		switch {
		case userKey != nil:
		case c.keyPath != nil:
			if key, err = c.keyPath.key(doc); err != nil {
				return "", "", fmt.Errorf("%w: key path %q: %w", ErrNoKey, c.keyPath, err)
			}
		case isBytes && !bytesJSON:
			// Bytes that are not JSON have their own namespace, so they
			// never share a record with a JSON event (canonical JSON
			// never starts with "bytes:").
			if len(bytesEvent) > 0 {
				key = "bytes:" + string(raw)
			}
		default:
			// The whole event, canonical: a json.RawMessage or []byte
			// event whose members come in another order or with other
			// whitespace is the same key.
			if key, err = keyMaterial(doc); err != nil {
				return "", "", fmt.Errorf("%w: event: %w", ErrNoKey, err)
			}
		}
		fp := ""
		if c.payloadPath != nil {
			v, err := c.payloadPath.search(doc)
			if err != nil {
				return "", "", fmt.Errorf("%w: payload path %q: %w", ErrNoKey, c.payloadPath, err)
			}
			if fp, err = canonicalString(v); err != nil {
				return "", "", fmt.Errorf("%w: payload path %q: %w", ErrNoKey, c.payloadPath, err)
			}
		}
		return key, fp, nil
	}, nil
}
