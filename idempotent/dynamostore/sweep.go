package dynamostore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

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
	// Start is the cursor to continue from: the SweepProgress.Next of an
	// earlier Sweep of the same table with the same Segments. "" starts at
	// the first page. A cursor that does not decode, or that was made for
	// another table, key schema or number of segments, is a
	// *idempotent.ConfigError (Option "SweepOptions.Start"): Sweep never
	// starts over or skips part of the table in its place.
	Start string
	// Segments splits the table into that many segments of a parallel Scan
	// (DynamoDB's Segment and TotalSegments), scanned concurrently. 0 and 1
	// mean one; more than 1000, or negative, is a *idempotent.ConfigError.
	Segments int
	// Parallel bounds how many segments are scanned at the same time; 0
	// means min(Segments, 8). Negative is a *idempotent.ConfigError.
	Parallel int
	// Progress, if set, is called after each page whose deletes have all
	// been done, with the totals so far and the cursor to resume from
	// (SweepProgress.Next). Calls are serialized, also when segments run
	// concurrently; a slow Progress holds up every segment.
	Progress func(SweepProgress)
}

// SweepProgress is the running total of a sweep.
type SweepProgress struct {
	// Pages, Scanned and Deleted count Scan pages, items examined and items
	// deleted; Changed counts items that were written again between the
	// Scan and their delete (and were left). A page cut short is scanned
	// again when the sweep resumes, so across runs Pages and Scanned can
	// count an item twice; Deleted never does (a deleted item is not found
	// again). A delete whose answer the context cut off is not counted,
	// though it may have reached the table.
	Pages, Scanned, Deleted, Changed int
	// Capacity is the read capacity the Scans consumed.
	Capacity float64
	// Next is the cursor to pass as SweepOptions.Start to continue this
	// sweep, "" once every segment has been scanned to its end. It is
	// opaque: its encoding (which holds each segment's Scan position, the
	// table name and its key) may change between versions. A cursor
	// resumes after the last page whose deletes all ran, so a page cut
	// short is scanned again.
	Next string
}

// maxSweepSegments bounds SweepOptions.Segments, and with it the size of a
// cursor (about 150 bytes per segment under way with short record ids).
const maxSweepSegments = 1000

// defaultSweepParallel is the number of segments scanned at once when
// SweepOptions.Parallel is 0.
const defaultSweepParallel = 8

// opSweep is the StoreError op of Sweep's failures.
const opSweep = "sweep"

// Sweep deletes records and chunk items that have been dead for longer than
// opts.Grace: for tables whose TTL does not delete them (an MRSC global
// table without TTL, a local server). It scans the table page by page
// (filtered on the expiration attribute; on a composite-key table also on
// the idempotency partitions) and deletes each item with a DeleteItem
// conditional on expiration <= the cutoff, so an item written again
// meanwhile stays.
//
// With opts.Segments above 1 the table is scanned as that many segments,
// at most opts.Parallel at a time; the totals and Progress reports cover
// all of them. The first failure stops every segment. Sweep always returns
// the totals and, in SweepProgress.Next, where the sweep stands: "" when it
// reached the end, otherwise a cursor for opts.Start that continues after
// the last page each segment finished. A run cut short by ctx returns the
// context's error (context.DeadlineExceeded, context.Canceled); a failed
// call a *idempotent.StoreError with op "sweep"; what was deleted stays
// deleted. On a *idempotent.ConfigError nothing ran and Next is opts.Start.
func (s *Store) Sweep(ctx context.Context, opts SweepOptions) (SweepProgress, error) {
	if s.err != nil {
		return SweepProgress{Next: opts.Start}, s.err
	}
	w, err := s.newSweep(opts)
	if err != nil {
		return SweepProgress{Next: opts.Start}, err
	}
	return w.run(ctx)
}

// sweep is one run of Sweep. The segments' goroutines share its totals and
// positions under mu; everything else is set up before they start and only
// read.
type sweep struct {
	s        *Store
	admin    AdminAPI
	progress func(SweepProgress)
	keys     []string // the table's key attributes, as the cursor names them
	total    int      // segments
	parallel int
	scan     dynamodb.ScanInput // without Segment and ExclusiveStartKey
	delCond  *string
	delNames map[string]string
	delVals  map[string]types.AttributeValue

	mu  sync.Mutex
	p   SweepProgress // Next unset
	pos []segPos
}

// segPos is where a segment stands: done, or to be scanned from key (nil:
// its first page).
type segPos struct {
	done bool
	key  map[string]types.AttributeValue
}

