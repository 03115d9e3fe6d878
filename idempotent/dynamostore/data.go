package dynamostore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/zdata"
)

// Results of any size (contract §6).
//
// A result is stored in one of three forms, told apart by the record's
// attributes so that every record ever written still decodes:
//
//   - plain: the bytes in DataAttr, no DataFormatAttr (all records written
//     before compression existed, and results below CompressThreshold or
//     that do not shrink);
//   - compressed: a zstd frame in DataAttr, DataFormatAttr = "zstd";
//   - chunked: stored bytes (plain or compressed, as DataFormatAttr says)
//     larger than maxItemData are split into chunk items written before the
//     record turns COMPLETED; the record carries no DataAttr but ChunksAttr =
//     {n, set, sha256}. Chunk i lives at "<id>#chunk#<i>#<set>" (same
//     partition key in a composite-key table), set being the owner token of
//     the run that wrote it, so chunks of a stale run or an earlier life of
//     the key are never read: they are unreachable, and expire with the TTL
//     they carry (the record's expiration).
//
// A missing or altered chunk, a digest that does not match, or data that does
// not decompress is reported as idempotent.ErrCorruptRecord.

const (
	// maxItemData is the most result bytes one item holds, inline or as a
	// chunk: DynamoDB's item limit (400 KB = 409,600 bytes, names and
	// values) less 16 KB of headroom for the key and the other attributes.
	maxItemData = 384 << 10
	// chunkWorkers bounds the chunk requests in flight per operation.
	chunkWorkers = 8

	// Keys of the ChunksAttr map.
	chunkCountKey  = "n"
	chunkSetKey    = "set"
	chunkDigestKey = "sha256"
)

// stored is a result as it goes to the table: the bytes and their format.
type stored struct {
	data   []byte
	format string // "" (plain) or zdata.Zstd
}

// chunked reports whether the stored bytes need chunk items.
func (st stored) chunked() bool { return len(st.data) > maxItemData }

// chunkManifest is the decoded ChunksAttr of a record.
type chunkManifest struct {
	n      int
	set    string
	digest []byte
	format string
}

// encodeData compresses data when it is at least the threshold long and
// shrinks (zdata, shared with the Redis store); it never fails for lack of
// space (large results become chunks).
func (s *Store) encodeData(data []byte) (stored, error) {
	th := s.opts.CompressThreshold
	if th == 0 {
		th = DefaultCompressThreshold
	}
	b, format, err := zdata.Encode(data, th)
	return stored{data: b, format: format}, err
}

// decompress is the inverse of encodeData for the bytes read back.
func (s *Store) decompress(key string, data []byte, format string) ([]byte, error) {
	out, err := zdata.Decode(data, format)
	switch {
	case errors.Is(err, zdata.ErrUnknownFormat):
		return nil, corrupt(key, s.opts.DataFormatAttr, "unknown data format %q", format)
	case errors.Is(err, zdata.ErrUndecodable):
		return nil, corrupt(key, s.opts.DataAttr, "%v", err)
	}
	return out, err
}

// decodeData reads the stored result of item: the data itself, or, for a
// chunked record, the manifest of its chunks (read by readChunks). ok is
// false when the item holds no result at all.
func (s *Store) decodeData(key string, item map[string]types.AttributeValue) (data []byte, man *chunkManifest, ok bool, err error) {
	o := &s.opts
	format, err := str(item, key, o.DataFormatAttr, false)
	if err != nil {
		return nil, nil, false, err
	}
	if format != "" && format != zdata.Zstd {
		return nil, nil, false, corrupt(key, o.DataFormatAttr, "unknown data format %q", format)
	}
	if av, found := item[o.ChunksAttr]; found {
		man, err := s.decodeManifest(key, av)
		if err != nil {
			return nil, nil, false, err
		}
		man.format = format
		return nil, man, true, nil
	}
	av, found := item[o.DataAttr]
	if !found {
		return nil, nil, false, nil
	}
	b, isB := av.(*types.AttributeValueMemberB)
	if !isB {
		return nil, nil, false, corrupt(key, o.DataAttr, "want type B, got %s", avType(av))
	}
	data, err = s.decompress(key, b.Value, format)
	return data, nil, true, err
}

func (s *Store) decodeManifest(key string, av types.AttributeValue) (*chunkManifest, error) {
	attr := s.opts.ChunksAttr
	m, ok := av.(*types.AttributeValueMemberM)
	if !ok {
		return nil, corrupt(key, attr, "want type M, got %s", avType(av))
	}
	n, ok, err := num(m.Value, key, chunkCountKey)
	if err != nil {
		return nil, err
	}
	if !ok || n < 1 || n > zdata.MaxDecoded/maxItemData+1 {
		return nil, corrupt(key, attr, "chunk count %d out of range", n)
	}
	set, err := str(m.Value, key, chunkSetKey, true)
	if err != nil {
		return nil, err
	}
	d, ok := m.Value[chunkDigestKey].(*types.AttributeValueMemberB)
	if !ok || len(d.Value) != sha256.Size {
		return nil, corrupt(key, attr, "missing or malformed %s digest", chunkDigestKey)
	}
	return &chunkManifest{n: int(n), set: set, digest: d.Value}, nil
}

