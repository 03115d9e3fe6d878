package dynamostore

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
)

// Store operation names of the read-first path.
const (
	opPeek      = "peek"
	opPeekBatch = "peek-batch"
)

// maxBatchGet is the most keys one BatchGetItem takes.
const maxBatchGet = 100

// BatchGetter is the BatchGetItem call of the DynamoDB client, which
// PeekBatch needs. It is not part of API, so that fakes written for API keep
// compiling; *dynamodb.Client has it, and a client without it makes
// PeekBatch read nothing (every record goes the normal way).
type BatchGetter interface {
	BatchGetItem(ctx context.Context, params *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

var (
	_ idempotent.ReplayReader = (*Store)(nil)
	_ idempotent.BatchReader  = (*Store)(nil)
	_ BatchGetter             = (*dynamodb.Client)(nil)
)

// Peek implements idempotent.ReplayReader with one eventually consistent
// GetItem: 0.5 read units per 4 KB of item, against the write units of the
// whole item that a failed conditional write consumes. The chunks of a
// chunked result are read as Get reads them.
func (s *Store) Peek(ctx context.Context, key string) (*idempotent.Record, error) {
	if s.err != nil {
		return nil, s.err
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: s.table,
		Key:       s.itemKey(key),
	})
	if err != nil {
		return nil, &idempotent.StoreError{Op: opPeek, RecordID: key, Err: err}
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	rec, man, err := s.decodeRecord(out.Item)
	if err != nil {
		return nil, err
	}
	if man != nil {
		if rec.Data, err = s.readChunks(ctx, opPeek, rec.ID, man); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

// PeekBatch implements idempotent.BatchReader with one eventually
// consistent BatchGetItem per 100 distinct keys. Keys DynamoDB leaves
// unprocessed, records whose result is chunked and items that do not decode
// are left out of the answer, so their calls go the normal way (which reads
// and reports them properly).
func (s *Store) PeekBatch(ctx context.Context, keys []string) (map[string]*idempotent.Record, error) {
	if s.err != nil {
		return nil, s.err
	}
	bg, ok := s.raw.(BatchGetter) // the raw client: conflictRetry wraps only API
	if !ok {
		return map[string]*idempotent.Record{}, nil
	}
	recs := make(map[string]*idempotent.Record, len(keys))
	var chunk []map[string]types.AttributeValue
	var asked []string
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		out, err := bg.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{*s.table: {Keys: chunk}},
		})
		if err != nil {
			return &idempotent.StoreError{Op: opPeekBatch, RecordID: asked[0], Err: err}
		}
		for _, k := range asked {
			recs[k] = nil // absent unless returned or unprocessed
		}
		for _, item := range out.Responses[*s.table] {
			rec, man, err := s.decodeRecord(item)
			if err != nil {
				continue // left to the normal path, which reports it
			}
			if _, mine := recs[rec.ID]; !mine {
				continue
			}
			if man != nil {
				delete(recs, rec.ID) // chunked: read the normal way
				continue
			}
			recs[rec.ID] = rec
		}
		for _, ka := range out.UnprocessedKeys[*s.table].Keys {
			if av, ok := ka[s.opts.idAttr()].(*types.AttributeValueMemberS); ok {
				delete(recs, av.Value)
			}
		}
		chunk, asked = chunk[:0], asked[:0]
		return nil
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if k == "" || seen[k] {
			continue // BatchGetItem rejects duplicate keys
		}
		seen[k] = true
		chunk = append(chunk, s.itemKey(k))
		asked = append(asked, k)
		if len(chunk) == maxBatchGet {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return recs, nil
}
