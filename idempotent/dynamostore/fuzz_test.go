package dynamostore_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
)

// itemAPI is a fake client whose reads return items built from fuzz input:
// the first GetItem the record, any later one (chunk items) the second
// item. Writes fail their condition and carry the record as ALL_OLD.
type itemAPI struct {
	record, other map[string]types.AttributeValue
	gets          int
}

func (a *itemAPI) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	a.gets++
	if a.gets == 1 {
		return &dynamodb.GetItemOutput{Item: a.record}, nil
	}
	return &dynamodb.GetItemOutput{Item: a.other}, nil
}

func (a *itemAPI) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return nil, &types.ConditionalCheckFailedException{Message: new(string), Item: a.record}
}

func (a *itemAPI) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return nil, &types.ConditionalCheckFailedException{Message: new(string)}
}

func (a *itemAPI) DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return nil, &types.ConditionalCheckFailedException{Message: new(string)}
}

// fuzzAttrs are the attribute names an item is built from: the record's
// own, the chunk layout's, and strangers.
var fuzzAttrs = []string{
	dynamostore.DefaultKeyAttr, dynamostore.DefaultStatusAttr, dynamostore.DefaultExpirationAttr,
	dynamostore.DefaultLeaseAttr, dynamostore.DefaultOwnerAttr, dynamostore.DefaultFingerprintAttr,
	dynamostore.DefaultDataAttr, dynamostore.DefaultDataFormatAttr, dynamostore.DefaultChunksAttr,
	"n", "i", "size", "hash", "x",
}

// itemReader builds DynamoDB items from bytes: count, then per attribute a
// name index, a type tag and a value.
type itemReader struct{ b []byte }

func (r *itemReader) next() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *itemReader) bytes() []byte {
	n := min(int(r.next()%48), len(r.b))
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *itemReader) number() string {
	if r.next()%2 == 0 {
		var v int64
		for range 8 {
			v = v<<8 | int64(r.next())
		}
		return strconv.FormatInt(v>>(r.next()%64), 10)
	}
	return string(r.bytes())
}

func (r *itemReader) value(depth int) types.AttributeValue {
	switch r.next() % 10 {
	case 0:
		return &types.AttributeValueMemberS{Value: string(r.bytes())}
	case 1:
		return &types.AttributeValueMemberN{Value: r.number()}
	case 2:
		return &types.AttributeValueMemberB{Value: r.bytes()}
	case 3:
		return &types.AttributeValueMemberBOOL{Value: r.next()%2 == 0}
	case 4:
		return &types.AttributeValueMemberNULL{Value: true}
	case 5:
		if depth > 2 {
			return &types.AttributeValueMemberM{}
		}
		return &types.AttributeValueMemberM{Value: r.item(depth + 1)}
	case 6:
		var l []types.AttributeValue
		if depth <= 2 {
			for range r.next() % 3 {
				l = append(l, r.value(depth+1))
			}
		}
		return &types.AttributeValueMemberL{Value: l}
	case 7:
		return &types.AttributeValueMemberSS{Value: []string{string(r.bytes())}}
	case 8:
		return &types.AttributeValueMemberNS{Value: []string{r.number()}}
	default:
		return &types.AttributeValueMemberBS{Value: [][]byte{r.bytes()}}
	}
}

func (r *itemReader) item(depth int) map[string]types.AttributeValue {
	item := make(map[string]types.AttributeValue)
	for range r.next() % 12 {
		item[fuzzAttrs[int(r.next())%len(fuzzAttrs)]] = r.value(depth)
	}
	return item
}

// Seed encoding helpers, the inverse of itemReader for the seeds.
type seedAttr struct {
	attr  int // index in fuzzAttrs
	tag   byte
	value []byte
}

func seed(attrs ...seedAttr) []byte {
	b := []byte{byte(len(attrs))}
	for _, a := range attrs {
		b = append(b, byte(a.attr), a.tag)
		switch a.tag {
		case 0, 2, 7, 9:
			b = append(b, byte(len(a.value)))
			b = append(b, a.value...)
		case 1: // a number as text
			b = append(b, 1, byte(len(a.value)))
			b = append(b, a.value...)
		case 3:
			b = append(b, 0)
		}
	}
	return b
}

