package idempotent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
)

// FuzzKeyPath evaluates arbitrary JMESPath key and payload expressions over
// arbitrary JSON events. Whatever the input: nothing panics; a bad
// expression is a *ConfigError and the handler never runs; an event without
// a key fails with ErrNoKey (the key is required) and the handler never
// runs; the same event twice runs the handler at most once and replays the
// first result.
func FuzzKeyPath(f *testing.F) {
	seeds := []struct{ expr, event string }{
		{"orderId", `{"orderId":"o-1","amount":5}`},
		{"orderId", `{"orderId":1}`},
		{"orderId", `{"orderId":null}`},
		{"orderId", `{"orderId":""}`},
		{"orderId", `{"orderId":[]}`},
		{"body.orderId", `{"body":{"orderId":{"a":[1,2,{"b":1e400}]}}}`},
		{"[customer, requestId]", `{"customer":"c","requestId":"r"}`},
		{"items[0].id", `{"items":[{"id":"x"}]}`},
		{"items[-1]", `{"items":[]}`},
		{"items[::0]", `{"items":[1,2]}`},
		{"items[::-1]", `{"items":[1,2,3]}`},
		{"length(name)", `{"name":"abc"}`},
		{"max_by(people, &age).name", `{"people":[{"age":1,"name":"a"},{"age":"x"}]}`},
		{"sort(@)", `[3,"a",null]`},
		{"a.b.c", `"just a string"`},
		{"@", `12345678901234567890123`},
		{"", `{}`},
		{"a[", `{"a":[]}`},
		{"`{\"a\":1}`", `{}`},
		{"\"quoted key\"", `{"quoted key":"v"}`},
		{"[customer, requestId]", `{"other":1}`},
		{"{c: customer, r: requestId}", `{"customer":null,"requestId":""}`},
		{"[a, {b: b}]", `{"a":[],"b":[null,{}]}`},
		{"powertools_json(body).[user, orderId]", `{"body":"{\"user\":\"u\",\"orderId\":1}"}`},
		{"powertools_json(body).orderId", `{"body":"not json"}`},
		{"powertools_json(powertools_base64(data)).id", `{"data":"eyJpZCI6MX0="}`},
		{"powertools_base64_gzip(data)", `{"data":"H4sIAAAAAAAAA6tWSlSyMqwFAK+sG1YHAAAA"}`},
		{"nope(a)", `{"a":1}`},
		{"length(a, b)", `{"a":1}`},
	}
	for _, s := range seeds {
		f.Add(s.expr, []byte(s.event))
	}
	f.Fuzz(func(t *testing.T, expr string, event []byte) {
		if !json.Valid(event) {
			return
		}
		store := idempotent.NewMemoryStore()
		runs := 0
		h := idempotent.Wrap(idempotent.New(store, idempotent.WithRequireKey()), func(_ context.Context, in json.RawMessage) (int, error) {
			runs++
			return runs, nil
		}, idempotent.WithKeyPath(expr), idempotent.WithPayloadPath(expr))

		first, err1 := h(context.Background(), json.RawMessage(event))
		second, err2 := h(context.Background(), json.RawMessage(event))
		var ce *idempotent.ConfigError
		switch {
		case errors.As(err1, &ce):
			if runs != 0 || !errors.As(err2, &ce) {
				t.Fatalf("expr %q: config error %v, then %v after %d runs", expr, err1, err2, runs)
			}
		case errors.Is(err1, idempotent.ErrNoKey):
			if runs != 0 || !errors.Is(err2, idempotent.ErrNoKey) {
				t.Fatalf("expr %q event %s: no key, then %v after %d runs", expr, event, err2, runs)
			}
		case err1 != nil:
			t.Fatalf("expr %q event %s: unexpected error %v", expr, event, err1)
		default:
			if err2 != nil || second != first || runs != 1 {
				t.Fatalf("expr %q event %s: first %d, then %d, %v after %d runs; want a replay of the first", expr, event, first, second, err2, runs)
			}
		}
	})
}

// FuzzWholeEventKey: the default key of a raw JSON event does not depend on
// its formatting. An event and its indented form are one record (or, without
// a key, both fail with ErrNoKey), and nothing panics.
func FuzzWholeEventKey(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":2}`, `{"b":[1,{"d":null,"c":"x"}],"a":1}`, `[]`, `{"a":null}`, `"s"`, `1e400`, `{"a":"\u00e9<>&"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, event []byte) {
		if !json.Valid(event) {
			return
		}
		var indented bytes.Buffer
		if err := json.Indent(&indented, event, "", "  "); err != nil {
			t.Fatal(err)
		}
		runs := 0
		h := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithRequireKey()), func(context.Context, json.RawMessage) (int, error) {
			runs++
			return runs, nil
		})
		first, err1 := h(context.Background(), json.RawMessage(event))
		second, err2 := h(context.Background(), json.RawMessage(indented.Bytes()))
		switch {
		case errors.Is(err1, idempotent.ErrNoKey):
			if !errors.Is(err2, idempotent.ErrNoKey) || runs != 0 {
				t.Fatalf("event %s: no key, then %v after %d runs", event, err2, runs)
			}
		case err1 != nil || err2 != nil || first != 1 || second != 1:
			t.Fatalf("event %s: %d, %v then %d, %v; want run 1 replayed", event, first, err1, second, err2)
		}
	})
}
