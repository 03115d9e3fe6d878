package dynamostore_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/benchdata"
	"github.com/idemlambda/idemlambda/internal/dynamocost"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// metered returns a store on a fresh table of the local server whose client
// goes through a dynamocost.Meter, and the client and the meter.
func metered(t *testing.T, optFns ...func(*dynamostore.Options)) (*dynamostore.Store, *dynamodb.Client, string, *dynamocost.Meter) {
	t.Helper()
	// A transport of its own: no connection idle since an earlier test (the
	// server may close it as it is reused, and the retry would count).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	meter := &dynamocost.Meter{Next: tr}
	client := testdynamo.NewClient(testdynamo.Endpoint(t), func(o *dynamodb.Options) {
		o.HTTPClient = &http.Client{Transport: meter}
	})
	table := testdynamo.NewTable(t, client, optFns...)
	meter.Reset()
	return dynamostore.New(client, table, optFns...), client, table, meter
}

// TestResultSizes stores results from 200 B to 6 MB, JSON (compressible) and
// random (not), and replays them byte for byte, counting the calls and the
// write units of each step.
func TestResultSizes(t *testing.T) {
	const kb, mb = 1 << 10, 1 << 20
	tests := []struct {
		name   string
		data   []byte
		chunks int // chunk items the result needs
		// write units of Complete, within [minUnits, maxUnits]: what the
		// stored bytes cost, not what the plain result would.
		minUnits, maxUnits int
	}{
		{name: "200 B JSON", data: benchdata.JSON(200, 1), minUnits: 1, maxUnits: 1},
		{name: "20 KB JSON", data: benchdata.JSON(20*kb, 1), minUnits: 4, maxUnits: 6},
		{name: "300 KB JSON", data: benchdata.JSON(300*kb, 1), minUnits: 55, maxUnits: 70},
		{name: "1 MB JSON", data: benchdata.JSON(mb, 1), minUnits: 190, maxUnits: 230},
		{name: "6 MB JSON", data: benchdata.JSON(6*mb, 1), chunks: 4, minUnits: 1100, maxUnits: 1300},
		{name: "200 B random", data: benchdata.Random(200, 1), minUnits: 1, maxUnits: 1},
		{name: "20 KB random", data: benchdata.Random(20*kb, 1), minUnits: 21, maxUnits: 21},
		{name: "300 KB random", data: benchdata.Random(300*kb, 1), minUnits: 301, maxUnits: 301},
		{name: "1 MB random", data: benchdata.Random(mb, 1), chunks: 3, minUnits: 1025, maxUnits: 1030},
		{name: "6 MB random", data: benchdata.Random(6*mb, 1), chunks: 16, minUnits: 6145, maxUnits: 6165},
		{name: "empty", data: []byte{}, minUnits: 1, maxUnits: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, _, _, meter := metered(t)
			rec := held("owner-1")
			if _, ok, err := store.Acquire(t.Context(), rec, now); err != nil || !ok {
				t.Fatalf("Acquire = %v, %v", ok, err)
			}
			meter.Reset()
			rec.Status, rec.Data = idempotent.StatusCompleted, tt.data
			if err := store.Complete(t.Context(), rec); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			st := meter.Stats()
			wantCalls := map[string]int{"UpdateItem": 1}
			if tt.chunks > 0 {
				wantCalls["PutItem"] = tt.chunks
			}
			if !maps.Equal(st.Calls, wantCalls) {
				t.Errorf("Complete calls = %v, want %v", st.Calls, wantCalls)
			}
			if st.WriteUnits < tt.minUnits || st.WriteUnits > tt.maxUnits {
				t.Errorf("Complete write units = %d (%d item bytes), want %d..%d", st.WriteUnits, st.ItemBytes, tt.minUnits, tt.maxUnits)
			}

			meter.Reset()
			existing, ok, err := store.Acquire(t.Context(), held("owner-2"), now)
			if err != nil || ok || existing == nil {
				t.Fatalf("replay Acquire = %v, %v, %v", existing, ok, err)
			}
			if !bytes.Equal(existing.Data, tt.data) || existing.Data == nil {
				t.Fatalf("replayed %d bytes, want the %d stored", len(existing.Data), len(tt.data))
			}
			wantCalls = map[string]int{"PutItem": 1, "GetItem": 1 + tt.chunks}
			if st := meter.Stats(); !maps.Equal(st.Calls, wantCalls) {
				t.Errorf("replay calls = %v, want %v", st.Calls, wantCalls)
			}
			got, err := store.Get(t.Context(), testKey)
			if err != nil || !bytes.Equal(got.Data, tt.data) {
				t.Fatalf("Get = %d bytes, %v; want the %d stored", len(got.Data), err, len(tt.data))
			}
		})
	}
}

