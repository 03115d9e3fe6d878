package idempotent_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
)

func gz(b []byte) string {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// TestBinaryKeyMaterialStaysDistinct: events that encoding/json would read as
// one value (U+FFFD) are two records; before the fix each second event
// replayed the first one's result or failed the payload check silently.
func TestBinaryKeyMaterialStaysDistinct(t *testing.T) {
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	for _, c := range []struct {
		name, path, a, b string
	}{
		{"base64", "powertools_base64(data)", `{"data":"` + b64([]byte{0xff}) + `"}`, `{"data":"` + b64([]byte{0xfe}) + `"}`},
		{"base64 gzip", "powertools_base64_gzip(data)", `{"data":"` + gz([]byte{0x80, 1}) + `"}`, `{"data":"` + gz([]byte{0x81, 1}) + `"}`},
		{"raw bytes", "id", "{\"id\":\"\xff\"}", "{\"id\":\"\xfe\"}"},
		{"lone surrogates", "id", `{"id":"\ud800"}`, `{"id":"\udc00"}`},
		{"surrogate and U+FFFD", "id", `{"id":"\ud800"}`, `{"id":"\ufffd"}`},
		{"whole event", "", "{\"id\":\"\xff\"}", "{\"id\":\"\xfe\"}"},
		{"whole event surrogate", "", `["\ud800"]`, `["\ufffd"]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			runs := 0
			var opts []idempotent.WrapOption
			if c.path != "" {
				opts = append(opts, idempotent.WithKeyPath(c.path))
			}
			h := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore(), idempotent.WithRequireKey()), func(context.Context, json.RawMessage) (int, error) {
				runs++
				return runs, nil
			}, opts...)
			r1, err1 := h(context.Background(), json.RawMessage(c.a))
			r2, err2 := h(context.Background(), json.RawMessage(c.b))
			if err1 != nil || err2 != nil || r1 != 1 || r2 != 2 {
				t.Fatalf("got %d, %v and %d, %v; want two runs", r1, err1, r2, err2)
			}
		})
	}
}

// TestBinaryPayloadFingerprint: a payload that differs only in bytes that are
// not UTF-8 is a mismatch, not a replay.
func TestBinaryPayloadFingerprint(t *testing.T) {
	h := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore()), func(context.Context, json.RawMessage) (int, error) { return 1, nil },
		idempotent.WithKeyPath("id"), idempotent.WithPayloadPath("powertools_base64(data)"))
	if _, err := h(context.Background(), json.RawMessage(`{"id":"k","data":"/w=="}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := h(context.Background(), json.RawMessage(`{"id":"k","data":"/g=="}`)); !errors.Is(err, idempotent.ErrPayloadMismatch) {
		t.Fatalf("got %v, want ErrPayloadMismatch", err)
	}
}

// TestStructEventInvalidUTF8 : a Go event whose string holds bytes that are
// not UTF-8 has no faithful JSON form: its whole-event key fails with ErrNoKey
// and the handler does not run.
func TestStructEventInvalidUTF8(t *testing.T) {
	type ev struct{ ID string }
	runs := 0
	h := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore()), func(context.Context, ev) (int, error) { runs++; return runs, nil })
	if _, err := h(context.Background(), ev{ID: "\xff"}); !errors.Is(err, idempotent.ErrNoKey) || runs != 0 {
		t.Fatalf("got %v after %d runs, want ErrNoKey and no run", err, runs)
	}
	if r, err := h(context.Background(), ev{ID: "\ufffd"}); err != nil || r != 1 {
		t.Fatalf("valid U+FFFD: %d, %v", r, err)
	}
}

// TestDuplicateMemberRefused: {"amount":1,"amount":1000} means one thing to
// encoding/json and another to a first-wins parser; no key is read from it.
func TestDuplicateMemberRefused(t *testing.T) {
	for _, path := range []string{"", "id"} {
		runs := 0
		var opts []idempotent.WrapOption
		if path != "" {
			opts = append(opts, idempotent.WithKeyPath(path), idempotent.WithPayloadPath("amount"))
		}
		h := idempotent.Wrap(idempotent.New(idempotent.NewMemoryStore()), func(context.Context, json.RawMessage) (int, error) { runs++; return runs, nil }, opts...)
		_, err := h(context.Background(), json.RawMessage(`{"id":"k","amount":1,"amount":1000}`))
		if !errors.Is(err, idempotent.ErrNoKey) || runs != 0 {
			t.Fatalf("path %q: %v after %d runs, want ErrNoKey and no run", path, err, runs)
		}
	}
}
