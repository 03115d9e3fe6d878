package idemkms_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemkms"
	"github.com/idemlambda/idemlambda/internal/benchdata"
)

// doRaw runs a handler returning result (raw JSON) through the core.
func doRaw(t *testing.T, store idempotent.Store, key string, result json.RawMessage) (json.RawMessage, bool, error) {
	t.Helper()
	ran := false
	v, err := idempotent.Do(context.Background(), idempotent.New(store), "pay", key, func(context.Context) (json.RawMessage, error) {
		ran = true
		return result, nil
	})
	return v, ran, err
}

// TestCompressBeforeSealing: a compressible 20 KB JSON result is stored as
// a sealed zstd frame (format byte 2), far smaller than the sealed plain
// result (what a store's own compression cannot do after encryption); a
// small result and a result with compression off are sealed plain (format
// byte 1); every form replays in a cold container.
func TestCompressBeforeSealing(t *testing.T) {
	big := json.RawMessage(benchdata.JSON(20480, 1))
	small := json.RawMessage(benchdata.JSON(200, 1))
	tests := []struct {
		name       string
		result     json.RawMessage
		threshold  int
		wantFormat byte
	}{
		{"20 KB JSON, compressed", big, idemkms.DefaultCompressThreshold, 2},
		{"20 KB JSON, compression off", big, -1, 1},
		{"200 B JSON, below the threshold", small, idemkms.DefaultCompressThreshold, 1},
	}
	sizes := map[string]int{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := newSpy()
			opt := func(o *idemkms.Options) { o.CompressThreshold = tt.threshold }
			s := wrap(t, inner, localKMS(t), aliasTest, opt)
			if v, ran, err := doRaw(t, s, "order-1", tt.result); err != nil || !ran || !bytes.Equal(v, tt.result) {
				t.Fatalf("first: %d bytes ran=%v %v", len(v), ran, err)
			}
			_, data := inner.only(t)
			if !bytes.HasPrefix(data, []byte{'I', 'K', tt.wantFormat}) {
				t.Fatalf("stored %q..., want format byte %d", data[:3], tt.wantFormat)
			}
			sizes[tt.name] = len(data)
			t.Logf("%d result bytes stored as %d", len(tt.result), len(data))
			cold := wrap(t, inner, localKMS(t), aliasTest) // default options: reads both forms
			if v, ran, err := doRaw(t, cold, "order-1", json.RawMessage(`"rerun"`)); err != nil || ran || !bytes.Equal(v, tt.result) {
				t.Fatalf("cold replay: %d bytes ran=%v %v", len(v), ran, err)
			}
		})
	}
	on, off := sizes["20 KB JSON, compressed"], sizes["20 KB JSON, compression off"]
	if on == 0 || off == 0 || on*3 > off {
		t.Fatalf("20 KB JSON stored as %d bytes compressed, %d plain: want at most a third", on, off)
	}
}

// goldenV1 is a record sealed by idemkms before compression existed (format
// byte 1), under the first key of kms/seed.yaml, for Do("pay", "golden-v1")
// returning "card 4111 confirmed".
const (
	goldenV1ID   = "idempotent#2592ee5cc53178f74d4c10c10b2849be438038db0f2f464468980b8ceb114db6"
	goldenV1Data = "SUsBAIxLYXJuOmF3czprbXM6dXMtZWFzdC0xOjExMTEyMjIyMzMzMzprZXkvNmYwZDdhNTItM2MxZS00ZDhiLTlhNTEtMmI3ZTFjMGY0YTAxAAAAAOOpfGukw+FSPUa/BQxsxJoy3lyEpKjlnrElVbXPzbL/MyUaie9yR9bXzLYhA5MAbmJWoGu4Xea+Mr2RaBaZHT/qLLZ0HRpjzsxa6LYaqVEIDQnbKJaxPYEhBe69tlC1/cU+sQFDNORBK9iRII0="
)

// TestRecordOfThePreviousFormatReplays: a stored record written before
// compression (format byte 1) still opens.
func TestRecordOfThePreviousFormatReplays(t *testing.T) {
	data, err := base64.StdEncoding.DecodeString(goldenV1Data)
	if err != nil {
		t.Fatal(err)
	}
	m := idempotent.NewMemoryStore()
	plant(t, m, goldenV1ID, data)
	s := wrap(t, m, localKMS(t), aliasTest)
	if v, ran, err := run(t, s, "golden-v1", "rerun"); err != nil || ran || v != "card 4111 confirmed" {
		t.Fatalf("replay: %q ran=%v %v", v, ran, err)
	}
}

// plant writes a completed record with data straight into store, as a
// table copy or restore would.
func plant(t *testing.T, store idempotent.Store, id string, data []byte) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	rec := idempotent.Record{ID: id, Status: idempotent.StatusInProgress, Owner: "planter",
		Expiration: now.Add(time.Hour), LeaseExpiration: now.Add(time.Minute)}
	if _, ok, err := store.Acquire(ctx, rec, now); err != nil || !ok {
		t.Fatalf("plant %s: acquired=%v %v", id, ok, err)
	}
	rec.Status, rec.LeaseExpiration, rec.Data = idempotent.StatusCompleted, time.Time{}, data
	if err := store.Complete(ctx, rec); err != nil {
		t.Fatalf("plant %s: %v", id, err)
	}
}

// TestFormatByteIsAuthenticated: turning a compressed record into a plain one
// or back (or into an unknown format) does not open: the format byte is in
// the GCM additional data.
func TestFormatByteIsAuthenticated(t *testing.T) {
	for _, tt := range []struct {
		name   string
		result json.RawMessage
		to     byte
	}{
		{"compressed read as plain", json.RawMessage(benchdata.JSON(20480, 2)), 1},
		{"plain read as compressed", json.RawMessage(`"card 4111 confirmed"`), 2},
		{"unknown format", json.RawMessage(`"card 4111 confirmed"`), 9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inner := newSpy()
			s := wrap(t, inner, localKMS(t), aliasTest)
			if _, _, err := doRaw(t, s, "p", tt.result); err != nil {
				t.Fatal(err)
			}
			id, data := inner.only(t)
			if data[2] == tt.to {
				t.Fatalf("the record already has format byte %d", tt.to)
			}
			b := bytes.Clone(data)
			b[2] = tt.to
			inner.mu.Lock()
			inner.replace[id] = b
			inner.mu.Unlock()
			v, ran, err := doRaw(t, wrap(t, inner, localKMS(t), aliasTest), "p", json.RawMessage(`"rerun"`))
			var ce *idempotent.CorruptRecordError
			if ran || !errors.As(err, &ce) || ce.RecordID != id {
				t.Fatalf("%q ran=%v err=%v, want a *CorruptRecordError and no run", v, ran, err)
			}
		})
	}
}
