package dynamostore_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/amztarget"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

var (
	now     = time.Unix(1_800_000_000, 250_000_000).UTC()
	testKey = "orders#3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7"
)

func held(owner string) idempotent.Record {
	return idempotent.Record{
		ID:              testKey,
		Status:          idempotent.StatusInProgress,
		Expiration:      now.Add(time.Hour).Truncate(time.Second),
		LeaseExpiration: now.Add(30 * time.Second).Truncate(time.Millisecond),
		Owner:           owner,
		Fingerprint:     "fp",
	}
}

// TestRoundTrips counts the requests each operation sends to the local
// server: the physical floor of the contract (§3).
func TestRoundTrips(t *testing.T) {
	type step struct {
		name string
		run  func(t *testing.T, s *dynamostore.Store)
		want map[string]int
	}
	acquire := func(owner string, wantOK bool) func(t *testing.T, s *dynamostore.Store) {
		return func(t *testing.T, s *dynamostore.Store) {
			existing, ok, err := s.Acquire(t.Context(), held(owner), now)
			if err != nil || ok != wantOK {
				t.Fatalf("Acquire = %v, %v, %v; want acquired %v", existing, ok, err, wantOK)
			}
			if !wantOK && (existing == nil || existing.Owner == owner) {
				t.Fatalf("Acquire conflict returned %+v, want the other owner's record", existing)
			}
		}
	}
	complete := func(t *testing.T, s *dynamostore.Store) {
		rec := held("owner-1")
		rec.Status, rec.Data = idempotent.StatusCompleted, []byte(`{"ok":true}`)
		if err := s.Complete(t.Context(), rec); err != nil {
			t.Fatalf("Complete: %v", err)
		}
	}
	release := func(t *testing.T, s *dynamostore.Store) {
		if err := s.Release(t.Context(), testKey, "owner-1"); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}
	get := func(t *testing.T, s *dynamostore.Store) {
		if _, err := s.Get(t.Context(), testKey); err != nil {
			t.Fatalf("Get: %v", err)
		}
	}

	tests := []struct {
		name  string
		opts  []testdynamo.Option
		steps []step
	}{
		{
			name: "dynalite",
			steps: []step{
				{"acquire new", acquire("owner-1", true), map[string]int{"PutItem": 1}},
				{"acquire in progress", acquire("owner-2", false), map[string]int{"PutItem": 1, "GetItem": 1}},
				{"complete", complete, map[string]int{"UpdateItem": 1}},
				{"acquire completed (replay)", acquire("owner-2", false), map[string]int{"PutItem": 1, "GetItem": 1}},
				{"get", get, map[string]int{"GetItem": 1}},
			},
		},
		{
			name: "dynalite, release",
			steps: []step{
				{"acquire new", acquire("owner-1", true), map[string]int{"PutItem": 1}},
				{"release", release, map[string]int{"DeleteItem": 1}},
				{"acquire released", acquire("owner-2", true), map[string]int{"PutItem": 1}},
			},
		},
		{
			name: "server returning the old item",
			opts: []testdynamo.Option{testdynamo.WithOldItemOnConditionFailure()},
			steps: []step{
				{"acquire new", acquire("owner-1", true), map[string]int{"PutItem": 1}},
				{"acquire in progress", acquire("owner-2", false), map[string]int{"PutItem": 1}},
				{"complete", complete, map[string]int{"UpdateItem": 1}},
				{"acquire completed (replay)", acquire("owner-2", false), map[string]int{"PutItem": 1}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, calls := testdynamo.CountingClient(t, tt.opts...)
			store := dynamostore.New(client, testdynamo.NewTable(t, client))
			for _, st := range tt.steps {
				t.Run(st.name, func(t *testing.T) {
					calls.Reset()
					st.run(t, store)
					if got := calls.Counts(); !maps.Equal(got, st.want) {
						t.Fatalf("round trips = %v, want %v", got, st.want)
					}
				})
			}
		})
	}
}

// fakeServer answers DynamoDB requests without a server: each operation's
// answer is canned. It records the requests it gets.
type fakeServer struct {
	answers map[string]fakeAnswer // by operation

	mu       sync.Mutex
	requests []fakeRequest
}

type fakeAnswer struct {
	status int
	body   string
}

type fakeRequest struct {
	op   string
	body map[string]any
}

func (f *fakeServer) RoundTrip(req *http.Request) (*http.Response, error) {
	op, _ := amztarget.Op(req.Header)
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{op, body})
	f.mu.Unlock()
	a, ok := f.answers[op]
	if !ok {
		a = fakeAnswer{http.StatusBadRequest, `{"__type":"com.amazon.coral.service#UnknownOperationException"}`}
	}
	return &http.Response{
		StatusCode:    a.status,
		Status:        http.StatusText(a.status),
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:          io.NopCloser(strings.NewReader(a.body)),
		ContentLength: int64(len(a.body)),
		Request:       req,
	}, nil
}

