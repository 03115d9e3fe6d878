package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
)

// API is the part of the DynamoDB client the Store calls. *dynamodb.Client
// satisfies it; tests can pass a fake.
type API interface {
	PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, params *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, params *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ API = (*dynamodb.Client)(nil)

// Store is an idempotent.Store backed by one DynamoDB table. It is safe for
// concurrent use; it holds no state besides its configuration, so any number
// of Stores (in any number of processes) may share a table.
type Store struct {
	client API // raw wrapped in conflictRetry
	// raw is the client as given (List looks for Scan and Query on it).
	raw   API
	table *string
	opts  Options
	// err is the configuration error every call returns, or nil.
	err error

	// Expressions and their name maps, built once. The maps are only read.
	acquireCond      *string
	acquireNames     map[string]string
	complete         [4]completeExpr // by shape
	releaseCond      *string
	releaseNames     map[string]string
	completedByProj  *string
	completedByNames map[string]string
}

// completeExpr is Complete's request for one shape of data.
type completeExpr struct {
	upd, cond *string
	names     map[string]string
}

var _ idempotent.Store = (*Store)(nil)

// Store operation names, as reported in idempotent.StoreError.Op.
const (
	opAcquire  = "acquire"
	opGet      = "get"
	opComplete = "complete"
	opRelease  = "release"
)

// Constant expression values.
var (
	avInProgress = &types.AttributeValueMemberS{Value: string(idempotent.StatusInProgress)}
	avCompleted  = &types.AttributeValueMemberS{Value: string(idempotent.StatusCompleted)}
)

// New returns a Store that keeps its records in table through client.
// Options start from the defaults (see Options) and optFns are applied in
// order.
//
// The attribute names must be non-empty and distinct (a partition key that
// is also the sort key, or two record attributes with one name, would
// corrupt records), and client and table must be given. New checks this at
// once; a Store built with a mistake fails every call with that
// *idempotent.ConfigError — so the guarded function never runs — and Err
// reports it, for a check at start-up. (New keeps the error-free signature
// of the SDK's constructors, and the core treats a bad option the same way.)
func New(client API, table string, optFns ...func(*Options)) *Store {
	o := resolveOptions(optFns)
	s := &Store{client: client, raw: client, table: aws.String(table), opts: o}
	if client != nil {
		s.client = conflictRetry{client}
	}
	s.err = o.validate()
	if client == nil {
		s.err = errors.Join(s.err, &idempotent.ConfigError{Option: "dynamostore.New", Err: errors.New("nil client")})
	}
	if table == "" {
		s.err = errors.Join(s.err, &idempotent.ConfigError{Option: "dynamostore.New", Err: errors.New("empty table name")})
	}

	// Attributes are named bare where DynamoDB allows it (expr.go), and
	// value placeholders are one letter: every byte is sent on every call
	// and parsed by the server.
	//
	// The acquire condition is the contract's "no record, or expired, or
	// INPROGRESS with its lease ended", written without parentheses and
	// with the lease clause first: AND binds tighter than OR in DynamoDB's
	// documented precedence, so the meaning is the same, and the local
	// server's parser backtracks far less (it parsed the parenthesised form
	// in ~2.6x the time of the floor's condition, this one in about the
	// same; docs/performance.md, "Where the time goes"). It names every
	// attribute by an alias, bare names included: that parser reads each
	// OR term up to four times and each name in it twice more, letter by
	// letter, so a two-character alias instead of "in_progress_expiration"
	// and "expiration" saves it more than the longer names map costs
	// (~100 k fewer server instructions per new key, of ~1.9 M).
	an := exprNames{all: true}
	s.acquireCond = aws.String(an.ref(o.StatusAttr) + " = :i AND " + an.ref(o.LeaseAttr) + " <= :m OR attribute_not_exists(" +
		an.ref(o.idAttr()) + ") OR " + an.ref(o.ExpirationAttr) + " <= :s")
	s.acquireNames = an.names()

	// A record Complete may change is the item this run's Acquire put
	// (PutItem replaces the whole item, and the condition requires our
	// owner and INPROGRESS): the key, status, expiration, lease, owner and
	// fingerprint, plus the data and its format when Acquire was given
	// data. Never chunks. So each shape sets its attributes, removes the
	// lease, and removes only the data attributes Acquire may have written
	// that the shape does not set. DynamoDB rejects unused names, so each
	// shape has its own. Every name is aliased here too: its update
	// expression is read once through, so the gain is small (~10 k server
	// instructions per new key, for 30 more bytes), but it is one.
	shapes := [4]struct{ set, remove []string }{
		shapePlain:             {[]string{o.DataAttr}, []string{o.DataFormatAttr}},
		shapeCompressed:        {[]string{o.DataAttr, o.DataFormatAttr}, nil},
		shapeChunked:           {[]string{o.ChunksAttr}, []string{o.DataAttr, o.DataFormatAttr}},
		shapeChunkedCompressed: {[]string{o.ChunksAttr, o.DataFormatAttr}, []string{o.DataAttr}},
	}
	placeholder := map[string]string{o.DataAttr: ":d", o.DataFormatAttr: ":f", o.ChunksAttr: ":k"}
	for i, sh := range shapes {
		cn := exprNames{all: true}
		cond := cn.ref(o.StatusAttr) + " = :i AND " + cn.ref(o.OwnerAttr) + " = :o"
		upd := "SET " + cn.ref(o.StatusAttr) + " = :c, " + cn.ref(o.ExpirationAttr) + " = :e"
		for _, a := range sh.set {
			upd += ", " + cn.ref(a) + " = " + placeholder[a]
		}
		upd += " REMOVE " + cn.ref(o.LeaseAttr)
		for _, a := range sh.remove {
			upd += ", " + cn.ref(a)
		}
		s.complete[i] = completeExpr{upd: aws.String(upd), cond: aws.String(cond), names: cn.names()}
	}

	var rn exprNames
	s.releaseCond = aws.String(rn.ref(o.OwnerAttr) + " = :o AND " + rn.ref(o.StatusAttr) + " = :i")
	s.releaseNames = rn.names()

	var pn exprNames
	s.completedByProj = aws.String(pn.ref(o.StatusAttr) + ", " + pn.ref(o.OwnerAttr))
	s.completedByNames = pn.names()
	return s
}

// Err returns the configuration error that every call of s fails with, or
// nil when s is usable.
func (s *Store) Err() error { return s.err }

// Acquire implements idempotent.Store. It is one conditional PutItem; on a
// conflict the existing record comes from the failed write's ALL_OLD item
// or, when the server returns none, from one consistent GetItem.
func (s *Store) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	if s.err != nil {
		return nil, false, s.err
	}
	if rec.Status == "" {
		rec.Status = idempotent.StatusInProgress
	}
	item, err := s.encodeRecord(rec)
	if err != nil {
		return nil, false, &idempotent.StoreError{Op: opAcquire, RecordID: rec.ID, Err: err}
	}
	put, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                s.table,
		Item:                     item,
		ConditionExpression:      s.acquireCond,
		ExpressionAttributeNames: s.acquireNames,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":s": epoch(now.Unix()),
			":m": epoch(now.UnixMilli()),
			":i": avInProgress,
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		// On success the replaced item comes back too, so a lease takeover
		// can be reported. It costs no capacity units, only response bytes,
		// and only when the write replaced something.
		ReturnValues: types.ReturnValueAllOld,
	})
	if err == nil {
		return s.replaced(put), true, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return nil, false, &idempotent.StoreError{Op: opAcquire, RecordID: rec.ID, Err: err}
	}
	item = ccf.Item
	if len(item) == 0 {
		out, err := s.getItem(ctx, opAcquire, rec.ID)
		if err != nil {
			return nil, false, err
		}
		if item = out; len(item) == 0 {
			return nil, false, nil
		}
	}
	existing, man, err := s.decodeRecord(item)
	if err != nil {
		return nil, false, err
	}
	if ownWrite(existing, rec, now) {
		// This very write landed, its answer was lost, and the SDK's retry
		// of it met the record it had written: the owner token is unique
		// to one acquisition, so the key is the caller's.
		return nil, true, nil
	}
	// The chunks of a large result are read only when the caller will
	// replay it: not for a dead record (its chunks may be gone already; the
	// caller takes the key over) nor for a payload mismatch.
	if man != nil && !existing.Expired(now) &&
		(rec.Fingerprint == "" || existing.Fingerprint == "" || rec.Fingerprint == existing.Fingerprint) {
		if existing.Data, err = s.readChunks(ctx, opAcquire, existing.ID, man); err != nil {
			return nil, false, err
		}
	}
	return existing, false, nil
}

