package dynamostore

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
)

// AdminAPI is the part of the DynamoDB client List needs besides API: Scan
// for a simple-key table, Query for a composite-key one. *dynamodb.Client
// satisfies it. A client that does not is reported by List as a
// *idempotent.ConfigError.
type AdminAPI interface {
	Scan(ctx context.Context, params *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	Query(ctx context.Context, params *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var (
	_ AdminAPI           = (*dynamodb.Client)(nil)
	_ idempotent.Lister  = (*Store)(nil)
	_ idempotent.Deleter = (*Store)(nil)
)

const (
	opList    = "list"
	opInspect = "inspect"
	opDelete  = "delete"
)

// List implements idempotent.Lister: one page of a Scan (simple key) or a
// Query of the name's partition (composite key), keeping items whose id
// starts with "<name>#" and that have a status (chunk items have none). Its
// read capacity is reported in ListPage.Capacity. Items that do not decode
// are counted in Foreign.
func (s *Store) List(ctx context.Context, q idempotent.ListQuery) (*idempotent.ListPage, error) {
	if s.err != nil {
		return nil, s.err
	}
	if q.Name == "" {
		return nil, &idempotent.ConfigError{Option: "ListQuery.Name", Err: errors.New("empty name")}
	}
	admin, ok := s.raw.(AdminAPI)
	if !ok {
		return nil, &idempotent.ConfigError{Option: "dynamostore.New", Err: fmt.Errorf("client %T has no Scan and Query", s.raw)}
	}
	var n exprNames
	filter := "begins_with(" + n.ref(s.opts.idAttr()) + ", :p) AND attribute_exists(" + n.ref(s.opts.StatusAttr) + ")"
	values := map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: q.Name + "#"}}
	var start map[string]types.AttributeValue
	if q.Cursor != "" {
		// The cursor is the id of the last item examined, which may be a
		// chunk's: its partition is the name's, not derived from the id.
		start = s.itemKey(q.Cursor)
		if s.opts.CompositeKey {
			start[s.opts.PartitionKeyAttr] = &types.AttributeValueMemberS{Value: s.opts.partitionValue(q.Name + "#")}
		}
	}
	var limit *int32
	if q.Limit > 0 {
		limit = aws.Int32(int32(min(q.Limit, 1<<30)))
	}
	var (
		items   []map[string]types.AttributeValue
		last    map[string]types.AttributeValue
		scanned int32
		cc      *types.ConsumedCapacity
	)
	if s.opts.CompositeKey {
		var kn exprNames
		keyCond := kn.ref(s.opts.PartitionKeyAttr) + " = :k AND begins_with(" + kn.ref(s.opts.SortKeyAttr) + ", :p)"
		qfilter := "attribute_exists(" + kn.ref(s.opts.StatusAttr) + ")"
		values[":k"] = &types.AttributeValueMemberS{Value: s.opts.partitionValue(q.Name + "#")}
		out, err := admin.Query(ctx, &dynamodb.QueryInput{
			TableName: s.table, KeyConditionExpression: aws.String(keyCond),
			FilterExpression:          aws.String(qfilter),
			ExpressionAttributeNames:  kn.names(),
			ExpressionAttributeValues: values, ExclusiveStartKey: start, Limit: limit,
			ConsistentRead: aws.Bool(true), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		})
		if err != nil {
			return nil, &idempotent.StoreError{Op: opList, RecordID: q.Name, Err: err}
		}
		items, last, scanned, cc = out.Items, out.LastEvaluatedKey, out.ScannedCount, out.ConsumedCapacity
	} else {
		out, err := admin.Scan(ctx, &dynamodb.ScanInput{
			TableName: s.table, FilterExpression: aws.String(filter),
			ExpressionAttributeNames: n.names(), ExpressionAttributeValues: values,
			ExclusiveStartKey: start, Limit: limit,
			ConsistentRead: aws.Bool(true), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		})
		if err != nil {
			return nil, &idempotent.StoreError{Op: opList, RecordID: q.Name, Err: err}
		}
		items, last, scanned, cc = out.Items, out.LastEvaluatedKey, out.ScannedCount, out.ConsumedCapacity
	}
	page := &idempotent.ListPage{Scanned: int(scanned)}
	if cc != nil {
		page.Capacity = aws.ToFloat64(cc.CapacityUnits)
	}
	if id, ok := last[s.opts.idAttr()].(*types.AttributeValueMemberS); ok {
		page.Next = id.Value
	}
	for _, item := range items {
		rec, man, err := s.decodeRecord(item)
		if err != nil {
			page.Foreign++
			continue
		}
		page.Records = append(page.Records, s.info(rec, man, item))
	}
	return page, nil
}

// info is the RecordInfo of a decoded item; the size of a chunked result is
// its chunk count times the item limit at most, reported as the count only.
func (s *Store) info(rec *idempotent.Record, man *chunkManifest, item map[string]types.AttributeValue) idempotent.RecordInfo {
	info := idempotent.RecordInfo{Record: *rec}
	info.Record.Data = nil
	if b, ok := item[s.opts.DataAttr].(*types.AttributeValueMemberB); ok {
		info.StoredBytes = len(b.Value)
	}
	if man != nil {
		info.Chunks = man.n
	}
	return info
}

// Inspect implements idempotent.Lister with one consistent GetItem, plus
// one GetItem per chunk (projected to the data) for a chunked result's size.
func (s *Store) Inspect(ctx context.Context, id string) (*idempotent.RecordInfo, error) {
	if s.err != nil {
		return nil, s.err
	}
	item, err := s.getItem(ctx, opInspect, id)
	if err != nil || len(item) == 0 {
		return nil, err
	}
	rec, man, err := s.decodeRecord(item)
	if err != nil {
		return nil, err
	}
	info := s.info(rec, man, item)
	if man != nil {
		var pn exprNames
		proj := aws.String(pn.ref(s.opts.DataAttr))
		for i := range man.n {
			out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
				TableName: s.table, Key: s.chunkKey(id, i, man.set), ConsistentRead: aws.Bool(true),
				ProjectionExpression: proj, ExpressionAttributeNames: pn.names(),
			})
			if err != nil {
				return nil, &idempotent.StoreError{Op: opInspect, RecordID: id, Err: err}
			}
			if b, ok := out.Item[s.opts.DataAttr].(*types.AttributeValueMemberB); ok {
				info.StoredBytes += len(b.Value)
			}
		}
	}
	return &info, nil
}