// fakeClient is a real SDK client talking to f, counting its calls.
func fakeClient(f *fakeServer) (*dynamodb.Client, *testdynamo.Counter) {
	c := new(testdynamo.Counter)
	client := testdynamo.NewClient("http://fake.invalid", func(o *dynamodb.Options) {
		o.HTTPClient = &http.Client{Transport: f}
		o.APIOptions = append(o.APIOptions, c.Middleware)
		o.RetryMaxAttempts = 1
	})
	return client, c
}

const completedItem = `{"id":{"S":"` + "orders#3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7" + `"},` +
	`"status":{"S":"COMPLETED"},"expiration":{"N":"1800003600"},"owner":{"S":"owner-1"},` +
	`"validation":{"S":"fp"},"data":{"B":"AAEC/w=="}}`

// TestAcquireConflictWithOldItem checks the conflict path against canned
// server answers: with ALL_OLD honoured a conflict is one round trip and the
// record comes from the error's Item; otherwise one consistent GetItem
// follows.
func TestAcquireConflictWithOldItem(t *testing.T) {
	ccf := func(item string) fakeAnswer {
		body := `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"`
		if item != "" {
			body += `,"Item":` + item
		}
		return fakeAnswer{http.StatusBadRequest, body + "}"}
	}
	want := &idempotent.Record{
		ID:          testKey,
		Status:      idempotent.StatusCompleted,
		Expiration:  time.Unix(1_800_003_600, 0),
		Owner:       "owner-1",
		Fingerprint: "fp",
		Data:        []byte{0, 1, 2, 0xff},
	}
	tests := []struct {
		name    string
		answers map[string]fakeAnswer
		want    *idempotent.Record
		calls   map[string]int
	}{
		{
			name:    "item in the error",
			answers: map[string]fakeAnswer{"PutItem": ccf(completedItem)},
			want:    want,
			calls:   map[string]int{"PutItem": 1},
		},
		{
			name: "no item in the error",
			answers: map[string]fakeAnswer{
				"PutItem": ccf(""),
				"GetItem": {http.StatusOK, `{"Item":` + completedItem + `}`},
			},
			want:  want,
			calls: map[string]int{"PutItem": 1, "GetItem": 1},
		},
		{
			name: "no item, and it vanished before the read",
			answers: map[string]fakeAnswer{
				"PutItem": ccf(""),
				"GetItem": {http.StatusOK, `{}`},
			},
			want:  nil,
			calls: map[string]int{"PutItem": 1, "GetItem": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeServer{answers: tt.answers}
			client, calls := fakeClient(f)
			store := dynamostore.New(client, "idempotency")
			existing, ok, err := store.Acquire(t.Context(), held("owner-2"), now)
			if err != nil || ok {
				t.Fatalf("Acquire = %v, %v; want a conflict", ok, err)
			}
			if got := calls.Counts(); !maps.Equal(got, tt.calls) {
				t.Fatalf("round trips = %v, want %v", got, tt.calls)
			}
			if !sameRecord(existing, tt.want) {
				t.Fatalf("existing = %+v, want %+v", existing, tt.want)
			}

			// The write is the contract's conditional put.
			put := f.requests[0].body
			wantPut := map[string]any{
				"ConditionExpression":                 "#a = :i AND #b <= :m OR attribute_not_exists(#c) OR #d <= :s",
				"ReturnValuesOnConditionCheckFailure": "ALL_OLD",
				"TableName":                           "idempotency",
			}
			for k, v := range wantPut {
				if put[k] != v {
					t.Errorf("PutItem %s = %v, want %v", k, put[k], v)
				}
			}
			if got, want := fmt.Sprint(put["ExpressionAttributeNames"]), "map[#a:status #b:in_progress_expiration #c:id #d:expiration]"; got != want {
				t.Errorf("PutItem ExpressionAttributeNames = %s, want %s", got, want)
			}
			if got, want := fmt.Sprint(put["ExpressionAttributeValues"]),
				fmt.Sprintf("map[:i:map[S:INPROGRESS] :m:map[N:%d] :s:map[N:%d]]", now.UnixMilli(), now.Unix()); got != want {
				t.Errorf("PutItem ExpressionAttributeValues = %s, want %s", got, want)
			}
			if len(f.requests) > 1 && f.requests[1].body["ConsistentRead"] != true {
				t.Errorf("GetItem is not a consistent read: %v", f.requests[1].body)
			}
		})
	}
}

func sameRecord(a, b *idempotent.Record) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ID == b.ID && a.Status == b.Status && a.Expiration.Equal(b.Expiration) &&
		a.LeaseExpiration.Equal(b.LeaseExpiration) && a.Owner == b.Owner &&
		a.Fingerprint == b.Fingerprint && bytes.Equal(a.Data, b.Data)
}
