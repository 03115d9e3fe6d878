package idempotent_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
)

// runCounter is a handler of any event type that counts its runs and
// returns the run number, so a replay shows as an earlier number.
type runCounter[In any] struct{ runs int }

func (r *runCounter[In]) handle(context.Context, In) (int, error) {
	r.runs++
	return r.runs, nil
}

// Contract §3.1: a multi-select over fields an event does not have is no
// key, not a key shared by every such event.
func TestMultiSelectOfMissingFieldsIsNoKey(t *testing.T) {
	paths := []string{
		"[customer, requestId]",
		"{c: customer, r: requestId}",
		"[customer, {r: requestId, tags: tags}]",
		"powertools_json(body).[customer, requestId]",
	}
	// Two different events, neither with a key.
	events := [][2]string{
		{`{"other":1,"body":"{}"}`, `{"other":2,"body":"{\"x\":1}"}`},
		{`{"customer":null,"requestId":"","body":"{\"customer\":null}"}`, `{"customer":"","tags":[],"body":"{\"requestId\":\"\"}"}`},
		{`{"tags":[null,""],"body":"{\"tags\":{}}"}`, `{"customer":[],"requestId":{},"body":"{\"customer\":[[]]}"}`},
	}
	for _, path := range paths {
		for i, evs := range events {
			t.Run(fmt.Sprintf("%s/%d", path, i), func(t *testing.T) {
				t.Run("required: ErrNoKey", func(t *testing.T) {
					store := idempotent.NewMemoryStore()
					h := &runCounter[json.RawMessage]{}
					w := idempotent.Wrap(idempotent.New(store, idempotent.WithRequireKey()), h.handle, idempotent.WithKeyPath(path))
					for _, ev := range evs {
						if _, err := w(context.Background(), json.RawMessage(ev)); !errors.Is(err, idempotent.ErrNoKey) {
							t.Fatalf("event %s: err = %v, want ErrNoKey", ev, err)
						}
					}
					if h.runs != 0 || store.Len() != 0 {
						t.Fatalf("runs = %d, records = %d; want neither", h.runs, store.Len())
					}
				})
				t.Run("not required: unguarded runs", func(t *testing.T) {
					store := idempotent.NewMemoryStore()
					h := &runCounter[json.RawMessage]{}
					w := idempotent.Wrap(idempotent.New(store), h.handle, idempotent.WithKeyPath(path))
					for j, ev := range evs {
						n, err := w(context.Background(), json.RawMessage(ev))
						if err != nil || n != j+1 {
							t.Fatalf("event %s: got run %d, %v; want run %d (it must run, not replay another event's result)", ev, n, err, j+1)
						}
					}
					if store.Len() != 0 {
						t.Fatalf("%d records; a missing key must never be hashed into a shared record", store.Len())
					}
				})
			})
		}
	}
	// One member present is a key: the same event replays.
	h := &runCounter[json.RawMessage]{}
	store := idempotent.NewMemoryStore()
	w := idempotent.Wrap(idempotent.New(store, idempotent.WithRequireKey()), h.handle, idempotent.WithKeyPath("[customer, requestId]"))
	for range 2 {
		if n, err := w(context.Background(), json.RawMessage(`{"customer":"c"}`)); err != nil || n != 1 {
			t.Fatalf("got run %d, %v; want a replay of run 1", n, err)
		}
	}
}

