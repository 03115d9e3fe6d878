package main

// The library's tax in isolation (issue 15): the real DynamoDB client of the
// SDK talks to an in-process stub that answers every request at once, so
// what is left is the CPU our process spends per invocation — key
// derivation, record encoding, the SDK's serialisation and signing, response
// decoding — with no server and no network. The same stub serves the floor
// (the bare requests a correct handler without a library sends, the
// `floor` side of make bench), so the two are compared like for like.
//
//	go test -run '^$' -bench Tax -benchmem ./tools/bench
//
// Each result also reports wire-B/op, the bytes of requests and responses
// the invocation put on the wire, and cpu-ns/op, the process's CPU time
// (user + system, every thread, GC included) per invocation: on a shared
// machine ns/op is wall time and moves with the load, CPU time much less.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemlambda/idemlambda/internal/benchdata"
)

// stub answers DynamoDB's JSON protocol from memory. In "new" mode every
// conditional PutItem succeeds; in "replay" mode it fails with the item the
// recorder captured, as real DynamoDB does with
// ReturnValuesOnConditionCheckFailure = ALL_OLD (so a replay is one call).
type stub struct {
	replay atomic.Bool
	wire   atomic.Int64

	mu   sync.Mutex
	item map[string]json.RawMessage // the completed item, by table
}

func (s *stub) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body.Close()
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	status, out := 200, []byte(`{}`)
	switch op {
	case "PutItem":
		if s.replay.Load() {
			// Only the table name is read: the stub stands for the server,
			// and the CPU it spends is counted as this process's, so it
			// parses no more than it must (a full decode costs in
			// proportion to the request and would bill the server's work to
			// the side that sends more).
			var req struct{ TableName string }
			if err := json.Unmarshal(body, &req); err != nil {
				return nil, err
			}
			s.mu.Lock()
			item := s.item[req.TableName]
			s.mu.Unlock()
			if item == nil {
				return nil, fmt.Errorf("stub: no recorded item for table %s", req.TableName)
			}
			status = 400
			out = fmt.Appendf(nil, `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed","Item":%s}`, item)
		}
	case "UpdateItem", "DeleteItem":
	default:
		return nil, fmt.Errorf("stub: unexpected %s", op)
	}
	s.wire.Add(int64(len(body) + len(out)))
	return &http.Response{
		StatusCode:    status,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:          io.NopCloser(bytes.NewReader(out)),
		ContentLength: int64(len(out)),
		Request:       r,
	}, nil
}

// record stores the completed item of table for replays: the acquire's item
// with the complete's SET values applied (the only update shapes the two
// sides send: "SET #a = :v, ..." with an optional REMOVE clause).
func (s *stub) record(table string, put, update []byte) error {
	var p struct{ Item map[string]json.RawMessage }
	var u struct {
		UpdateExpression          string
		ExpressionAttributeNames  map[string]string
		ExpressionAttributeValues map[string]json.RawMessage
	}
	if err := json.Unmarshal(put, &p); err != nil {
		return err
	}
	if err := json.Unmarshal(update, &u); err != nil {
		return err
	}
	set, remove, _ := strings.Cut(strings.TrimPrefix(u.UpdateExpression, "SET "), " REMOVE ")
	name := func(n string) string {
		if v, ok := u.ExpressionAttributeNames[n]; ok {
			return v
		}
		return n
	}
	for _, a := range strings.Split(set, ",") {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("stub: cannot read %q", u.UpdateExpression)
		}
		p.Item[name(strings.TrimSpace(k))] = u.ExpressionAttributeValues[strings.TrimSpace(v)]
	}
	for _, k := range strings.Split(remove, ",") {
		delete(p.Item, name(strings.TrimSpace(k)))
	}
	b, err := json.Marshal(p.Item)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.item == nil {
		s.item = map[string]json.RawMessage{}
	}
	s.item[table] = b
	return nil
}

// recorder captures the last PutItem and UpdateItem bodies on their way to
// the stub, so one new invocation seeds the replay item.
type recorder struct {
	next     http.RoundTripper
	put, upd []byte
}

