package idemkms_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/idemlambda/idemlambda/idempotent"
)

// kmsFault is a KMS endpoint on loopback that answers every call with one
// error, as KMS sends it (awsJson1_1: status, X-Amzn-Errortype, __type). It
// stands in for what local-kms cannot produce: throttling, internal errors,
// and the key states it reports as AccessDeniedException. The SDK's real
// client parses and retries the answers.
type kmsFault struct {
	status int
	code   string
	calls  atomic.Int64 // requests, retries included
}

func (f *kmsFault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", f.code)
	w.WriteHeader(f.status)
	_, _ = w.Write([]byte(`{"__type":"` + f.code + `","message":"injected by the test"}`))
}

// faultClient is the SDK's KMS client pointed at f, retrying with no delay.
func faultClient(t *testing.T, f *kmsFault) *kms.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			o.RateLimiter = ratelimit.None // no retry token bucket: every case may retry
		}),
	})
}

// TestKMSErrorsOnTheWire: what the KMS client returns for each error KMS can
// send, through the SDK's own parsing and retries, is classified fail-closed:
// a record whose data key KMS refuses for good is corrupt, everything else
// (throttling, internal errors, unavailability) is a *StoreError; either way
// the handler does not run. Throttling and internal errors are retried by
// the SDK (3 attempts) before they reach the store.
func TestKMSErrorsOnTheWire(t *testing.T) {
	tests := []struct {
		code      string
		status    int
		corrupt   bool
		wantCalls int64
	}{
		{"ThrottlingException", 400, false, 3},
		{"KMSInternalException", 500, false, 3},
		{"KeyUnavailableException", 500, false, 3},
		{"AccessDeniedException", 400, false, 1},
		{"DisabledException", 400, true, 1},
		{"KMSInvalidStateException", 400, true, 1},
		{"InvalidCiphertextException", 400, true, 1},
		{"IncorrectKeyException", 400, true, 1},
		{"NotFoundException", 400, true, 1},
		{"InvalidKeyUsageException", 400, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			inner := newSpy()
			if _, _, err := run(t, wrap(t, inner, localKMS(t), aliasTest), "p", "v"); err != nil {
				t.Fatal(err)
			}
			f := &kmsFault{status: tt.status, code: tt.code}
			_, ran, err := run(t, wrap(t, inner, faultClient(t, f), aliasTest), "p", "rerun")
			if ran {
				t.Fatal("the handler ran")
			}
			if !strings.Contains(err.Error(), tt.code) {
				t.Fatalf("err %v does not name %s", err, tt.code)
			}
			_, isCorrupt := errors.AsType[*idempotent.CorruptRecordError](err)
			se, isStore := errors.AsType[*idempotent.StoreError](err)
			switch {
			case tt.corrupt && (!isCorrupt || isStore):
				t.Fatalf("%v, want a *CorruptRecordError", err)
			case !tt.corrupt && (!isStore || isCorrupt || se.Op != "acquire"):
				t.Fatalf("%v, want a *StoreError of acquire", err)
			}
			if n := f.calls.Load(); n != tt.wantCalls {
				t.Fatalf("%d Decrypt requests, want %d", n, tt.wantCalls)
			}
		})
	}
}

// TestGenerateDataKeyThrottledOnTheWire: a GenerateDataKey that stays
// throttled after the SDK's retries is a *StoreError of complete, and no
// result is stored unsealed.
func TestGenerateDataKeyThrottledOnTheWire(t *testing.T) {
	inner := newSpy()
	f := &kmsFault{status: 400, code: "ThrottlingException"}
	_, ran, err := run(t, wrap(t, inner, faultClient(t, f), aliasTest), "p", "v")
	se, ok := errors.AsType[*idempotent.StoreError](err)
	if !ran || !ok || se.Op != "complete" || errors.Is(err, idempotent.ErrCorruptRecord) {
		t.Fatalf("ran=%v err=%v, want the handler run once and a *StoreError of complete", ran, err)
	}
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("%d GenerateDataKey requests, want 3 (the SDK's attempts)", n)
	}
	if len(inner.ids()) != 0 {
		t.Fatal("a result was stored")
	}
}

// TestDecryptTimeoutIsStoreError: a Decrypt that does not answer before the
// invocation's deadline is a *StoreError (not a corrupt record), and the
// handler does not run.
func TestDecryptTimeoutIsStoreError(t *testing.T) {
	inner := newSpy()
	if _, _, err := run(t, wrap(t, inner, localKMS(t), aliasTest), "p", "v"); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	ran := false
	_, err := idempotent.Do(ctx, idempotent.New(wrap(t, inner, c, aliasTest)), "pay", "p", func(context.Context) (string, error) {
		ran = true
		return "rerun", nil
	})
	if _, ok := errors.AsType[*idempotent.StoreError](err); ran || !ok || errors.Is(err, idempotent.ErrCorruptRecord) {
		t.Fatalf("ran=%v err=%v, want a *StoreError and no run", ran, err)
	}
}