// Delete implements idempotent.Deleter with one DeleteItem conditional on
// the status, owner, expiration (and, in progress, lease end) of rec; then
// the chunks of the deleted item, if any, are deleted too (best effort: any
// left are unreachable and expire with their TTL).
func (s *Store) Delete(ctx context.Context, rec idempotent.Record) error {
	if s.err != nil {
		return s.err
	}
	var n exprNames
	cond := n.ref(s.opts.StatusAttr) + " = :t AND " + n.ref(s.opts.ExpirationAttr) + " = :e"
	values := map[string]types.AttributeValue{
		":t": &types.AttributeValueMemberS{Value: string(rec.Status)},
		":e": epoch(rec.Expiration.Unix()),
	}
	if rec.Owner == "" {
		cond += " AND attribute_not_exists(" + n.ref(s.opts.OwnerAttr) + ")"
	} else {
		cond += " AND " + n.ref(s.opts.OwnerAttr) + " = :o"
		values[":o"] = &types.AttributeValueMemberS{Value: rec.Owner}
	}
	if rec.Status == idempotent.StatusInProgress {
		cond += " AND " + n.ref(s.opts.LeaseAttr) + " = :m"
		values[":m"] = epoch(rec.LeaseExpiration.UnixMilli())
	}
	out, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: s.table, Key: s.itemKey(rec.ID),
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: n.names(), ExpressionAttributeValues: values,
		ReturnValues: types.ReturnValueAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return &idempotent.RecordChangedError{RecordID: rec.ID}
	}
	if err != nil {
		return &idempotent.StoreError{Op: opDelete, RecordID: rec.ID, Err: err}
	}
	if av, ok := out.Attributes[s.opts.ChunksAttr]; ok {
		if man, err := s.decodeManifest(rec.ID, av); err == nil {
			s.deleteChunks(ctx, rec.ID, man.set, man.n)
		}
	}
	return nil
}