// replaced decodes the item an acquire replaced when it was in progress (a
// lease takeover), for Store.Acquire to report; nil otherwise. Completed
// items are not decoded: their data is of no use here. The acquire has
// succeeded whatever this finds, so an undecodable item is reported as none.
func (s *Store) replaced(put *dynamodb.PutItemOutput) *idempotent.Record {
	if put == nil {
		return nil
	}
	item := put.Attributes
	if st, ok := item[s.opts.StatusAttr].(*types.AttributeValueMemberS); !ok || st.Value != string(idempotent.StatusInProgress) {
		return nil
	}
	rec, _, err := s.decodeRecord(item)
	if err != nil {
		return nil
	}
	rec.Data = nil
	return rec
}

// Get implements idempotent.Store with one strongly consistent GetItem.
func (s *Store) Get(ctx context.Context, key string) (*idempotent.Record, error) {
	if s.err != nil {
		return nil, s.err
	}
	return s.get(ctx, opGet, key)
}

func (s *Store) get(ctx context.Context, op, key string) (*idempotent.Record, error) {
	item, err := s.getItem(ctx, op, key)
	if err != nil || len(item) == 0 {
		return nil, err
	}
	rec, man, err := s.decodeRecord(item)
	if err != nil {
		return nil, err
	}
	if man != nil {
		if rec.Data, err = s.readChunks(ctx, op, rec.ID, man); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

// getItem reads the item of record key with a consistent GetItem; nil when
// there is none.
func (s *Store) getItem(ctx context.Context, op, key string) (map[string]types.AttributeValue, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      s.table,
		Key:            s.itemKey(key),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, &idempotent.StoreError{Op: op, RecordID: key, Err: err}
	}
	return out.Item, nil
}

// Complete implements idempotent.Store with one UpdateItem fenced by
// status = INPROGRESS AND owner = rec.Owner. It sets the status COMPLETED,
// the data and the expiration, and removes the lease. Results of at least
// CompressThreshold bytes are compressed; stored bytes larger than one item
// are first written as chunk items (PutItem each, in parallel), which the
// UpdateItem then references; if its condition fails, they are deleted again.
func (s *Store) Complete(ctx context.Context, rec idempotent.Record) error {
	if s.err != nil {
		return s.err
	}
	st, err := s.encodeData(rec.Data)
	if err != nil {
		return &idempotent.StoreError{Op: opComplete, RecordID: rec.ID, Err: err}
	}
	exp := rec.Expiration.Unix()
	values := map[string]types.AttributeValue{
		":c": avCompleted,
		":i": avInProgress,
		":e": epoch(exp),
		":o": &types.AttributeValueMemberS{Value: rec.Owner},
	}
	shape := shapePlain
	if st.format != "" {
		shape = shapeCompressed
		values[":f"] = &types.AttributeValueMemberS{Value: st.format}
	}
	var cleanup func()
	if st.chunked() {
		shape += shapeChunked
		var man types.AttributeValue
		if man, cleanup, err = s.writeChunks(ctx, rec.ID, rec.Owner, st, exp); err != nil {
			return &idempotent.StoreError{Op: opComplete, RecordID: rec.ID, Err: fmt.Errorf("write chunks: %w", err)}
		}
		values[":k"] = man
	} else {
		values[":d"] = &types.AttributeValueMemberB{Value: st.data}
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 s.table,
		Key:                       s.itemKey(rec.ID),
		UpdateExpression:          s.complete[shape].upd,
		ConditionExpression:       s.complete[shape].cond,
		ExpressionAttributeNames:  s.complete[shape].names,
		ExpressionAttributeValues: values,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		// The condition failed. Either another run holds the key (lease
		// lost), and nothing references the chunks, if any (delete them);
		// or this very update landed, its answer was lost and the SDK's
		// retry of it failed its condition — then the result is stored
		// (and the record references the chunks: keep them), so report the
		// success it was. When the record cannot be read, the chunks stay
		// (they expire with their TTL) and the lease counts as lost. After
		// any other failure the update may have landed; the chunks stay too.
		mine, rerr := s.completedBy(ctx, rec.ID, rec.Owner)
		if rerr == nil && mine {
			return nil
		}
		if rerr == nil && cleanup != nil {
			cleanup()
		}
	}
	return s.fenced(opComplete, rec.ID, err)
}

// ownWrite reports whether existing, the record a conditional Acquire of
// rec failed against, is rec itself: the same owner, in progress, its lease
// running. This is the one place where "our write landed, its answer was
// lost" is recognised for Acquire (completedBy does it for Complete).
func ownWrite(existing *idempotent.Record, rec idempotent.Record, now time.Time) bool {
	return rec.Owner != "" && existing.Owner == rec.Owner &&
		existing.Status == idempotent.StatusInProgress && !existing.LeaseEnded(now)
}

// completedBy reports whether record key is COMPLETED under owner, with one
// consistent GetItem of its status and owner.
func (s *Store) completedBy(ctx context.Context, key, owner string) (bool, error) {
	if owner == "" {
		return false, nil
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                s.table,
		Key:                      s.itemKey(key),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     s.completedByProj,
		ExpressionAttributeNames: s.completedByNames,
	})
	if err != nil {
		return false, err
	}
	st, _ := out.Item[s.opts.StatusAttr].(*types.AttributeValueMemberS)
	own, _ := out.Item[s.opts.OwnerAttr].(*types.AttributeValueMemberS)
	return st != nil && own != nil && st.Value == string(idempotent.StatusCompleted) && own.Value == owner, nil
}

