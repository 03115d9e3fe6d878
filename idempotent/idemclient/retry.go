package idemclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryable says whether an attempt's outcome calls for another attempt.
func (t *transport) retryable(ctx context.Context, resp *http.Response, err error, replayed bool) bool {
	if err != nil {
		if ctx.Err() != nil {
			return false // the caller's context ended the attempt
		}
		return !permanent(err)
	}
	if replayed {
		return false // the stored answer of the first request: final
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

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// wait returns the wait before attempt+1: the response's Retry-After,
// capped, or the jittered backoff.
func (t *transport) wait(resp *http.Response, attempt int) time.Duration {
	if resp != nil {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), t.o.now()); ok {
			return min(d, t.o.maxRetryAfter)
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
	return time.Duration(t.o.jitter() * float64(ceil))
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
