package dynamostore_test

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/amztarget"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// recording is an HTTP transport that keeps the body of every request on its
// way to the server, by operation.
type recording struct {
	next http.RoundTripper

	mu     sync.Mutex
	bodies map[string][]map[string]any
}

func (r *recording) RoundTrip(req *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, err
	}
	op, _ := amztarget.Op(req.Header)
	r.mu.Lock()
	if r.bodies == nil {
		r.bodies = map[string][]map[string]any{}
	}
	r.bodies[op] = append(r.bodies[op], body)
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// TestNewKeyRequestShape pins the two requests of a new key, parameter by
// parameter, as the local server gets (and accepts) them: what each one
// costs the server to read was measured (docs/performance.md, "Where the
// time goes"), so a change to a condition, a name or a parameter has to
// show up here. Both name every attribute by an alias.
func TestNewKeyRequestShape(t *testing.T) {
	tests := []struct {
		name   string
		optFns []func(*dynamostore.Options)
		idAttr string
	}{
		{name: "simple key", idAttr: "id"},
		{name: "composite key", optFns: []func(*dynamostore.Options){dynamostore.WithCompositeKey("")}, idAttr: "sk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			t.Cleanup(tr.CloseIdleConnections)
			rec := &recording{next: tr}
			client := testdynamo.NewClient(testdynamo.Endpoint(t), func(o *dynamodb.Options) {
				o.HTTPClient = &http.Client{Transport: rec}
			})
			table := testdynamo.NewTable(t, client, tt.optFns...)
			store := dynamostore.New(client, table, tt.optFns...)
			rec.bodies = nil // the table's creation

			r := held("owner-1")
			if existing, ok, err := store.Acquire(t.Context(), r, now); err != nil || !ok || existing != nil {
				t.Fatalf("Acquire = %v, %v, %v; want a new key", existing, ok, err)
			}
			r.Status, r.Data = idempotent.StatusCompleted, []byte(`{"ok":true}`)
			if err := store.Complete(t.Context(), r); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			puts, updates := rec.bodies["PutItem"], rec.bodies["UpdateItem"]
			if len(puts) != 1 || len(updates) != 1 || len(rec.bodies) != 2 {
				t.Fatalf("requests %v; want one PutItem and one UpdateItem", slices.Sorted(maps.Keys(rec.bodies)))
			}

			keyAttrs := []string{"id"}
			if tt.idAttr == "sk" {
				keyAttrs = []string{"pk", "sk"}
			}
			shape(t, "PutItem", puts[0], map[string]any{
				"TableName":           table,
				"ConditionExpression": "#a = :i AND #b <= :m OR attribute_not_exists(#c) OR #d <= :s",
				"ExpressionAttributeNames": map[string]any{
					"#a": "status", "#b": "in_progress_expiration", "#c": tt.idAttr, "#d": "expiration",
				},
				"ExpressionAttributeValues": map[string]any{
					":i": av("S", "INPROGRESS"),
					":m": av("N", strconv.FormatInt(now.UnixMilli(), 10)),
					":s": av("N", strconv.FormatInt(now.Unix(), 10)),
				},
				"ReturnValues":                        "ALL_OLD",
				"ReturnValuesOnConditionCheckFailure": "ALL_OLD",
				"Item":                                attrs(append(slices.Clone(keyAttrs), "status", "expiration", "in_progress_expiration", "owner", "validation")),
			})
			shape(t, "UpdateItem", updates[0], map[string]any{
				"TableName":           table,
				"Key":                 attrs(keyAttrs),
				"UpdateExpression":    "SET #a = :c, #c = :e, #d = :d REMOVE #e, #f",
				"ConditionExpression": "#a = :i AND #b = :o",
				"ExpressionAttributeNames": map[string]any{
					"#a": "status", "#b": "owner", "#c": "expiration", "#d": "data", "#e": "in_progress_expiration", "#f": "data_format",
				},
				"ExpressionAttributeValues": map[string]any{
					":c": av("S", "COMPLETED"),
					":i": av("S", "INPROGRESS"),
					":e": av("N", strconv.FormatInt(r.Expiration.Unix(), 10)),
					":o": av("S", "owner-1"),
					":d": av("B", "eyJvayI6dHJ1ZX0="),
				},
			})
		})
	}
}

// attrs stands for an item or key map with exactly these attributes, of any
// value (shape compares only their names).
type attrs []string

func av(typ, v string) map[string]any { return map[string]any{typ: v} }

// shape checks that body has exactly the parameters of want, each equal to
// its value there; an attrs value checks only the attribute names.
func shape(t *testing.T, op string, body, want map[string]any) {
	t.Helper()
	if got, w := slices.Sorted(maps.Keys(body)), slices.Sorted(maps.Keys(want)); !slices.Equal(got, w) {
		t.Errorf("%s parameters = %q, want %q", op, got, w)
	}
	for k, w := range want {
		got := body[k]
		if names, ok := w.(attrs); ok {
			m, _ := got.(map[string]any)
			if g := slices.Sorted(maps.Keys(m)); !slices.Equal(g, slices.Sorted(slices.Values(names))) {
				t.Errorf("%s %s has %q, want %q", op, k, g, slices.Sorted(slices.Values(names)))
			}
			continue
		}
		if gj, wj := canonical(got), canonical(w); gj != wj {
			t.Errorf("%s %s = %s, want %s", op, k, gj, wj)
		}
	}
}

// canonical is v in JSON with sorted map keys, as the test prints it.
func canonical(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return string(bytes.TrimSpace(b.Bytes()))
}