func sAttr(attr int, v string) seedAttr { return seedAttr{attr, 0, []byte(v)} }
func nAttr(attr int, v string) seedAttr { return seedAttr{attr, 1, []byte(v)} }
func bAttr(attr int, v string) seedAttr { return seedAttr{attr, 2, []byte(v)} }

// FuzzDecodeRecord reads arbitrary items through the Store's public reads
// (Get, and Acquire's conflict path). Whatever the item: no panic; either a
// record with a known status, or an error wrapping
// idempotent.ErrCorruptRecord (or, when chunk items cannot be read, a
// *idempotent.StoreError).
func FuzzDecodeRecord(f *testing.F) {
	const id, st, exp, lease, owner, fp, data, format, chunks = 0, 1, 2, 3, 4, 5, 6, 7, 8
	f.Add(seed(sAttr(id, "fn#k"), sAttr(st, "COMPLETED"), nAttr(exp, "1700000000"), bAttr(data, `{"ok":true}`), sAttr(owner, "o")), []byte{})
	f.Add(seed(sAttr(id, "fn#k"), sAttr(st, "INPROGRESS"), nAttr(exp, "1700000000"), nAttr(lease, "1700000000123"), sAttr(owner, "o"), sAttr(fp, "ab")), []byte{})
	f.Add(seed(sAttr(id, "fn#k"), sAttr(st, "COMPLETED"), nAttr(exp, "1.5"), bAttr(data, "x")), []byte{})
	f.Add(seed(sAttr(id, "fn#k"), sAttr(st, "DONE"), nAttr(exp, "1")), []byte{})
	f.Add(seed(sAttr(id, "fn#k"), sAttr(st, "COMPLETED"), nAttr(exp, "99999999999999999999"), bAttr(data, "x")), []byte{})
	f.Add(seed(sAttr(id, "fn#k"), sAttr(st, "COMPLETED"), nAttr(exp, "1700000000"), bAttr(data, "\x1f\x8b"), sAttr(format, "gzip")), []byte{})
	f.Add(seed(sAttr(id, "fn#k"), sAttr(st, "COMPLETED"), nAttr(exp, "1700000000"), sAttr(format, "zstd"), bAttr(data, "\x28\xb5\x2f\xfd")), []byte{})
	f.Add(seed(sAttr(id, "fn#k"), sAttr(st, "COMPLETED"), nAttr(exp, "1700000000"), seedAttr{chunks, 5, []byte{2, 9, 1}}), seed(bAttr(data, "chunk")))
	f.Add(seed(sAttr(id, "fn#k"), sAttr(st, "COMPLETED"), nAttr(exp, "1700000000"), nAttr(chunks, "3")), seed(bAttr(data, "chunk")))
	f.Add(seed(sAttr(st, "COMPLETED")), []byte{})
	f.Add([]byte{}, []byte{})

	f.Fuzz(func(t *testing.T, recordBytes, otherBytes []byte) {
		r1, r2 := &itemReader{recordBytes}, &itemReader{otherBytes}
		api := &itemAPI{record: r1.item(0), other: r2.item(0)}
		store := dynamostore.New(api, "t")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()

		check := func(op string, rec *idempotent.Record, err error) {
			t.Helper()
			var se *idempotent.StoreError
			switch {
			case err == nil && rec == nil:
				if len(api.record) != 0 {
					t.Fatalf("%s: no record and no error for item %v", op, api.record)
				}
			case err == nil:
				if rec.Status != idempotent.StatusInProgress && rec.Status != idempotent.StatusCompleted {
					t.Fatalf("%s: decoded status %q", op, rec.Status)
				}
			case errors.Is(err, idempotent.ErrCorruptRecord), errors.As(err, &se):
			default:
				t.Fatalf("%s: error %v (%T) neither wraps ErrCorruptRecord nor is a *StoreError", op, err, err)
			}
		}
		rec, err := store.Get(ctx, "fn#k")
		check("Get", rec, err)

		api.gets = 0
		existing, acquired, err := store.Acquire(ctx, idempotent.Record{
			ID: "fn#k", Status: idempotent.StatusInProgress, Expiration: time.Unix(1700000000, 0),
			LeaseExpiration: time.UnixMilli(1700000000000), Owner: "me",
		}, time.Unix(1690000000, 0))
		if acquired {
			t.Fatal("Acquire reported success on a failed condition")
		}
		if len(api.record) != 0 {
			check("Acquire", existing, err)
		}
	})
}