// Defect 7 of issue 10: the whole-event key of a raw JSON event does not
// depend on member order or whitespace.
func TestWholeEventKeyIsCanonical(t *testing.T) {
	t.Run("json.RawMessage", func(t *testing.T) {
		same(t, []json.RawMessage{[]byte(`{"a":1,"b":2}`), []byte(`{"b":2,"a":1}`), []byte(` { "b" : 2 ,
			"a":1}`)}, json.RawMessage(`{"a":1,"b":3}`))
	})
	t.Run("[]byte", func(t *testing.T) {
		same(t, [][]byte{[]byte(`{"a":1,"b":{"c":[1,"x"],"d":null}}`), []byte(`{"b":{"d":null,"c":[1,"x"]},"a":1}`)}, []byte(`{"a":1,"b":{"c":[1,"x"]}}`))
	})
	t.Run("map via raw bytes", func(t *testing.T) {
		same(t, []map[string]json.RawMessage{{"x": []byte(`{"b":1,"a":2}`), "y": []byte(`"s"`)}, {"y": []byte(`"s"`), "x": []byte(`{"a":2, "b":1}`)}},
			map[string]json.RawMessage{"x": []byte(`{"a":1,"b":2}`)})
	})
	t.Run("bytes that are not JSON never meet a JSON event", func(t *testing.T) {
		// "QUJD" is base64 for "ABC": the JSON form of the bytes "ABC".
		same(t, [][]byte{[]byte("ABC"), []byte("ABC")}, []byte(`"QUJD"`))
	})
}

// same checks that the events in one run once and replay, and that other
// then runs again: it is another record.
func same[In any](t *testing.T, one []In, other In) {
	t.Helper()
	store := idempotent.NewMemoryStore()
	h := &runCounter[In]{}
	w := idempotent.Wrap(idempotent.New(store, idempotent.WithRequireKey()), h.handle)
	for _, ev := range one {
		if n, err := w(context.Background(), ev); err != nil || n != 1 {
			t.Fatalf("event %v: got run %d, %v; want a replay of run 1", ev, n, err)
		}
	}
	if n, err := w(context.Background(), other); err != nil || n != 2 {
		t.Fatalf("event %v: got run %d, %v; want run 2 (another record)", other, n, err)
	}
	if store.Len() != 2 {
		t.Fatalf("%d records, want 2", store.Len())
	}
}

func gzipBase64(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// Powertools' functions work verbatim in key and payload paths.
func TestPowertoolsFunctions(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name, path   string
		a, b, other  string // a and b share a record, other does not
		notJSONEvent string // the function fails on it: ErrNoKey, no run
	}{
		{
			name: "powertools_json", path: "powertools_json(body).[user, orderId]",
			a:            `{"body":"{\"user\":\"u\",\"orderId\":\"o-1\",\"n\":1}"}`,
			b:            `{"body":"{\"orderId\":\"o-1\", \"user\":\"u\",\"n\":2}","headers":{}}`,
			other:        `{"body":"{\"user\":\"u\",\"orderId\":\"o-2\"}"}`,
			notJSONEvent: `{"body":"user=u&orderId=o-1"}`,
		},
		{
			name: "powertools_base64", path: "powertools_json(powertools_base64(data)).id",
			a:            fmt.Sprintf(`{"data":%q}`, b64([]byte(`{"id":"k-1","v":1}`))),
			b:            fmt.Sprintf(`{"data":%q}`, b64([]byte(`{"v":2,"id":"k-1"}`))),
			other:        fmt.Sprintf(`{"data":%q}`, b64([]byte(`{"id":"k-2"}`))),
			notJSONEvent: `{"data":"not base64!"}`,
		},
		{
			name: "powertools_base64_gzip", path: "powertools_json(powertools_base64_gzip(awslogs.data)).logGroup",
			a:            fmt.Sprintf(`{"awslogs":{"data":%q}}`, gzipBase64(t, `{"logGroup":"g-1","logEvents":[1]}`)),
			b:            fmt.Sprintf(`{"awslogs":{"data":%q}}`, gzipBase64(t, `{"logGroup":"g-1","logEvents":[2]}`)),
			other:        fmt.Sprintf(`{"awslogs":{"data":%q}}`, gzipBase64(t, `{"logGroup":"g-2"}`)),
			notJSONEvent: fmt.Sprintf(`{"awslogs":{"data":%q}}`, b64([]byte("not gzip"))),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := idempotent.NewMemoryStore()
			h := &runCounter[json.RawMessage]{}
			w := idempotent.Wrap(idempotent.New(store, idempotent.WithRequireKey()), h.handle, idempotent.WithKeyPath(tt.path))
			for i, ev := range []string{tt.a, tt.b, tt.other} {
				want := map[int]int{0: 1, 1: 1, 2: 2}[i]
				if n, err := w(context.Background(), json.RawMessage(ev)); err != nil || n != want {
					t.Fatalf("event %s: got run %d, %v; want run %d", ev, n, err, want)
				}
			}
			_, err := w(context.Background(), json.RawMessage(tt.notJSONEvent))
			var ce *idempotent.ConfigError
			if !errors.Is(err, idempotent.ErrNoKey) || errors.As(err, &ce) || h.runs != 2 {
				t.Fatalf("undecodable input: err = %v after %d runs; want ErrNoKey and no run", err, h.runs)
			}
		})
	}
	t.Run("payload path", func(t *testing.T) {
		w := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore()), (&runCounter[json.RawMessage]{}).handle,
			idempotent.WithKeyPath("powertools_json(body).orderId"), idempotent.WithPayloadPath("powertools_json(body).amount"))
		if _, err := w(context.Background(), json.RawMessage(`{"body":"{\"orderId\":\"o\",\"amount\":1}"}`)); err != nil {
			t.Fatal(err)
		}
		_, err := w(context.Background(), json.RawMessage(`{"body":"{\"orderId\":\"o\",\"amount\":2}"}`))
		if !errors.Is(err, idempotent.ErrPayloadMismatch) {
			t.Fatalf("err = %v, want ErrPayloadMismatch", err)
		}
	})
}