// newSweep checks opts and decodes the start cursor.
func (s *Store) newSweep(opts SweepOptions) (*sweep, error) {
	bad := func(option, format string, args ...any) error {
		return &idempotent.ConfigError{Option: "SweepOptions." + option, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case opts.Grace < 0:
		return nil, bad("Grace", "negative")
	case opts.Segments < 0 || opts.Segments > maxSweepSegments:
		return nil, bad("Segments", "%d is outside 0..%d", opts.Segments, maxSweepSegments)
	case opts.Parallel < 0:
		return nil, bad("Parallel", "negative")
	}
	admin, ok := s.raw.(AdminAPI)
	if !ok {
		return nil, &idempotent.ConfigError{Option: "dynamostore.New", Err: fmt.Errorf("client %T has no Scan", s.raw)}
	}
	w := &sweep{s: s, admin: admin, progress: opts.Progress, keys: s.keyAttrs(), total: max(opts.Segments, 1)}
	w.parallel = opts.Parallel
	if w.parallel == 0 {
		w.parallel = defaultSweepParallel
	}
	w.parallel = min(w.parallel, w.total)
	pos, err := w.decodeCursor(opts.Start)
	if err != nil {
		return nil, &idempotent.ConfigError{Option: "SweepOptions.Start", Err: err}
	}
	w.pos = pos

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
	w.scan = dynamodb.ScanInput{
		TableName: s.table, FilterExpression: aws.String(filter),
		ExpressionAttributeNames: n.names(), ExpressionAttributeValues: values,
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	}
	if opts.PageSize > 0 {
		w.scan.Limit = aws.Int32(int32(min(opts.PageSize, 1<<30)))
	}
	if w.total > 1 {
		w.scan.TotalSegments = aws.Int32(int32(w.total))
	}
	var dn exprNames
	w.delCond = aws.String(dn.ref(s.opts.ExpirationAttr) + " <= :c")
	w.delNames = dn.names()
	w.delVals = map[string]types.AttributeValue{":c": cutoff}
	return w, nil
}

// run scans the segments not done yet, at most w.parallel at a time, and
// returns the totals with the cursor of where they stopped.
func (w *sweep) run(ctx context.Context) (SweepProgress, error) {
	var todo []int
	for i, pos := range w.pos {
		if !pos.done {
			todo = append(todo, i)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.parallel)
	for _, i := range todo {
		g.Go(func() error { return w.segment(gctx, i) })
	}
	err := g.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.p
	p.Next = w.cursorLocked()
	return p, err
}

// segment scans segment i page by page from its position, deleting each
// page's matches; the position moves past a page only once all its deletes
// are done.
func (w *sweep) segment(ctx context.Context, i int) error {
	w.mu.Lock()
	start := w.pos[i].key
	w.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		in := w.scan
		in.ExclusiveStartKey = start
		if w.total > 1 {
			in.Segment = aws.Int32(int32(i))
		}
		out, err := w.admin.Scan(ctx, &in)
		if err != nil {
			return failed(ctx, err)
		}
		deleted, changed, err := w.deletePage(ctx, out.Items)
		w.record(i, out, deleted, changed, err == nil)
		if err != nil {
			return failed(ctx, err)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		start = out.LastEvaluatedKey
	}
}

// failed is the error a segment stops with: the context's once it is done
// (the call failed because the run was cut short, or the run is stopping
// anyway), else the call's as a StoreError.
func failed(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return &idempotent.StoreError{Op: opSweep, Err: err}
}

// deletePage deletes the items of one page, each conditional on being dead
// still, and stops at the first failure.
func (w *sweep) deletePage(ctx context.Context, items []map[string]types.AttributeValue) (deleted, changed int, err error) {
	for _, item := range items {
		key := make(map[string]types.AttributeValue, len(w.keys))
		for _, k := range w.keys {
			key[k] = item[k]
		}
		_, err := w.s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: w.s.table, Key: key, ConditionExpression: w.delCond,
			ExpressionAttributeNames: w.delNames, ExpressionAttributeValues: w.delVals,
		})
		var ccf *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &ccf):
			changed++
		case err != nil:
			return deleted, changed, err
		default:
			deleted++
		}
	}
	return deleted, changed, nil
}

// record adds a page of segment i to the totals. A complete page (all its
// deletes done) moves the segment's position past it and is reported to
// Progress; an incomplete one leaves the position before it.
func (w *sweep) record(i int, out *dynamodb.ScanOutput, deleted, changed int, complete bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.p.Pages++
	w.p.Scanned += int(out.ScannedCount)
	w.p.Deleted += deleted
	w.p.Changed += changed
	if out.ConsumedCapacity != nil {
		w.p.Capacity += aws.ToFloat64(out.ConsumedCapacity.CapacityUnits)
	}
	if !complete {
		return
	}
	w.pos[i] = segPos{done: len(out.LastEvaluatedKey) == 0, key: out.LastEvaluatedKey}
	if w.progress != nil {
		p := w.p
		p.Next = w.cursorLocked()
		w.progress(p)
	}
}

// The cursor is cursorPrefix followed by the unpadded base64url encoding of
// the JSON of a sweepCursor.
const cursorPrefix = "sweep1."

// sweepCursor is the decoded form of a cursor: the table and key it
// belongs to, and one position per segment.
type sweepCursor struct {
	Table    string          `json:"t"`
	Keys     []string        `json:"k"`
	Segments []cursorSegment `json:"s"`
}

