package idempotent_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"reflect"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/keyjson"
)

// pairwiseCase is a key configuration and what a handler reads from an
// event under it: the values that the key (and fingerprint) stand for.
type pairwiseCase struct {
	opts    []idempotent.WrapOption
	visible func(doc any) (any, bool)
}

func member(doc any, name string) (any, bool) {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, false
	}
	v, ok := m[name]
	return v, ok
}

func stringMember(doc any, name string) (string, bool) {
	v, ok := member(doc, name)
	s, isStr := v.(string)
	return s, ok && isStr
}

var pairwiseCases = []pairwiseCase{
	// A plain member.
	{[]idempotent.WrapOption{idempotent.WithKeyPath("id")}, func(doc any) (any, bool) { return member(doc, "id") }},
	// powertools_json: the member of the JSON document inside a string.
	{[]idempotent.WrapOption{idempotent.WithKeyPath("powertools_json(body).id")}, func(doc any) (any, bool) {
		s, ok := stringMember(doc, "body")
		if !ok {
			return nil, false
		}
		inner, err := keyjson.Decode([]byte(s))
		if err != nil {
			return nil, false
		}
		return member(inner, "id")
	}},
	// powertools_base64: the decoded bytes.
	{[]idempotent.WrapOption{idempotent.WithKeyPath("powertools_base64(data)")}, func(doc any) (any, bool) {
		s, ok := stringMember(doc, "data")
		if !ok {
			return nil, false
		}
		b, err := base64.StdEncoding.DecodeString(s)
		return string(b), err == nil
	}},
	// powertools_base64_gzip: the decompressed bytes.
	{[]idempotent.WrapOption{idempotent.WithKeyPath("powertools_base64_gzip(data)")}, func(doc any) (any, bool) {
		s, ok := stringMember(doc, "data")
		if !ok {
			return nil, false
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, false
		}
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, false
		}
		out, err := io.ReadAll(r)
		return string(out), err == nil
	}},
	// The whole event.
	{nil, func(doc any) (any, bool) { return doc, true }},
	// A key and a payload fingerprint: a replay means both are equal.
	{[]idempotent.WrapOption{idempotent.WithKeyPath("id"), idempotent.WithPayloadPath("p")}, func(doc any) (any, bool) {
		id, ok := member(doc, "id")
		p, _ := member(doc, "p") // absent: the fingerprint of nothing
		return []any{id, p}, ok
	}},
}

// normalize turns json.Numbers into their exact values (as big.Float text
// of 512 bits) so that 1, 1.0 and 1e0 compare equal, as a handler reading
// numbers sees them.
func normalize(v any) any {
	switch v := v.(type) {
	case json.Number:
		f, _, err := big.ParseFloat(string(v), 10, 512, big.ToNearestEven)
		if err != nil {
			return "number:" + string(v)
		}
		return f.Text('g', -1)
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = normalize(v[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

// FuzzEqualKeyEqualValue checks, pairwise, that equal key material means
// equal handler-visible values: for every key configuration (key paths with
// the Powertools functions, the whole event, a payload fingerprint), when
// event b replays event a's record (the handler runs once), what a handler
// reads from a and from b is the same. Strings are compared byte for byte
// (keyjson.Decode keeps invalid UTF-8 and lone surrogates), numbers by
// value. Seeds in testdata/fuzz hold the collapsing cases: invalid UTF-8,
// \ud800 against \udc00, \ud800 against \ufffd.
func FuzzEqualKeyEqualValue(f *testing.F) {
	gz := func(s string) string {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return base64.StdEncoding.EncodeToString(b.Bytes())
	}
	for _, s := range []struct {
		a, b string
		c    uint8
	}{
		{"{\"id\":\"\xff\"}", "{\"id\":\"\xfe\"}", 0},
		{`{"id":"\ud800"}`, `{"id":"\udc00"}`, 0},
		{`{"id":"\ud800"}`, `{"id":"\ufffd"}`, 0},
		{`{"id":1}`, `{"id":1.0}`, 0},
		{`{"body":"{\"id\":\"\\ud800\"}"}`, `{"body":"{\"id\":\"\\udc00\"}"}`, 1},
		{"{\"body\":\"{\\\"id\\\":\\\"\xff\\\"}\"}", "{\"body\":\"{\\\"id\\\":\\\"\xfe\\\"}\"}", 1},
		{`{"data":"/w=="}`, `{"data":"/g=="}`, 2},
		{`{"data":"` + gz("\xff") + `"}`, `{"data":"` + gz("\xfe") + `"}`, 3},
		{`{"a":"\ud800"}`, `{"a":"\ufffd"}`, 4},
		{"{\"a\":\"\xff\"}", "{\"a\":\"\xfe\"}", 4},
		{`{"id":"k","p":"\ud800"}`, `{"id":"k","p":"\udc00"}`, 5},
		{"{\"id\":\"k\",\"p\":\"\xff\"}", "{\"id\":\"k\",\"p\":\"\xfe\"}", 5},
	} {
		f.Add([]byte(s.a), []byte(s.b), s.c)
	}
	f.Fuzz(func(t *testing.T, a, b []byte, c uint8) {
		tc := pairwiseCases[int(c)%len(pairwiseCases)]
		runs := 0
		g := idempotent.New(idempotent.NewMemoryStore(), idempotent.WithRequireKey(), idempotent.WithLogger(slog.New(slog.DiscardHandler)))
		h := idempotent.Wrap(g, func(context.Context, json.RawMessage) (int, error) {
			runs++
			return runs, nil
		}, tc.opts...)
		ctx := context.Background()
		if _, err := h(ctx, json.RawMessage(a)); err != nil || runs != 1 {
			return // no key, or a key error: nothing to compare
		}
		if _, err := h(ctx, json.RawMessage(b)); err != nil || runs != 1 {
			if err == nil && runs != 2 {
				t.Fatalf("runs %d", runs)
			}
			return // b ran (another key) or was refused (mismatch, no key)
		}
		// b replayed a: they must look the same to a handler.
		da, errA := keyjson.Decode(a)
		db, errB := keyjson.Decode(b)
		if errA != nil || errB != nil {
			t.Fatalf("case %d: replayed, but the events do not decode: %v, %v", c%uint8(len(pairwiseCases)), errA, errB)
		}
		va, okA := tc.visible(da)
		vb, okB := tc.visible(db)
		if !okA || !okB || !reflect.DeepEqual(normalize(va), normalize(vb)) {
			t.Fatalf("case %d: %q replayed %q, but a handler sees %#v (%v) and %#v (%v)",
				c%uint8(len(pairwiseCases)), b, a, va, okA, vb, okB)
		}
	})
}