// chunkID is the record id of chunk i of set for record key.
func chunkID(key string, i int, set string) string {
	return key + "#chunk#" + strconv.Itoa(i) + "#" + set
}

// chunkKey is the primary key of chunk i of set: in a composite-key table it
// shares the record's partition.
func (s *Store) chunkKey(key string, i int, set string) map[string]types.AttributeValue {
	id := chunkID(key, i, set)
	if s.opts.CompositeKey {
		return map[string]types.AttributeValue{
			s.opts.PartitionKeyAttr: &types.AttributeValueMemberS{Value: s.opts.partitionValue(key)},
			s.opts.SortKeyAttr:      &types.AttributeValueMemberS{Value: id},
		}
	}
	return map[string]types.AttributeValue{s.opts.KeyAttr: &types.AttributeValueMemberS{Value: id}}
}

// split cuts data into parts of at most maxItemData bytes.
func split(data []byte) [][]byte {
	parts := make([][]byte, 0, (len(data)+maxItemData-1)/maxItemData)
	for len(data) > maxItemData {
		parts = append(parts, data[:maxItemData])
		data = data[maxItemData:]
	}
	return append(parts, data)
}

// chunkCleanupTimeout bounds the deletion of chunks no record references.
const chunkCleanupTimeout = 10 * time.Second

// writeChunks puts the chunk items of st for record key, expiring at exp,
// and returns the ChunksAttr value that references them.
func (s *Store) writeChunks(ctx context.Context, key, owner string, st stored, exp int64) (types.AttributeValue, func(), error) {
	set := owner
	if set == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		set = hex.EncodeToString(b[:])
	}
	parts := split(st.data)
	err := parallel(ctx, len(parts), func(ctx context.Context, i int) error {
		item := s.chunkKey(key, i, set)
		item[s.opts.DataAttr] = &types.AttributeValueMemberB{Value: parts[i]}
		item[s.opts.ExpirationAttr] = epoch(exp)
		_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: s.table, Item: item})
		return err
	})
	cleanup := func() {
		// Bounded: the store may be failing, which is why we clean up.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), chunkCleanupTimeout)
		defer cancel()
		s.deleteChunks(cctx, key, set, len(parts))
	}
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	sum := sha256.Sum256(st.data)
	man := &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
		chunkCountKey:  &types.AttributeValueMemberN{Value: strconv.Itoa(len(parts))},
		chunkSetKey:    &types.AttributeValueMemberS{Value: set},
		chunkDigestKey: &types.AttributeValueMemberB{Value: sum[:]},
	}}
	return man, cleanup, nil
}

// deleteChunks removes chunk items that no record references (after a failed
// Complete), best effort: whatever stays expires with its TTL and is
// unreachable anyway.
func (s *Store) deleteChunks(ctx context.Context, key, set string, n int) {
	_ = parallel(ctx, n, func(ctx context.Context, i int) error {
		_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: s.table, Key: s.chunkKey(key, i, set)})
		return err
	})
}

// readChunks reads the chunks of man with consistent GetItems (in parallel),
// checks the digest and decompresses.
func (s *Store) readChunks(ctx context.Context, op, key string, man *chunkManifest) ([]byte, error) {
	parts := make([][]byte, man.n)
	var corruptErr error
	var mu sync.Mutex
	err := parallel(ctx, man.n, func(ctx context.Context, i int) error {
		out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      s.table,
			Key:            s.chunkKey(key, i, man.set),
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return err
		}
		var cerr error
		if b, ok := out.Item[s.opts.DataAttr].(*types.AttributeValueMemberB); ok {
			parts[i] = b.Value
		} else if len(out.Item) == 0 {
			cerr = corrupt(key, s.opts.ChunksAttr, "chunk %d of %d (set %s) is missing", i, man.n, man.set)
		} else {
			cerr = corrupt(key, s.opts.ChunksAttr, "chunk %d of %d (set %s) has no %s of type B", i, man.n, man.set, s.opts.DataAttr)
		}
		if cerr != nil {
			mu.Lock()
			if corruptErr == nil {
				corruptErr = cerr
			}
			mu.Unlock()
			return cerr
		}
		return nil
	})
	if corruptErr != nil {
		return nil, corruptErr
	}
	if err != nil {
		return nil, &idempotent.StoreError{Op: op, RecordID: key, Err: err}
	}
	data := bytes.Join(parts, nil)
	if sum := sha256.Sum256(data); !bytes.Equal(sum[:], man.digest) {
		return nil, corrupt(key, s.opts.ChunksAttr, "the %d chunks of set %s do not match their digest", man.n, man.set)
	}
	return s.decompress(key, data, man.format)
}

// parallel runs fn for 0..n-1 on up to chunkWorkers goroutines and returns
// the first error; the first error cancels the calls not yet started.
func parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	if n == 1 {
		return fn(ctx, 0)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan int)
	)
	for range min(n, chunkWorkers) {
		wg.Go(func() {
			for i := range next {
				if ctx.Err() != nil {
					continue
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel(err) })
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = context.Cause(ctx)
	}
	return first
}

var errTooLargeForAcquire = errors.New("a result larger than one item can only be stored by Complete")
