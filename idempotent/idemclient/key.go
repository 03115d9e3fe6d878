package idemclient

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// Headers of the idempotency protocol (contract §4).
const (
	// HeaderKey is the request header that carries the idempotency key.
	HeaderKey = "Idempotency-Key"
	// HeaderReplayed is "true" on a response that replays a stored one.
	HeaderReplayed = "Idempotent-Replayed"
)

// KeyOf returns the idempotency key a response's request carried (the
// transport's generated key, or the caller's, unquoted), or "" when it
// carried none or an invalid one.
func KeyOf(resp *http.Response) string {
	if resp == nil || resp.Request == nil {
		return ""
	}
	k, err := httpidem.ParseKey(resp.Request.Header.Values(HeaderKey))
	if err != nil {
		return ""
	}
	return k
}

// key returns the key of req and the header values to set (nil when the
// caller's header is kept): the caller's header if req has one, else the
// previous hop's of a redirect (prev), else a new key.
func (t *transport) key(req *http.Request, prev *logical) (key string, header []string, err error) {
	if vs := req.Header.Values(HeaderKey); len(vs) > 0 {
		k, err := httpidem.ParseKey(vs)
		if err != nil {
			var ke *httpidem.KeyError
			if errors.As(err, &ke) {
				return "", nil, &InvalidKeyError{Reason: ke.Reason}
			}
			return "", nil, &InvalidKeyError{Reason: err.Error()}
		}
		return k, nil, nil
	}
	if prev != nil {
		return prev.key, prev.header, nil
	}
	k := newKey()
	if t.o.form == KeyQuoted {
		return k, []string{`"` + k + `"`}, nil
	}
	return k, []string{k}, nil
}

// newKey returns a random (version 4) UUID in its canonical form.
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// redact returns the first 4 characters of a key and an ellipsis.
func redact(key string) string {
	if len(key) <= 4 {
		return "…"
	}
	return key[:4] + "…"
}
