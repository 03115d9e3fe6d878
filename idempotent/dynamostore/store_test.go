package dynamostore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
)

// fakeAPI is a dynamostore.API whose answers the test sets; it keeps the
// last input of each call.
type fakeAPI struct {
	put    func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error)
	get    func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error)
	update func(*dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error)
	del    func(*dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error)

	lastPut    *dynamodb.PutItemInput
	lastGet    *dynamodb.GetItemInput
	lastUpdate *dynamodb.UpdateItemInput
	lastDelete *dynamodb.DeleteItemInput
}

func (f *fakeAPI) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	f.lastPut = in
	if f.put == nil {
		return &dynamodb.PutItemOutput{}, nil
	}
	return f.put(in)
}

func (f *fakeAPI) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	f.lastGet = in
	if f.get == nil {
		return &dynamodb.GetItemOutput{}, nil
	}
	return f.get(in)
}

func (f *fakeAPI) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	f.lastUpdate = in
	if f.update == nil {
		return &dynamodb.UpdateItemOutput{}, nil
	}
	return f.update(in)
}

func (f *fakeAPI) DeleteItem(_ context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	f.lastDelete = in
	if f.del == nil {
		return &dynamodb.DeleteItemOutput{}, nil
	}
	return f.del(in)
}

type item = map[string]types.AttributeValue

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
func b(v string) types.AttributeValue { return &types.AttributeValueMemberB{Value: []byte(v)} }

// goodItem is a valid completed item; each case breaks one thing in a copy.
func goodItem() item {
	return item{
		"id":         s(testKey),
		"status":     s("COMPLETED"),
		"expiration": n("1800003600"),
		"owner":      s("owner-1"),
		"validation": s("fp"),
		"data":       b(`{"ok":true}`),
	}
}

func with(mut func(item)) item {
	it := goodItem()
	mut(it)
	return it
}