func (rc *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	switch strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.") {
	case "PutItem":
		rc.put = body
	case "UpdateItem":
		rc.upd = body
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return rc.next.RoundTrip(r)
}

func stubClient(rt http.RoundTripper) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://stub.invalid"),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "bench", SecretAccessKey: "bench", Source: "tax"}, nil
		}),
		HTTPClient: &http.Client{Transport: rt},
	})
}

// invoker is one side: ours (Wrap + dynamostore) or the floor.
type invoker func(ctx context.Context, key string) ([]byte, error)

func taxSides(client *dynamodb.Client, payload []byte) map[string]invoker {
	h := (&ours{client: client, table: "tax-idemlambda"}).handler(spec{payload: payload})
	fl := &floor{client: client, table: "tax-floor"}
	return map[string]invoker{
		"idemlambda": func(ctx context.Context, key string) ([]byte, error) {
			out, err := h(ctx, event{ID: key})
			return out, err
		},
		"floor": func(ctx context.Context, key string) ([]byte, error) { return fl.invoke(ctx, key, payload) },
	}
}

func BenchmarkTax(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{200, 20 << 10} {
		payload := benchdata.JSON(size, 1)
		for _, side := range []string{"floor", "idemlambda"} {
			for _, scenario := range []string{"new", "replay"} {
				b.Run(fmt.Sprintf("%s/%s/%dB", scenario, side, size), func(b *testing.B) {
					st := &stub{}
					rec := &recorder{next: st}
					invoke := taxSides(stubClient(rec), payload)[side]
					if _, err := invoke(ctx, "seed"); err != nil {
						b.Fatal(err)
					}
					table := map[string]string{"floor": "tax-floor", "idemlambda": "tax-idemlambda"}[side]
					if err := st.record(table, rec.put, rec.upd); err != nil {
						b.Fatal(err)
					}
					invoke = taxSides(stubClient(st), payload)[side]
					st.replay.Store(scenario == "replay")
					st.wire.Store(0)
					b.ReportAllocs()
					cpu0 := cpuTime()
					b.ResetTimer()
					for i := 0; b.Loop(); i++ {
						out, err := invoke(ctx, "k-"+strconv.Itoa(i))
						if err != nil {
							b.Fatal(err)
						}
						if len(out) != len(payload) {
							b.Fatalf("got %d bytes, want %d", len(out), len(payload))
						}
					}
					b.ReportMetric(float64(st.wire.Load())/float64(b.N), "wire-B/op")
					b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
				})
			}
		}
	}
}

// TestTaxStubReplays holds the benchmark honest: through the stub, a replay
// of either side returns the stored payload with one PutItem and nothing
// else, and a new key sends PutItem then UpdateItem.
func TestTaxStubReplays(t *testing.T) {
	ctx := context.Background()
	payload := benchdata.JSON(200, 1)
	for _, side := range []string{"floor", "idemlambda"} {
		t.Run(side, func(t *testing.T) {
			st := &stub{}
			rec := &recorder{next: st}
			if _, err := taxSides(stubClient(rec), payload)[side](ctx, "seed"); err != nil {
				t.Fatal(err)
			}
			if rec.put == nil || rec.upd == nil {
				t.Fatalf("a new key sent PutItem %t, UpdateItem %t; want both", rec.put != nil, rec.upd != nil)
			}
			table := map[string]string{"floor": "tax-floor", "idemlambda": "tax-idemlambda"}[side]
			if err := st.record(table, rec.put, rec.upd); err != nil {
				t.Fatal(err)
			}
			st.replay.Store(true)
			calls := &recorder{next: st}
			out, err := taxSides(stubClient(calls), payload)[side](ctx, "other")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, payload) {
				t.Fatalf("replay returned %q, want the stored payload", out)
			}
			if calls.put == nil || calls.upd != nil {
				t.Fatalf("replay sent PutItem %t, UpdateItem %t; want PutItem only", calls.put != nil, calls.upd != nil)
			}
		})
	}
	if err := (&stub{}).record("t", []byte(`{"Item":{}}`), []byte(`{"UpdateExpression":"SET nonsense"}`)); err == nil {
		t.Fatal("record accepted an update it cannot read")
	}
}

// cpuTime is the CPU time this process has used so far, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
