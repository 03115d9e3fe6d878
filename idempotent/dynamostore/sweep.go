package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
)

// SweepOptions configures Store.Sweep.
type SweepOptions struct {
	// Now is the sweep's clock reading; zero means time.Now().
	Now time.Time
	// Grace is how long an item must have been dead (expiration <= Now -
	// Grace) before it is deleted. Negative is a *idempotent.ConfigError.
	Grace time.Duration
	// PageSize bounds the items each Scan page examines; 0 is DynamoDB's
	// default (1 MB of data).
	PageSize int
	// Progress, if set, is called after each page with the totals so far.
	Progress func(SweepProgress)
}

// SweepProgress is the running total of a sweep.
type SweepProgress struct {
	// Pages, Scanned and Deleted count Scan pages, items examined and items
	// deleted; Changed counts items that were written again between the
	// Scan and their delete (and were left).
	Pages, Scanned, Deleted, Changed int
	// Capacity is the read capacity the Scans consumed.
	Capacity float64
}

// Sweep deletes records and chunk items that have been dead for longer than
// opts.Grace: for tables whose TTL does not delete them (an MRSC global
// table without TTL, a local server). It scans the table page by page
// (filtered on the expiration attribute; on a composite-key table also on
// the idempotency partitions) and deletes each item with a DeleteItem
// conditional on expiration <= the cutoff, so an item written again
// meanwhile stays. It returns the totals and stops at the first failure.
func (s *Store) Sweep(ctx context.Context, opts SweepOptions) (SweepProgress, error) {
	var p SweepProgress
	if s.err != nil {
		return p, s.err
	}
	if opts.Grace < 0 {
		return p, &idempotent.ConfigError{Option: "SweepOptions.Grace", Err: errors.New("negative")}
	}
	admin, ok := s.raw.(AdminAPI)
	if !ok {
		return p, &idempotent.ConfigError{Option: "dynamostore.New", Err: fmt.Errorf("client %T has no Scan", s.raw)}
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	cutoff := epoch(now.Add(-opts.Grace).Unix())
	var n exprNames
	filter := n.ref(s.opts.ExpirationAttr) + " <= :c"
	values := map[string]types.AttributeValue{":c": cutoff}
	if s.opts.CompositeKey {
		prefix := s.opts.PartitionKeyValue
		if prefix == "" {
			prefix = DefaultPartitionPrefix
		}
		filter += " AND begins_with(" + n.ref(s.opts.PartitionKeyAttr) + ", :p)"
		values[":p"] = &types.AttributeValueMemberS{Value: prefix}
	}
	var limit *int32
	if opts.PageSize > 0 {
		limit = aws.Int32(int32(min(opts.PageSize, 1<<30)))
	}
	var dn exprNames
	delCond := aws.String(dn.ref(s.opts.ExpirationAttr) + " <= :c")
	var start map[string]types.AttributeValue
	for {
		out, err := admin.Scan(ctx, &dynamodb.ScanInput{
			TableName: s.table, FilterExpression: aws.String(filter),
			ExpressionAttributeNames: n.names(), ExpressionAttributeValues: values,
			ExclusiveStartKey: start, Limit: limit, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		})
		if err != nil {
			return p, &idempotent.StoreError{Op: "sweep", Err: err}
		}
		p.Pages++
		p.Scanned += int(out.ScannedCount)
		if out.ConsumedCapacity != nil {
			p.Capacity += aws.ToFloat64(out.ConsumedCapacity.CapacityUnits)
		}
		for _, item := range out.Items {
			key := map[string]types.AttributeValue{}
			for _, k := range s.keyAttrs() {
				key[k] = item[k]
			}
			_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName: s.table, Key: key, ConditionExpression: delCond,
				ExpressionAttributeNames: dn.names(), ExpressionAttributeValues: map[string]types.AttributeValue{":c": cutoff},
			})
			var ccf *types.ConditionalCheckFailedException
			switch {
			case errors.As(err, &ccf):
				p.Changed++
			case err != nil:
				return p, &idempotent.StoreError{Op: "sweep", Err: err}
			default:
				p.Deleted++
			}
		}
		if opts.Progress != nil {
			opts.Progress(p)
		}
		if start = out.LastEvaluatedKey; len(start) == 0 {
			return p, nil
		}
	}
}

// keyAttrs are the primary key attributes of the table.
func (s *Store) keyAttrs() []string {
	if s.opts.CompositeKey {
		return []string{s.opts.PartitionKeyAttr, s.opts.SortKeyAttr}
	}
	return []string{s.opts.KeyAttr}
}