// The shapes of a completed record's data, indexing Store.complete.
const (
	shapePlain             = 0
	shapeCompressed        = 1
	shapeChunked           = 2
	shapeChunkedCompressed = shapeChunked + shapeCompressed
)

// Release implements idempotent.Store with one DeleteItem fenced by
// owner = owner AND status = INPROGRESS.
func (s *Store) Release(ctx context.Context, key, owner string) error {
	if s.err != nil {
		return s.err
	}
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                s.table,
		Key:                      s.itemKey(key),
		ConditionExpression:      s.releaseCond,
		ExpressionAttributeNames: s.releaseNames,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":o": &types.AttributeValueMemberS{Value: owner},
			":i": avInProgress,
		},
	})
	return s.fenced(opRelease, key, err)
}

// fenced maps the error of a fenced write: a failed condition means the lease
// is lost, anything else is a store failure.
func (s *Store) fenced(op, key string, err error) error {
	if err == nil {
		return nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return &idempotent.LeaseLostError{RecordID: key}
	}
	return &idempotent.StoreError{Op: op, RecordID: key, Err: err}
}

// itemKey is the primary key of the item for record id key.
func (s *Store) itemKey(key string) map[string]types.AttributeValue {
	if s.opts.CompositeKey {
		return map[string]types.AttributeValue{
			s.opts.PartitionKeyAttr: &types.AttributeValueMemberS{Value: s.opts.partitionValue(key)},
			s.opts.SortKeyAttr:      &types.AttributeValueMemberS{Value: key},
		}
	}
	return map[string]types.AttributeValue{
		s.opts.KeyAttr: &types.AttributeValueMemberS{Value: key},
	}
}

func epoch(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
