package idemkms_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

func TestMain(m *testing.M) { testdynamo.Main(m) }

// TestDynamoDBChunkedResultIsEncrypted runs through dynamostore on dynalite
// with a result large enough to be chunked: what the table holds is the
// sealed form (its chunks too), and the replay returns the result.
func TestDynamoDBChunkedResultIsEncrypted(t *testing.T) {
	client, calls := testdynamo.CountingClient(t)
	table := testdynamo.NewTable(t, client)
	calls.Reset()
	raw := dynamostore.New(client, table)
	inner := &spy{Store: raw, stored: map[string][]byte{}, replace: map[string][]byte{}}
	s := wrap(t, inner, localKMS(t), aliasTest)

	buf := make([]byte, 600<<10) // incompressible: over the 384 KiB chunk limit once encoded
	if _, err := rand.Read(buf); err != nil {
		t.Fatal(err)
	}
	result := base64.StdEncoding.EncodeToString(buf)
	ran := 0
	fn := func(context.Context) (string, error) { ran++; return result, nil }
	for range 2 {
		v, err := idempotent.Do(context.Background(), idempotent.New(s), "export", "e-1", fn)
		if err != nil || v != result {
			t.Fatalf("Do: %d bytes, %v", len(v), err)
		}
	}
	if n := calls.Count("PutItem"); n < 3 {
		t.Fatalf("%d PutItem calls: the result was not chunked (want the acquire and at least 2 chunks)", n)
	}
	if ran != 1 {
		t.Fatalf("handler ran %d times, want 1", ran)
	}
	// The same table read without idemkms: the stored result is sealed.
	id, _ := inner.only(t)
	rec, err := raw.Get(context.Background(), id)
	if err != nil || rec == nil {
		t.Fatalf("raw Get: %v %v", rec, err)
	}
	if !bytes.HasPrefix(rec.Data, []byte("IK\x01")) || bytes.Contains(rec.Data, []byte(result[:64])) || len(rec.Data) <= len(result) {
		t.Fatalf("the table holds %d bytes starting %q, want the sealed result", len(rec.Data), rec.Data[:8])
	}
}
