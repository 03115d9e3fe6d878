package idemclient

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// retryable says whether an attempt's outcome calls for another attempt.
// problem is the problem type of a 500 response (problemType).
func (t *transport) retryable(ctx context.Context, resp *http.Response, err error, replayed bool, problem string) bool {
	if err != nil {
		if ctx.Err() != nil {
			return false // the caller's context ended the attempt
		}
		return !permanent(err)
	}
	if replayed {
		return false // the stored answer of the first request: final
	}
	if permanentProblem(problem) {
		return false // the server says another attempt cannot succeed
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// permanent reports transport errors that another attempt cannot cure: a
// certificate the client rejects. Every other transport error (refused,
// reset, EOF, timeout, DNS) is retried: with the key attached that is safe
// whether or not the request reached the server.
func permanent(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// problemLimit bounds what is read of a 500 response's body to learn its
// problem type: our server's problems are a few hundred bytes.
const problemLimit = 4 << 10

// problemType returns the type of a 500 response that is an RFC 9457
// problem (application/problem+json) whose body's first problemLimit bytes
// are a JSON object with a type and, if any, the response's status; else
// "". The bytes read stay in the body (peek): the caller gets all of it.
func problemType(resp *http.Response) string {
	if resp.StatusCode != http.StatusInternalServerError {
		return ""
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != httpidem.ContentTypeProblem {
		return ""
	}
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
	}
	b := peek(resp, problemLimit)
	switch ce := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))); ce {
	case "", "identity":
	case "gzip", "x-gzip":
		// Still compressed: the caller asked for gzip itself, so net/http
		// left the body as it came (a compressing proxy or gateway in front
		// of our server). A problem is a few hundred bytes, whole in b.
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return ""
		}
		if b, err = io.ReadAll(io.LimitReader(zr, problemLimit)); err != nil {
			return ""
		}
	default:
		return ""
	}
	if json.Unmarshal(b, &p) != nil || p.Status != 0 && p.Status != resp.StatusCode {
		return ""
	}
	return p.Type
}

// permanentProblem reports the problem types with which our server (the
// idemhttp middleware and the apigw adapters) marks a 500 that another
// attempt with the same key cannot cure (docs/http.md, Problem types): the
// endpoint is misconfigured, the caller carries credentials the endpoint
// cannot scope, or the record of this key does not decode. Every other 500
// (internal-error, a handler's own) is retried as before.
func permanentProblem(typ string) bool {
	switch typ {
	case httpidem.TypeConfig, httpidem.TypeUnidentifiedCaller, httpidem.TypeCorruptRecord:
		return true
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// wait returns the wait before attempt+1: the response's Retry-After, or
// the jittered backoff. over is true when the Retry-After is over the cap
// (WithMaxRetryAfter): the server says a retry sooner cannot succeed (ours
// says so after an outcome-unknown 503, whose key stays held until its
// lease ends), so none is made.
func (t *transport) wait(resp *http.Response, attempt int) (d time.Duration, over bool) {
	if resp != nil {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), t.o.now()); ok {
			return d, d > t.o.maxRetryAfter
		}
	}
	ceil := t.o.base
	for i := 1; i < attempt && ceil < t.o.max; i++ {
		if ceil > t.o.max/2 {
			ceil = t.o.max
		} else {
			ceil *= 2
		}
	}
	return time.Duration(t.o.jitter() * float64(ceil)), false
}

// parseRetryAfter reads a Retry-After value: delta-seconds or an HTTP date
// (RFC 9110 §10.2.3). A date in the past is no wait.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
				return math.MaxInt64, true
			}
			return 0, false
		}
		if n > uint64(math.MaxInt64/int64(time.Second)) {
			return math.MaxInt64, true
		}
		return time.Duration(n) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}

// pastDeadline says whether a wait started now would end at or after the
// context's deadline.
func pastDeadline(ctx context.Context, now time.Time, wait time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && !now.Add(wait).Before(dl)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