func TestDecode(t *testing.T) {
	inProgress := func(it item) {
		it["status"] = s("INPROGRESS")
		it["in_progress_expiration"] = n("1800000030000")
		delete(it, "data")
	}
	tests := []struct {
		name        string
		item        item
		wantCorrupt bool
		check       func(t *testing.T, r *idempotent.Record)
	}{
		{name: "completed", item: goodItem(), check: func(t *testing.T, r *idempotent.Record) {
			if r.Status != idempotent.StatusCompleted || string(r.Data) != `{"ok":true}` || r.Expiration.Unix() != 1800003600 ||
				!r.LeaseExpiration.IsZero() || r.Owner != "owner-1" || r.Fingerprint != "fp" || r.ID != testKey {
				t.Fatalf("decoded %+v", r)
			}
		}},
		{name: "in progress", item: with(inProgress), check: func(t *testing.T, r *idempotent.Record) {
			if r.Status != idempotent.StatusInProgress || r.LeaseExpiration.UnixMilli() != 1800000030000 || r.Data != nil {
				t.Fatalf("decoded %+v", r)
			}
		}},
		{name: "foreign attributes are ignored", item: with(func(it item) { it["extra"] = &types.AttributeValueMemberBOOL{Value: true} })},
		{name: "no owner, no fingerprint", item: with(func(it item) { delete(it, "owner"); delete(it, "validation") })},
		{name: "empty data", item: with(func(it item) { it["data"] = b("") }), check: func(t *testing.T, r *idempotent.Record) {
			if len(r.Data) != 0 {
				t.Fatalf("Data = %q", r.Data)
			}
		}},

		{name: "missing id", item: with(func(it item) { delete(it, "id") }), wantCorrupt: true},
		{name: "id of type N", item: with(func(it item) { it["id"] = n("1") }), wantCorrupt: true},
		{name: "missing status", item: with(func(it item) { delete(it, "status") }), wantCorrupt: true},
		{name: "status of type N", item: with(func(it item) { it["status"] = n("1") }), wantCorrupt: true},
		{name: "unknown status", item: with(func(it item) { it["status"] = s("DONE") }), wantCorrupt: true},
		{name: "lower-case status", item: with(func(it item) { it["status"] = s("completed") }), wantCorrupt: true},
		{name: "missing expiration", item: with(func(it item) { delete(it, "expiration") }), wantCorrupt: true},
		{name: "expiration of type S", item: with(func(it item) { it["expiration"] = s("1800003600") }), wantCorrupt: true},
		{name: "fractional expiration", item: with(func(it item) { it["expiration"] = n("1800003600.5") }), wantCorrupt: true},
		{name: "in progress without lease", item: with(func(it item) { inProgress(it); delete(it, "in_progress_expiration") }), wantCorrupt: true},
		{name: "lease of type S", item: with(func(it item) { inProgress(it); it["in_progress_expiration"] = s("x") }), wantCorrupt: true},
		{name: "owner of type N", item: with(func(it item) { it["owner"] = n("7") }), wantCorrupt: true},
		{name: "fingerprint of type B", item: with(func(it item) { it["validation"] = b("fp") }), wantCorrupt: true},
		{name: "completed without data", item: with(func(it item) { delete(it, "data") }), wantCorrupt: true},
		{name: "data of type S (Powertools for Python)", item: with(func(it item) { it["data"] = s(`{"ok":true}`) }), wantCorrupt: true},
		{name: "nil attribute value", item: with(func(it item) { it["data"] = nil }), wantCorrupt: true},
		{name: "NULL status", item: with(func(it item) { it["status"] = &types.AttributeValueMemberNULL{Value: true} }), wantCorrupt: true},
		{name: "unknown data format", item: with(func(it item) { it["data_format"] = s("brotli") }), wantCorrupt: true},
		{name: "data format of type N", item: with(func(it item) { it["data_format"] = n("1") }), wantCorrupt: true},
		{name: "zstd format on plain data", item: with(func(it item) { it["data_format"] = s("zstd") }), wantCorrupt: true},
		{name: "chunks of type S", item: with(func(it item) { delete(it, "data"); it["data_chunks"] = s("3") }), wantCorrupt: true},
		{name: "chunks without digest", item: with(func(it item) {
			delete(it, "data")
			it["data_chunks"] = &types.AttributeValueMemberM{Value: item{"n": n("2"), "set": s("owner-1")}}
		}), wantCorrupt: true},
		{name: "zero chunks", item: with(func(it item) {
			delete(it, "data")
			it["data_chunks"] = &types.AttributeValueMemberM{Value: item{"n": n("0"), "set": s("owner-1"), "sha256": b(strings.Repeat("x", 32))}}
		}), wantCorrupt: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ccf := &types.ConditionalCheckFailedException{Message: aws.String("failed"), Item: tt.item}
			paths := []struct {
				name string
				call func(*dynamostore.Store) (*idempotent.Record, error)
				api  *fakeAPI
			}{
				{
					name: "Get",
					api: &fakeAPI{get: func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
						return &dynamodb.GetItemOutput{Item: tt.item}, nil
					}},
					call: func(st *dynamostore.Store) (*idempotent.Record, error) { return st.Get(t.Context(), testKey) },
				},
				{
					name: "Acquire conflict with ALL_OLD item",
					api:  &fakeAPI{put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) { return nil, ccf }},
					call: func(st *dynamostore.Store) (*idempotent.Record, error) {
						r, ok, err := st.Acquire(t.Context(), held("owner-2"), now)
						if ok {
							t.Fatal("Acquire succeeded on a conflict")
						}
						return r, err
					},
				},
			}
			for _, p := range paths {
				t.Run(p.name, func(t *testing.T) {
					r, err := p.call(dynamostore.New(p.api, "idempotency"))
					if tt.wantCorrupt {
						if !errors.Is(err, idempotent.ErrCorruptRecord) {
							t.Fatalf("error = %v, want ErrCorruptRecord", err)
						}
						var se *idempotent.StoreError
						if errors.As(err, &se) {
							t.Fatalf("a corrupt record is reported as a store failure: %v", err)
						}
						if r != nil {
							t.Fatalf("record = %+v, want nil with the error", r)
						}
						return
					}
					if err != nil || r == nil {
						t.Fatalf("= %v, %v; want a record", r, err)
					}
					if tt.check != nil {
						tt.check(t, r)
					}
				})
			}
		})
	}
}