// chunkKey is the item key of chunk i of set for testKey (simple key).
func chunkKey(i int, set string) map[string]types.AttributeValue {
	return item{"id": s(fmt.Sprintf("%s#chunk#%d#%s", testKey, i, set))}
}

// TestCorruptData damages stored results in the table: every kind of damage
// is reported as idempotent.ErrCorruptRecord, by Acquire and by Get.
func TestCorruptData(t *testing.T) {
	large := benchdata.Random(1<<20, 2) // 3 chunks
	tests := []struct {
		name   string
		data   []byte
		damage func(t *testing.T, client *dynamodb.Client, table string)
	}{
		{name: "missing chunk", data: large, damage: func(t *testing.T, c *dynamodb.Client, table string) {
			must(t, errOf(c.DeleteItem(t.Context(), &dynamodb.DeleteItemInput{TableName: &table, Key: chunkKey(1, "owner-1")})))
		}},
		{name: "corrupt chunk", data: large, damage: func(t *testing.T, c *dynamodb.Client, table string) {
			out, err := c.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: &table, Key: chunkKey(2, "owner-1"), ConsistentRead: aws.Bool(true)})
			if err != nil || out.Item == nil {
				t.Fatalf("read chunk: %v, %v", out, err)
			}
			out.Item["data"].(*types.AttributeValueMemberB).Value[10] ^= 1
			must(t, errOf(c.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: &table, Item: out.Item})))
		}},
		{name: "chunk without data", data: large, damage: func(t *testing.T, c *dynamodb.Client, table string) {
			it := chunkKey(0, "owner-1")
			it["expiration"] = n("1800003600")
			must(t, errOf(c.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: &table, Item: it})))
		}},
		{name: "chunk set of another run", data: large, damage: func(t *testing.T, c *dynamodb.Client, table string) {
			editChunks(t, c, table, func(m item) { m["set"] = s("owner-0") })
		}},
		{name: "chunk count too high", data: large, damage: func(t *testing.T, c *dynamodb.Client, table string) {
			editChunks(t, c, table, func(m item) { m["n"] = n("4") })
		}},
		{name: "corrupt compressed data", data: benchdata.JSON(20<<10, 2), damage: func(t *testing.T, c *dynamodb.Client, table string) {
			update(t, c, table, "SET #d = :v", map[string]string{"#d": "data"}, item{":v": b("(\xb5/\xfd not zstd at all")})
		}},
		{name: "compressed data cut short", data: benchdata.JSON(20<<10, 2), damage: func(t *testing.T, c *dynamodb.Client, table string) {
			out, err := c.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: &table, Key: item{"id": s(testKey)}, ConsistentRead: aws.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			d := out.Item["data"].(*types.AttributeValueMemberB).Value
			update(t, c, table, "SET #d = :v", map[string]string{"#d": "data"}, item{":v": &types.AttributeValueMemberB{Value: d[:len(d)/2]}})
		}},
		{name: "unknown data format", data: benchdata.JSON(20<<10, 2), damage: func(t *testing.T, c *dynamodb.Client, table string) {
			update(t, c, table, "SET data_format = :v", nil, item{":v": s("brotli")})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, client, table, _ := metered(t)
			rec := held("owner-1")
			if _, ok, err := store.Acquire(t.Context(), rec, now); err != nil || !ok {
				t.Fatalf("Acquire = %v, %v", ok, err)
			}
			rec.Status, rec.Data = idempotent.StatusCompleted, tt.data
			if err := store.Complete(t.Context(), rec); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			tt.damage(t, client, table)
			_, _, err := store.Acquire(t.Context(), held("owner-2"), now)
			assertCorrupt(t, "Acquire", err)
			_, err = store.Get(t.Context(), testKey)
			assertCorrupt(t, "Get", err)
		})
	}
}

