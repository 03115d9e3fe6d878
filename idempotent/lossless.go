package idempotent

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"unicode/utf8"
)

// errInvalidUTF8 is why a Go value's JSON form cannot be key material: it
// holds a string that is not valid UTF-8, which json.Marshal writes as
// U+FFFD, so values differing only in those bytes would share a record.
var errInvalidUTF8 = errors.New("holds a string that is not valid UTF-8, which its JSON form cannot keep (key it with WithKeyFunc)")

// keyJSON is the JSON form of a Go value read for key material, in a
// buffer that goes back to keyJSONPool (free) once the document is decoded:
// events are marshalled on every call, and the decoded document copies what
// it keeps.
type keyJSON struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var keyJSONPool = sync.Pool{New: func() any {
	k := &keyJSON{}
	k.enc = json.NewEncoder(&k.buf) // escapes HTML as json.Marshal does
	return k
}}

// maxPooledKeyJSON bounds the buffers kept for reuse: an odd huge event
// does not pin its memory.
const maxPooledKeyJSON = 64 << 10

// encodeKeyJSON is json.Marshal for key material: it fails rather than lose
// bytes. json.Marshal writes the escape \ufffd only for a byte that is not
// UTF-8 (a valid U+FFFD is written as it is), so only output holding that
// escape needs the walk over v. The bytes (k.bytes) are what json.Marshal
// returns; they are valid until k.free.
func encodeKeyJSON(v any) (*keyJSON, error) {
	k := keyJSONPool.Get().(*keyJSON)
	k.buf.Reset()
	if err := k.enc.Encode(v); err != nil { // json.Marshal's bytes and a newline
		k.free()
		return nil, err
	}
	if bytes.Contains(k.bytes(), []byte(`\ufffd`)) && invalidString(reflect.ValueOf(v), 0) {
		k.free()
		return nil, errInvalidUTF8
	}
	return k, nil
}

// bytes is the JSON, without the newline Encode adds.
func (k *keyJSON) bytes() []byte {
	b := k.buf.Bytes()
	return b[:len(b)-1]
}

// free gives the buffer back; the bytes must not be used after it.
func (k *keyJSON) free() {
	if k.buf.Cap() <= maxPooledKeyJSON {
		keyJSONPool.Put(k)
	}
}

// invalidString reports whether v holds, anywhere json.Marshal looks, a
// string or map key that is not valid UTF-8.
func invalidString(v reflect.Value, depth int) bool {
	if depth > 1000 || !v.IsValid() {
		return false
	}
	switch v.Kind() {
	case reflect.String:
		return !utf8.ValidString(v.String())
	case reflect.Pointer, reflect.Interface:
		return !v.IsNil() && invalidString(v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return false // []byte is base64, lossless
		}
		for i := range v.Len() {
			if invalidString(v.Index(i), depth+1) {
				return true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if invalidString(it.Key(), depth+1) || invalidString(it.Value(), depth+1) {
				return true
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && invalidString(v.Field(i), depth+1) {
				return true
			}
		}
	}
	return false
}