func TestErrors(t *testing.T) {
	throttled := &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "slow down"}
	ccf := &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
	failing := func(err error) *fakeAPI {
		return &fakeAPI{
			put:    func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) { return nil, err },
			get:    func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) { return nil, err },
			update: func(*dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) { return nil, err },
			del:    func(*dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) { return nil, err },
		}
	}
	ops := map[string]func(t *testing.T, st *dynamostore.Store) error{
		"acquire": func(t *testing.T, st *dynamostore.Store) error {
			_, _, err := st.Acquire(t.Context(), held("owner-1"), now)
			return err
		},
		"get": func(t *testing.T, st *dynamostore.Store) error {
			_, err := st.Get(t.Context(), testKey)
			return err
		},
		"complete": func(t *testing.T, st *dynamostore.Store) error {
			rec := held("owner-1")
			rec.Data = []byte("x")
			return st.Complete(t.Context(), rec)
		},
		"release": func(t *testing.T, st *dynamostore.Store) error {
			return st.Release(t.Context(), testKey, "owner-1")
		},
	}
	tests := []struct {
		name          string
		api           *fakeAPI
		op            string
		wantStoreErr  error // the StoreError's cause, matched with errors.Is
		wantLeaseLost bool
	}{
		{name: "acquire throttled", api: failing(throttled), op: "acquire", wantStoreErr: throttled},
		{name: "acquire deadline", api: failing(context.DeadlineExceeded), op: "acquire", wantStoreErr: context.DeadlineExceeded},
		{name: "acquire conflict, read fails", op: "acquire", wantStoreErr: throttled, api: &fakeAPI{
			put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) { return nil, ccf },
			get: func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) { return nil, throttled },
		}},
		{name: "get throttled", api: failing(throttled), op: "get", wantStoreErr: throttled},
		{name: "complete throttled", api: failing(throttled), op: "complete", wantStoreErr: throttled},
		{name: "release throttled", api: failing(throttled), op: "release", wantStoreErr: throttled},
		{name: "complete condition fails", api: failing(ccf), op: "complete", wantLeaseLost: true},
		{name: "release condition fails", api: failing(ccf), op: "release", wantLeaseLost: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ops[tt.op](t, dynamostore.New(tt.api, "idempotency"))
			var se *idempotent.StoreError
			if tt.wantLeaseLost {
				if !errors.Is(err, idempotent.ErrLeaseLost) || errors.As(err, &se) {
					t.Fatalf("error = %v, want ErrLeaseLost (not a StoreError)", err)
				}
				return
			}
			if !errors.As(err, &se) {
				t.Fatalf("error = %v (%T), want *idempotent.StoreError", err, err)
			}
			if se.Op != tt.op || se.RecordID != testKey || !errors.Is(err, tt.wantStoreErr) {
				t.Fatalf("StoreError = {Op %q, Key %q, Err %v}, want {%q, %q, %v}", se.Op, se.RecordID, se.Err, tt.op, testKey, tt.wantStoreErr)
			}
			if errors.Is(err, idempotent.ErrLeaseLost) {
				t.Fatal("a store failure matches ErrLeaseLost")
			}
		})
	}
}

// TestKeys checks the item key each layout writes and reads.
func TestKeys(t *testing.T) {
	tests := []struct {
		name string
		key  string
		opts []func(*dynamostore.Options)
		want item
	}{
		{name: "simple", key: "orders#abc", want: item{"id": s("orders#abc")}},
		{name: "simple, renamed", key: "orders#abc", opts: []func(*dynamostore.Options){func(o *dynamostore.Options) { o.KeyAttr = "key" }},
			want: item{"key": s("orders#abc")}},
		{name: "composite", key: "orders#abc", opts: []func(*dynamostore.Options){dynamostore.WithCompositeKey("")},
			want: item{"pk": s("idempotency#orders"), "sk": s("orders#abc")}},
		{name: "composite, name with #", key: "team#orders#abc", opts: []func(*dynamostore.Options){dynamostore.WithCompositeKey("")},
			want: item{"pk": s("idempotency#team#orders"), "sk": s("team#orders#abc")}},
		{name: "composite, key without #", key: "abc", opts: []func(*dynamostore.Options){dynamostore.WithCompositeKey("")},
			want: item{"pk": s("idempotency#abc"), "sk": s("abc")}},
		{name: "composite, static value", key: "orders#abc", opts: []func(*dynamostore.Options){dynamostore.WithCompositeKey("shared")},
			want: item{"pk": s("shared"), "sk": s("orders#abc")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{}
			st := dynamostore.New(api, "idempotency", tt.opts...)
			rec := held("owner-1")
			rec.ID = tt.key
			if _, _, err := st.Acquire(t.Context(), rec, now); err != nil {
				t.Fatal(err)
			}
			_, _ = st.Get(t.Context(), tt.key)
			_ = st.Complete(t.Context(), rec)
			_ = st.Release(t.Context(), tt.key, "owner-1")
			for attr, want := range tt.want {
				for op, got := range map[string]item{"PutItem": api.lastPut.Item, "GetItem": api.lastGet.Key,
					"UpdateItem": api.lastUpdate.Key, "DeleteItem": api.lastDelete.Key} {
					if g, ok := got[attr].(*types.AttributeValueMemberS); !ok || g.Value != want.(*types.AttributeValueMemberS).Value {
						t.Errorf("%s %s = %#v, want %#v", op, attr, got[attr], want)
					}
				}
			}
			for op, got := range map[string]item{"GetItem": api.lastGet.Key, "UpdateItem": api.lastUpdate.Key, "DeleteItem": api.lastDelete.Key} {
				if len(got) != len(tt.want) {
					t.Errorf("%s key has %d attributes, want %d", op, len(got), len(tt.want))
				}
			}
		})
	}
}