// cursorSegment is a segment's position: done, or the ExclusiveStartKey of
// its next page (none: its first page).
type cursorSegment struct {
	Done bool                   `json:"d,omitempty"`
	Key  map[string]cursorValue `json:"k,omitempty"`
}

// cursorValue is a key attribute's value. Strings are held as bytes, so
// that no text encoding step can alter them.
type cursorValue struct {
	S []byte `json:"S,omitempty"`
	N []byte `json:"N,omitempty"`
	B []byte `json:"B,omitempty"`
}

// cursorLocked encodes the segments' positions; "" when all are done.
func (w *sweep) cursorLocked() string {
	if !slices.ContainsFunc(w.pos, func(p segPos) bool { return !p.done }) {
		return ""
	}
	c := sweepCursor{Table: aws.ToString(w.s.table), Keys: w.keys, Segments: make([]cursorSegment, len(w.pos))}
	for i, pos := range w.pos {
		c.Segments[i].Done = pos.done
		if pos.key == nil {
			continue
		}
		c.Segments[i].Key = make(map[string]cursorValue, len(pos.key))
		for name, av := range pos.key {
			// A key attribute is S, N or B. Another type would be left out,
			// and the cursor then fails to decode: never a wrong position.
			switch v := av.(type) {
			case *types.AttributeValueMemberS:
				c.Segments[i].Key[name] = cursorValue{S: []byte(v.Value)}
			case *types.AttributeValueMemberN:
				c.Segments[i].Key[name] = cursorValue{N: []byte(v.Value)}
			case *types.AttributeValueMemberB:
				c.Segments[i].Key[name] = cursorValue{B: v.Value}
			}
		}
	}
	// Marshal cannot fail on strings, bools and byte slices; if it did, the
	// cursor would be empty after the prefix and fail to decode.
	b, _ := json.Marshal(c)
	return cursorPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor returns the positions a cursor holds, checking that it is
// this table's, with w.total segments, and not finished.
func (w *sweep) decodeCursor(start string) ([]segPos, error) {
	pos := make([]segPos, w.total)
	if start == "" {
		return pos, nil
	}
	enc, ok := strings.CutPrefix(start, cursorPrefix)
	if !ok {
		return nil, errors.New("not a sweep cursor")
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("not a sweep cursor: %w", err)
	}
	var c sweepCursor
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("not a sweep cursor: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not a sweep cursor: data after the cursor")
	}
	if table := aws.ToString(w.s.table); c.Table != table {
		return nil, fmt.Errorf("the cursor is of table %q, not %q", c.Table, table)
	}
	if !slices.Equal(c.Keys, w.keys) {
		return nil, fmt.Errorf("the cursor is of a table keyed on %q, not %q", c.Keys, w.keys)
	}
	if len(c.Segments) != w.total {
		return nil, fmt.Errorf("the cursor is of a sweep in %d segments, not %d (SweepOptions.Segments)", len(c.Segments), w.total)
	}
	left := false
	for i, seg := range c.Segments {
		switch {
		case seg.Done && seg.Key != nil:
			return nil, fmt.Errorf("segment %d is both done and under way", i)
		case seg.Done:
			pos[i].done = true
			continue
		case seg.Key == nil:
			left = true
			continue
		}
		left = true
		key, err := w.decodeKey(seg.Key)
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", i, err)
		}
		pos[i].key = key
	}
	if !left {
		return nil, errors.New("the cursor has no segment left to scan (a finished sweep's cursor is \"\")")
	}
	return pos, nil
}

// decodeKey turns a cursor's key back into an ExclusiveStartKey: exactly the
// table's key attributes, each with one non-empty value.
func (w *sweep) decodeKey(in map[string]cursorValue) (map[string]types.AttributeValue, error) {
	if len(in) != len(w.keys) {
		return nil, fmt.Errorf("the key has %d attributes, not %d", len(in), len(w.keys))
	}
	key := make(map[string]types.AttributeValue, len(in))
	for _, name := range w.keys {
		v, ok := in[name]
		switch {
		case !ok:
			return nil, fmt.Errorf("the key lacks %q", name)
		case len(v.S) > 0 && v.N == nil && v.B == nil:
			key[name] = &types.AttributeValueMemberS{Value: string(v.S)}
		case len(v.N) > 0 && v.S == nil && v.B == nil:
			key[name] = &types.AttributeValueMemberN{Value: string(v.N)}
		case len(v.B) > 0 && v.S == nil && v.N == nil:
			key[name] = &types.AttributeValueMemberB{Value: v.B}
		default:
			return nil, fmt.Errorf("the key attribute %q has not exactly one non-empty value", name)
		}
	}
	return key, nil
}

// keyAttrs are the primary key attributes of the table.
func (s *Store) keyAttrs() []string {
	if s.opts.CompositeKey {
		return []string{s.opts.PartitionKeyAttr, s.opts.SortKeyAttr}
	}
	return []string{s.opts.KeyAttr}
}
