package idemclient

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// Headers of the idempotency protocol (contract §4).
const (
	// HeaderKey is the request header that carries the idempotency key.
	HeaderKey = "Idempotency-Key"
	// HeaderAttempt is set on every resend of a request to the same URL: the
	// number of the attempt there (2, 3, ...). Our server reads the record
	// first for such a request, so that the replay a retry most likely gets
	// costs a read instead of a failed conditional write; a caller's own
	// value is kept. It changes no outcome.
	HeaderAttempt = "Idempotency-Attempt"
	// HeaderReplayed is "true" on a response that replays a stored one.
	HeaderReplayed = "Idempotent-Replayed"
)

// KeyOf returns the idempotency key of the logical request a response
// answers: the key its request carried (the transport's generated key, or
// the caller's) — or, for the GET that a 301, 302 or 303 made of a guarded
// request, which carries no key, the key of that request. It is the key to
// send the request again with, a value for the Idempotency-Key header (in
// the form AttemptError.Key describes): after a 303 whose GET failed,
// the payment may have been made, and a resend under this key replays it
// instead of paying again. "" when the request carried no key or an invalid
// one.
func KeyOf(resp *http.Response) string {
	if resp == nil || resp.Request == nil {
		return ""
	}
	if lk := linkOf(resp.Request); lk != nil {
		return lk.l.key
	}
	k, err := httpidem.ParseKey(keyValues(resp.Request.Header))
	if err != nil {
		return ""
	}
	return resendable(k)
}

// resendable returns key (unquoted, as the server reads it) as a header
// value that the server reads as key: the key itself when it is a valid
// bare token that means itself (every generated key, and most keys), else
// the RFC 8941 sf-string of it (a key with a space or a comma, one that
// starts with a double quote, or one with surrounding spaces, which the
// caller can only have sent quoted). The keys the transport reports
// (AttemptError, BudgetError, AttemptInfo, KeyOf) are in this form, so that
// a caller can put them back in the header to send the same logical
// request again.
func resendable(key string) string {
	if k, err := httpidem.ParseKey([]string{key}); err == nil && k == key {
		return key
	}
	var b strings.Builder
	b.Grow(len(key) + 2)
	b.WriteByte('"')
	for i := 0; i < len(key); i++ {
		if c := key[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(key[i])
	}
	b.WriteByte('"')
	return b.String()
}

// key returns the key of req, in its resendable form, and the header
// values to set (nil when the caller's header is kept): the caller's header
// if req has one, else the previous hop's of a redirect (prev), else a new
// key.
func (t *transport) key(req *http.Request, prev *logical) (key string, header []string, err error) {
	if vs := keyValues(req.Header); len(vs) > 0 {
		k, err := httpidem.ParseKey(vs)
		if err != nil {
			var ke *httpidem.KeyError
			if errors.As(err, &ke) {
				return "", nil, &InvalidKeyError{Reason: ke.Reason}
			}
			return "", nil, &InvalidKeyError{Reason: err.Error()}
		}
		return resendable(k), nil, nil
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

// keyValues returns every value of the Idempotency-Key header in h, under
// any spelling of its name: a name set directly in the map
// (h["idempotency-key"]) is sent as written, and the server reads every
// spelling as the one header, so a caller's key under another spelling is
// the caller's key.
func keyValues(h http.Header) []string {
	var out []string
	for name, vs := range h {
		if strings.EqualFold(name, HeaderKey) {
			out = append(out, vs...)
		}
	}
	return out
}

// hasHeader reports whether h holds name under any spelling of it (a
// caller may set a map key that is not canonical).
func hasHeader(h http.Header, name string) bool {
	for n := range h {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// delKey removes the Idempotency-Key header from h under every spelling.
func delKey(h http.Header) {
	for name := range h {
		if strings.EqualFold(name, HeaderKey) {
			delete(h, name)
		}
	}
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
