package idempotent

import (
	"encoding/json"
	"testing"

	"github.com/jmespath/go-jmespath"
)

// The fast path of plain field paths must give exactly the key the general
// JMESPath path gives, or step aside.
func TestLookupScalarMatchesSearch(t *testing.T) {
	type inner struct {
		OrderID string  `json:"orderId"`
		N       float64 `json:"n"`
		Tags    []string
		Nested  map[string]any `json:"nested"`
	}
	type event struct {
		ID     any             `json:"id"`
		Detail inner           `json:"detail"`
		Raw    json.RawMessage `json:"raw"`
		Ptr    *inner          `json:"ptr"`
	}
	events := []event{
		{ID: "o-1", Detail: inner{OrderID: "x", N: 1.5}, Raw: json.RawMessage(`{"a":"\u0041","b":[1,{"c":2}]}`)},
		{ID: 12345678901234567, Detail: inner{OrderID: "<&>é\u2028", N: 1e21, Tags: []string{"a"}}},
		{ID: nil, Detail: inner{Nested: map[string]any{"k": "v", "z": nil}}, Raw: json.RawMessage(`"str"`)},
		{ID: "", Ptr: &inner{OrderID: "p"}, Raw: json.RawMessage(`[1,2]`)},
		{ID: map[string]any{"b": 1, "a": 2}},
		{ID: []any{"x", 1}},
		{ID: true},
		{ID: `quote " and \ backslash`},
	}
	paths := []string{"id", "detail.orderId", "detail.n", "detail.Tags", "detail.nested", "detail.nested.k", "detail.nested.z",
		"raw", "raw.a", "raw.b", "ptr.orderId", "ptr", "missing", "id.deeper", "detail.orderId.x"}
	fastHits := 0
	for _, p := range paths {
		fields := simpleFields(p)
		if fields == nil {
			t.Fatalf("%q is a plain field path", p)
		}
		compiled := jmespath.MustCompile(p)
		for i, ev := range events {
			raw, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			fast, ok := lookupScalar(raw, fields)
			if !ok {
				continue
			}
			fastHits++
			doc, err := decodeJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			want, err := search(compiled, doc)
			if err != nil {
				t.Fatal(err)
			}
			if fast != want {
				t.Errorf("event %d, path %q: fast path %q, search %q", i, p, fast, want)
			}
		}
	}
	if fastHits < len(events)*len(paths)/2 {
		t.Fatalf("the fast path answered %d of %d lookups; it should answer most", fastHits, len(events)*len(paths))
	}
	for _, p := range []string{"a[0]", "a.b[*]", "[a, b]", "a || b", `"quoted"`, "a..b", ".a", "a.", "1a", "length(a)"} {
		if simpleFields(p) != nil {
			t.Errorf("%q taken for a plain field path", p)
		}
	}
}

// FuzzLookupScalar: for arbitrary JSON documents (in the compact form
// json.Marshal gives Wrap) and plain paths, the fast path agrees with
// JMESPath or steps aside, and never panics.
func FuzzLookupScalar(f *testing.F) {
	f.Add([]byte(`{"id":"x","a":{"b":1}}`), "a.b")
	f.Add([]byte(`{"id":{"z":1,"a":[1,"\""]}}`), "id")
	f.Add([]byte(`{"a":"","b":null,"c":[]}`), "b")
	f.Add([]byte(`[{"a":1}]`), "a")
	f.Fuzz(func(t *testing.T, doc []byte, path string) {
		fields := simpleFields(path)
		if fields == nil {
			return
		}
		var v any
		if json.Unmarshal(doc, &v) != nil {
			return
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return
		}
		fast, ok := lookupScalar(raw, fields)
		if !ok {
			return
		}
		compiled, err := jmespath.Compile(path)
		if err != nil {
			return // an identifier JMESPath reserves
		}
		d, err := decodeJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		want, err := search(compiled, d)
		if err != nil {
			return
		}
		if fast != want {
			t.Fatalf("%s at %q: fast path %q, search %q", raw, path, fast, want)
		}
	})
}
