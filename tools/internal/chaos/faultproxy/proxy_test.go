package faultproxy_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/idemlambda/idemlambda/internal/testdynamo"
	"github.com/idemlambda/idemlambda/tools/internal/chaos/faultproxy"
)

// upstream is a fake server that answers every request with an empty JSON
// object and counts what reached it.
func upstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func start(t *testing.T, target string, cfg faultproxy.Config) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func post(t *testing.T, url string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"TableName":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.PutItem")
	client := &http.Client{Transport: &http.Transport{}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// TestFaultKinds injects each kind at rate 1 and checks what the client sees
// and whether the request reached the server.
func TestFaultKinds(t *testing.T) {
	tests := []struct {
		name      string
		kind      faultproxy.Kind
		wantErr   bool   // the client gets no HTTP answer
		status    int    // else the status it gets
		errType   string // and the __type in the body
		forwarded bool
	}{
		{name: "reset", kind: faultproxy.Reset, wantErr: true},
		{name: "drop", kind: faultproxy.Drop, wantErr: true, forwarded: true},
		{name: "delay", kind: faultproxy.Delay, status: 200, forwarded: true},
		{name: "500", kind: faultproxy.InternalError, status: 500, errType: "com.amazonaws.dynamodb.v20120810#InternalServerError"},
		{name: "throttle", kind: faultproxy.Throttle, status: 400, errType: "com.amazonaws.dynamodb.v20120810#ThrottlingException"},
		{name: "throughput", kind: faultproxy.ProvisionedThroughput, status: 400, errType: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"},
		{name: "none", kind: faultproxy.None, status: 200, forwarded: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, reached := upstream(t)
			rates := map[faultproxy.Kind]float64{}
			if tt.kind != faultproxy.None {
				rates[tt.kind] = 1
			}
			p := start(t, srv.URL, faultproxy.Config{Seed: 7, Rates: rates, DelayMin: 1, DelayMax: 2})
			resp, body, err := post(t, p.URL())
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got status %d, want a connection error", resp.StatusCode)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != tt.status {
					t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
				}
				if tt.errType != "" && !strings.Contains(string(body), `"__type":"`+tt.errType+`"`) {
					t.Errorf("body = %s, want __type %s", body, tt.errType)
				}
			}
			if got := reached.Load() == 1; got != tt.forwarded {
				t.Errorf("forwarded = %v, want %v", got, tt.forwarded)
			}
			st := p.Stats()
			if st.Requests != 1 {
				t.Errorf("Requests = %d, want 1", st.Requests)
			}
			if tt.kind != faultproxy.None {
				if got := st.Injected[tt.kind]["PutItem"]; got != 1 {
					t.Errorf("Injected[%s][PutItem] = %d, want 1", tt.kind, got)
				}
			}
			if tt.kind == faultproxy.None && st.Faults() != 0 {
				t.Errorf("Faults = %d, want 0", st.Faults())
			}
		})
	}
}

// TestDecideReproducible: the decision for request n depends on the seed
// and n only, and the mix follows the rates.
func TestDecideReproducible(t *testing.T) {
	rates := map[faultproxy.Kind]float64{
		faultproxy.Reset: 0.05, faultproxy.Drop: 0.1, faultproxy.Delay: 0.15,
		faultproxy.InternalError: 0.05, faultproxy.Throttle: 0.05, faultproxy.ProvisionedThroughput: 0.1,
	}
	a := start(t, "http://127.0.0.1:1", faultproxy.Config{Seed: 42, Rates: rates})
	b := start(t, "http://127.0.0.1:1", faultproxy.Config{Seed: 42, Rates: rates})
	c := start(t, "http://127.0.0.1:1", faultproxy.Config{Seed: 43, Rates: rates})
	const n = 20000
	type decision struct {
		k faultproxy.Kind
		d time.Duration
	}
	// Ask b in reverse order: a decision does not depend on the order of
	// asking, only on the seed and the request number.
	fromB := make([]decision, n)
	for i := n - 1; i >= 0; i-- {
		k, d := b.Decide(uint64(i))
		fromB[i] = decision{k, d}
	}
	counts := map[faultproxy.Kind]int{}
	differ := 0
	for i := range n {
		k, d := a.Decide(uint64(i))
		if (decision{k, d}) != fromB[i] {
			t.Fatalf("request %d: seed 42 decided %v/%v and %v/%v", i, k, d, fromB[i].k, fromB[i].d)
		}
		if kc, _ := c.Decide(uint64(i)); kc != k {
			differ++
		}
		counts[k]++
		if k == faultproxy.Delay && (d < 20*time.Millisecond || d > 200*time.Millisecond) {
			t.Fatalf("delay %v outside the default bounds", d)
		}
	}
	if differ == 0 {
		t.Error("seeds 42 and 43 made the same decisions")
	}
	for k, r := range rates {
		got := float64(counts[k]) / n
		if math.Abs(got-r) > 0.02 {
			t.Errorf("%s: rate %.3f, want %.3f ± 0.02", k, got, r)
		}
	}
}

// TestSDKRetriesBounded: through the proxy, the SDK's retryer retries
// throttling up to its attempt limit and then surfaces the error; every
// attempt is one request the proxy counted.
func TestSDKRetriesBounded(t *testing.T) {
	srv, reached := upstream(t)
	p := start(t, srv.URL, faultproxy.Config{Seed: 1, Rates: map[faultproxy.Kind]float64{faultproxy.Throttle: 1}})
	client := testdynamo.NewClient(p.URL(), func(o *dynamodb.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 3
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	})
	_, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String("t"),
		Key:       map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "k"}},
	})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" {
		t.Fatalf("err = %v, want ThrottlingException", err)
	}
	if got := p.Stats().Requests; got != 3 {
		t.Errorf("proxy saw %d requests, want 3 (MaxAttempts)", got)
	}
	if reached.Load() != 0 {
		t.Errorf("%d requests reached the server, want 0", reached.Load())
	}
}