// A path that does not compile, names an unknown function or calls one with
// the wrong number of arguments is a *ConfigError on every call, never a
// missing key; so is a bad custom function.
func TestKeyPathConfigErrors(t *testing.T) {
	fn := func(args []any) (any, error) { return args[0], nil }
	tests := []struct {
		name string
		opts []any
	}{
		{"unknown function", []any{idempotent.WithKeyPath("nope(id)")}},
		{"unknown function in a multi-select", []any{idempotent.WithKeyPath("[id, powertools_jsn(body).x]")}},
		{"unknown function in payload path", []any{idempotent.WithKeyPath("id"), idempotent.WithPayloadPath("{a: amount, b: nope(@)}")}},
		{"unknown function behind an expref", []any{idempotent.WithKeyPath("max_by(items, &nope(@))")}},
		{"too many arguments", []any{idempotent.WithKeyPath("length(id, amount)")}},
		{"too few arguments", []any{idempotent.WithKeyPath("powertools_json()")}},
		{"does not compile", []any{idempotent.WithKeyPath("powertools_json(body).[")}},
		{"a rune the lexer panicked on", []any{idempotent.WithKeyPath("A\u0080")}},
		{"custom function, bad name", []any{idempotent.WithJMESPathFunction("a-b", fn)}},
		{"custom function, replaces a built-in", []any{idempotent.WithJMESPathFunction("length", fn)}},
		{"custom function, replaces a Powertools one", []any{idempotent.WithJMESPathFunction("powertools_json", fn)}},
		{"custom function, twice", []any{idempotent.WithJMESPathFunction("f", fn), idempotent.WithJMESPathFunction("f", fn)}},
		{"custom function, nil", []any{idempotent.WithJMESPathFunction("f", nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &handler{}
			w := wrapWith(idempotent.NewMemoryStore(), h.handle, tt.opts...)
			for range 2 {
				_, err := w(context.Background(), order{ID: "o-1", Amount: 1})
				var ce *idempotent.ConfigError
				if !errors.As(err, &ce) || errors.Is(err, idempotent.ErrNoKey) {
					t.Fatalf("err = %v, want a *ConfigError (not ErrNoKey)", err)
				}
			}
			if h.runs.Load() != 0 {
				t.Fatal("handler ran despite a configuration error")
			}
		})
	}
}

// Custom functions work in key paths whatever the order of the options, and
// an error from one fails the key.
func TestCustomFunction(t *testing.T) {
	tenant := func(args []any) (any, error) {
		s, ok := args[0].(string)
		if !ok || len(args) != 1 {
			return nil, errors.New("want one string")
		}
		return strings.ToLower(strings.SplitN(s, "/", 2)[0]), nil
	}
	store := idempotent.NewMemoryStore()
	h := &runCounter[json.RawMessage]{}
	w := idempotent.Wrap(idempotent.New(store, idempotent.WithJMESPathFunction("tenant", tenant)), h.handle, idempotent.WithKeyPath("[tenant(path), orderId]"))
	for i, ev := range []string{`{"path":"ACME/x","orderId":"o"}`, `{"path":"acme/y","orderId":"o"}`, `{"path":"other/x","orderId":"o"}`} {
		want := []int{1, 1, 2}[i]
		if n, err := w(context.Background(), json.RawMessage(ev)); err != nil || n != want {
			t.Fatalf("event %s: got run %d, %v; want run %d", ev, n, err, want)
		}
	}
	if _, err := w(context.Background(), json.RawMessage(`{"path":7,"orderId":"o"}`)); !errors.Is(err, idempotent.ErrNoKey) || h.runs != 2 {
		t.Fatalf("function error: err = %v after %d runs, want ErrNoKey and no run", err, h.runs)
	}
}

func TestCompileKeyPath(t *testing.T) {
	p, err := idempotent.CompileKeyPath("[a, b]")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		doc, want string
		err       bool
	}{
		{`{"a":"x","b":{"d":1,"c":2}}`, `["x",{"c":2,"d":1}]`, false},
		{`{"a":1}`, `[1,null]`, false},
		{`{"a":0}`, `[0,null]`, false},
		{`{"a":false}`, `[false,null]`, false},
		{`{"a":"1"}`, `["1",null]`, false},
		{`{"a":12345678901234567890}`, `[12345678901234567890,null]`, false},
		{`{}`, ``, false},
		{`{"a":null,"b":""}`, ``, false},
		{`{"a":[[],{}],"b":{"c":[null,""]}}`, ``, false},
		{`"str"`, ``, false},
		{`{"a":1} {}`, ``, true},
		{`{"a":`, ``, true},
	}
	for _, tt := range tests {
		got, err := p.Key([]byte(tt.doc))
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("Key(%s) = %q, %v; want %q, error %v", tt.doc, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, idempotent.ErrNoKey) {
			t.Errorf("Key(%s): %v does not wrap ErrNoKey", tt.doc, err)
		}
	}
	var ce *idempotent.ConfigError
	if _, err := idempotent.CompileKeyPath("nope(a)"); !errors.As(err, &ce) {
		t.Fatalf("unknown function: err = %v, want *ConfigError", err)
	}
	up := idempotent.WithJMESPathFunction("up", func(args []any) (any, error) { return strings.ToUpper(fmt.Sprint(args...)), nil })
	p, err = idempotent.CompileKeyPath("up(a)", up)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Key([]byte(`{"a":"x"}`)); got != `"X"` || err != nil {
		t.Fatalf("custom function: %q, %v", got, err)
	}
}

// The whole-event key follows the same rule: an event that carries nothing
// is no key.
func TestWholeEventWithoutDataIsNoKey(t *testing.T) {
	store := idempotent.NewMemoryStore()
	h := &runCounter[json.RawMessage]{}
	w := idempotent.Wrap(idempotent.New(store, idempotent.WithRequireKey()), h.handle)
	for _, ev := range []string{`null`, `""`, `{}`, `[]`, `{"a":null,"b":""}`, `[[],{"c":{}}]`} {
		if _, err := w(context.Background(), json.RawMessage(ev)); !errors.Is(err, idempotent.ErrNoKey) {
			t.Errorf("event %s: err = %v, want ErrNoKey", ev, err)
		}
	}
	if _, err := w(context.Background(), json.RawMessage(`{"a":0}`)); err != nil {
		t.Errorf("event {\"a\":0}: %v; 0 is a value", err)
	}
	if h.runs != 1 || store.Len() != 1 {
		t.Fatalf("runs = %d, records = %d; want 1 and 1", h.runs, store.Len())
	}
}