// editChunks rewrites the chunk manifest of the record testKey. (It writes
// the whole item back: dynalite falls over on nested update paths.)
func editChunks(t *testing.T, c *dynamodb.Client, table string, edit func(item)) {
	t.Helper()
	out, err := c.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: &table, Key: item{"id": s(testKey)}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	edit(out.Item["data_chunks"].(*types.AttributeValueMemberM).Value)
	must(t, errOf(c.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: &table, Item: out.Item})))
}

func assertCorrupt(t *testing.T, op string, err error) {
	t.Helper()
	var se *idempotent.StoreError
	if !errors.Is(err, idempotent.ErrCorruptRecord) || errors.As(err, &se) {
		t.Errorf("%s error = %v, want ErrCorruptRecord (not a StoreError)", op, err)
	}
}

func errOf[T any](_ T, err error) error { return err }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func update(t *testing.T, c *dynamodb.Client, table, expr string, names map[string]string, values item) {
	t.Helper()
	must(t, errOf(c.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{
		TableName: &table, Key: item{"id": s(testKey)}, UpdateExpression: &expr,
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})))
}

// TestChunkSets checks that chunks of different runs never mix: a record
// taken over after it expired replays the new run's result, a stale run's
// Complete leaves no chunks behind, and a payload mismatch or a dead record
// reads no chunks.
func TestChunkSets(t *testing.T) {
	store, client, table, meter := metered(t)
	first, second := benchdata.Random(1<<20, 3), benchdata.Random(1<<20, 4)

	rec := held("owner-1")
	if _, ok, err := store.Acquire(t.Context(), rec, now); err != nil || !ok {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	rec.Status, rec.Data = idempotent.StatusCompleted, first
	if err := store.Complete(t.Context(), rec); err != nil {
		t.Fatal(err)
	}

	// Another payload: the mismatch needs no chunk.
	meter.Reset()
	other := held("owner-2")
	other.Fingerprint = "other"
	existing, ok, err := store.Acquire(t.Context(), other, now)
	if err != nil || ok || existing.Data != nil || existing.Fingerprint != "fp" {
		t.Fatalf("mismatching Acquire = %+v, %v, %v; want the record without data", existing, ok, err)
	}
	if got, want := meter.Stats().Calls, map[string]int{"PutItem": 1, "GetItem": 1}; !maps.Equal(got, want) {
		t.Errorf("mismatching Acquire calls = %v, want %v", got, want)
	}

	// The record expires; its chunks may be gone already.
	later := now.Add(2 * time.Hour)
	must(t, errOf(client.DeleteItem(t.Context(), &dynamodb.DeleteItemInput{TableName: &table, Key: chunkKey(0, "owner-1")})))
	taker := held("owner-3")
	taker.Expiration = later.Add(time.Hour).Truncate(time.Second)
	taker.LeaseExpiration = later.Add(time.Minute).Truncate(time.Millisecond)
	if _, ok, err := store.Acquire(t.Context(), taker, later); err != nil || !ok {
		t.Fatalf("take over the expired record: %v, %v", ok, err)
	}

	// The first owner comes back late: its Complete fails and leaves no chunk.
	rec.Data = second
	if err := store.Complete(t.Context(), rec); !errors.Is(err, idempotent.ErrLeaseLost) {
		t.Fatalf("stale Complete = %v, want ErrLeaseLost", err)
	}
	taker.Status, taker.Data = idempotent.StatusCompleted, second
	if err := store.Complete(t.Context(), taker); err != nil {
		t.Fatal(err)
	}
	got, err := store.Get(t.Context(), testKey)
	if err != nil || !bytes.Equal(got.Data, second) {
		t.Fatalf("Get after takeover = %d bytes, %v; want the new run's result", len(got.Data), err)
	}
	for i := range 3 {
		out, err := client.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: &table, Key: chunkKey(i, "owner-1"), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		// Chunks 1 and 2 of the first run stay (unreachable, expiring with
		// their TTL): the late Complete wrote the same keys and deleted
		// them again, as nothing referenced them.
		if len(out.Item) != 0 {
			t.Errorf("chunk %d of the stale run is still there", i)
		}
	}
}

// TestCompleteLeavesOnlyItsShape completes records whose Acquire wrote data
// of its own (compressed, so with a format) or none, with results of every
// stored shape: the completed item holds exactly the attributes of its shape
// (Complete removes the lease and whatever data attributes Acquire may have
// written that the shape does not set), and reads back as the result.
func TestCompleteLeavesOnlyItsShape(t *testing.T) {
	const kb, mb = 1 << 10, 1 << 20
	base := []string{"id", "status", "expiration", "owner", "validation"}
	results := []struct {
		name  string
		data  []byte
		attrs []string
	}{
		{name: "plain", data: benchdata.JSON(200, 1), attrs: []string{"data"}},
		{name: "compressed", data: benchdata.JSON(20*kb, 1), attrs: []string{"data", "data_format"}},
		{name: "chunked", data: benchdata.Random(mb, 1), attrs: []string{"data_chunks"}},
		{name: "chunked compressed", data: benchdata.JSON(6*mb, 1), attrs: []string{"data_chunks", "data_format"}},
	}
	acquired := []struct {
		name string
		data []byte
	}{
		{name: "acquired without data"},
		{name: "acquired with compressed data", data: benchdata.JSON(20*kb, 2)},
	}
	for _, acq := range acquired {
		for _, res := range results {
			t.Run(acq.name+", "+res.name, func(t *testing.T) {
				store, client, table, _ := metered(t)
				rec := held("owner-1")
				rec.Data = acq.data
				if _, ok, err := store.Acquire(t.Context(), rec, now); err != nil || !ok {
					t.Fatalf("Acquire = %v, %v", ok, err)
				}
				if acq.data != nil {
					got, err := store.Get(t.Context(), testKey)
					if err != nil || !bytes.Equal(got.Data, acq.data) {
						t.Fatalf("Get after Acquire = %v, %v; want its data", got, err)
					}
				}
				rec.Status, rec.Data = idempotent.StatusCompleted, res.data
				if err := store.Complete(t.Context(), rec); err != nil {
					t.Fatalf("Complete: %v", err)
				}
				out, err := client.GetItem(t.Context(), &dynamodb.GetItemInput{
					TableName: aws.String(table), Key: item{"id": s(testKey)}, ConsistentRead: aws.Bool(true),
				})
				if err != nil {
					t.Fatal(err)
				}
				want := map[string]bool{}
				for _, a := range append(base, res.attrs...) {
					want[a] = true
				}
				got := map[string]bool{}
				for a := range out.Item {
					got[a] = true
				}
				if !maps.Equal(got, want) {
					t.Fatalf("completed item has %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
				}
				rd, err := store.Get(t.Context(), testKey)
				if err != nil || !bytes.Equal(rd.Data, res.data) {
					t.Fatalf("Get = %v; want the %d bytes completed", err, len(res.data))
				}
			})
		}
	}
}
