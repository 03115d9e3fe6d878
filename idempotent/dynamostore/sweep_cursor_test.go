package dynamostore

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
)

// cursorSweep is a sweep of table "t" (simple key "id") in total segments,
// set up without any call; its client points at a closed loopback port.
func cursorSweep(t *testing.T, total int, optFns ...func(*Options)) *sweep {
	t.Helper()
	client := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:1"),
		Credentials: aws.AnonymousCredentials{}})
	s := New(client, "t", optFns...)
	w, err := s.newSweep(SweepOptions{Segments: total})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestSweepCursorRoundTrip: a cursor gives back exactly the positions it was
// made from, key bytes included (invalid UTF-8, binary and number keys), and
// is "" only when every segment is done.
func TestSweepCursorRoundTrip(t *testing.T) {
	w := cursorSweep(t, 4)
	w.pos = []segPos{
		{},
		{done: true},
		{key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "fn#\xff\xfe#chunk#0#ab"}}},
		{key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "fn#é"}}},
	}
	c := w.cursorLocked()
	got, err := w.decodeCursor(c)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, w.pos) {
		t.Fatalf("decode(encode(%v)) = %v", w.pos, got)
	}
	if strings.ContainsAny(c, "+/=") {
		t.Errorf("cursor %q is not unpadded base64url", c)
	}

	comp := cursorSweep(t, 2, WithCompositeKey(""))
	comp.pos = []segPos{
		{key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberB{Value: []byte{0, 1, 0xff}},
			"sk": &types.AttributeValueMemberN{Value: "-12.5e3"},
		}},
		{done: true},
	}
	got, err = comp.decodeCursor(comp.cursorLocked())
	if err != nil || !reflect.DeepEqual(got, comp.pos) {
		t.Fatalf("composite round trip = %v, %v; want %v", got, err, comp.pos)
	}

	w.pos = []segPos{{done: true}, {done: true}, {done: true}, {done: true}}
	if c := w.cursorLocked(); c != "" {
		t.Errorf("cursor of a finished sweep = %q; want \"\"", c)
	}
}

// TestSweepCursorRejects: cursors that decode to something Sweep never
// writes are refused, each with its reason.
func TestSweepCursorRejects(t *testing.T) {
	w := cursorSweep(t, 2)
	enc := func(json string) string { return cursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(json)) }
	for _, tt := range []struct{ name, cursor, want string }{
		{"unknown field", enc(`{"t":"t","k":["id"],"s":[{},{}],"x":1}`), "unknown field"},
		{"trailing data", enc(`{"t":"t","k":["id"],"s":[{},{}]} {}`), "data after"},
		{"all done", enc(`{"t":"t","k":["id"],"s":[{"d":true},{"d":true}]}`), "no segment left"},
		{"done and under way", enc(`{"t":"t","k":["id"],"s":[{"d":true,"k":{"id":{"S":"YQ=="}}},{}]}`), "both done"},
		{"key of other attribute", enc(`{"t":"t","k":["id"],"s":[{"k":{"pk":{"S":"YQ=="}}},{}]}`), `lacks "id"`},
		{"key with two attributes", enc(`{"t":"t","k":["id"],"s":[{"k":{"id":{"S":"YQ=="},"x":{"S":"YQ=="}}},{}]}`), "2 attributes"},
		{"value with two types", enc(`{"t":"t","k":["id"],"s":[{"k":{"id":{"S":"YQ==","N":"MQ=="}}},{}]}`), "exactly one"},
		{"empty value", enc(`{"t":"t","k":["id"],"s":[{"k":{"id":{"S":""}}},{}]}`), "exactly one"},
		{"no value", enc(`{"t":"t","k":["id"],"s":[{"k":{"id":{}}},{}]}`), "exactly one"},
		{"other table", enc(`{"t":"u","k":["id"],"s":[{},{}]}`), "table"},
		{"other key", enc(`{"t":"t","k":["pk","sk"],"s":[{},{}]}`), "keyed on"},
		{"other segments", enc(`{"t":"t","k":["id"],"s":[{}]}`), "1 segments, not 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := w.decodeCursor(tt.cursor); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decodeCursor(%s) = %v; want an error with %q", tt.cursor, err, tt.want)
			}
			// Through Sweep it is a ConfigError before any call (no server
			// answers the client: a call would fail otherwise).
			_, err := w.s.Sweep(t.Context(), SweepOptions{Segments: 2, Start: tt.cursor})
			var ce *idempotent.ConfigError
			if !errors.As(err, &ce) || ce.Option != "SweepOptions.Start" {
				t.Fatalf("Sweep = %v; want a ConfigError on SweepOptions.Start", err)
			}
		})
	}
}
