package dynamostore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/internal/testdynamo"
)

// sweepNow is the clock reading of the sweeps below.
var sweepNow = time.Unix(1_800_000_000, 0)

// fillSweepTable writes n in-progress records named fn#<i>; every third one
// (i%3 == 0) is live at sweepNow, the others have been dead for two hours.
// It returns the ids of the live and of the dead ones.
func fillSweepTable(t *testing.T, s *dynamostore.Store, n int) (live, dead []string) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("fn#%04d", i)
		exp := sweepNow.Add(-2 * time.Hour)
		if i%3 == 0 {
			exp = sweepNow.Add(time.Hour)
			live = append(live, id)
		} else {
			dead = append(dead, id)
		}
		rec := idempotent.Record{ID: id, Status: idempotent.StatusInProgress, Owner: "o", Expiration: exp, LeaseExpiration: exp}
		if _, ok, err := s.Acquire(context.Background(), rec, exp.Add(-time.Hour)); err != nil || !ok {
			t.Fatal(id, ok, err)
		}
	}
	return live, dead
}

// tableIDs returns the ids of every item of the table (one consistent Scan
// to the end).
func tableIDs(t *testing.T, client *dynamodb.Client, table string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range out.Items {
			ids[item[dynamostore.DefaultKeyAttr].(*types.AttributeValueMemberS).Value] = true
		}
	}
	return ids
}

// checkSwept fails unless every dead id is gone and every live one is there.
func checkSwept(t *testing.T, client *dynamodb.Client, table string, live, dead []string) {
	t.Helper()
	ids := tableIDs(t, client, table)
	for _, id := range dead {
		if ids[id] {
			t.Errorf("dead record %s was not swept", id)
		}
	}
	for _, id := range live {
		if !ids[id] {
			t.Errorf("live record %s was deleted", id)
		}
	}
}

// sweepClient is the local server's client with hooks on Scan and
// DeleteItem: cutDelete (if set) is consulted before each DeleteItem with
// the Scan pages and the deletes of the current page so far, and may cancel
// the sweep's context before the call goes out; it also records the
// segments Scan was asked for and the most Scans in flight at once.
//
// With finishStarted, a DeleteItem that starts before the context is done
// runs to its end regardless: otherwise a delete of another segment cut
// while in flight may have reached the table with its answer lost, and is
// then (rightly) not counted, which would make the totals of a concurrent
// cut depend on timing.
type sweepClient struct {
	*dynamodb.Client
	cutDelete     func(scans, pageDeletes int)
	finishStarted bool
	// failScan, if set, may fail or hold a Scan of a segment before it
	// goes out (a failure the local server cannot be made to produce on
	// cue).
	failScan func(ctx context.Context, segment int32, segmentScans int) error

	mu          sync.Mutex
	scans       int
	pageDeletes int
	segments    map[int32]int // Scan calls per Segment
	totals      map[int32]bool
	inFlight    int
	maxInFlight int
}

func (c *sweepClient) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	c.mu.Lock()
	c.scans++
	c.pageDeletes = 0
	if c.segments == nil {
		c.segments, c.totals = map[int32]int{}, map[int32]bool{}
	}
	c.segments[aws.ToInt32(in.Segment)]++
	c.totals[aws.ToInt32(in.TotalSegments)] = true
	c.inFlight++
	c.maxInFlight = max(c.maxInFlight, c.inFlight)
	segmentScans := c.segments[aws.ToInt32(in.Segment)]
	c.mu.Unlock()
	if c.failScan != nil {
		if err := c.failScan(ctx, aws.ToInt32(in.Segment), segmentScans); err != nil {
			c.mu.Lock()
			c.inFlight--
			c.mu.Unlock()
			return nil, err
		}
	}
	defer func() {
		c.mu.Lock()
		c.inFlight--
		c.mu.Unlock()
	}()
	return c.Client.Scan(ctx, in, optFns...)
}

func (c *sweepClient) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.mu.Lock()
	c.pageDeletes++
	scans, n := c.scans, c.pageDeletes
	c.mu.Unlock()
	if c.cutDelete != nil {
		c.cutDelete(scans, n)
	}
	if c.finishStarted && ctx.Err() == nil {
		ctx = context.WithoutCancel(ctx)
	}
	return c.Client.DeleteItem(ctx, in, optFns...)
}

// TestSweepResumesAfterCut cancels a sweep in the middle of its second
// page's deletes (one delete of the page done, the next one cut) and
// resumes from the cursor it returned: the second run starts at that page
// again (not at the first page, not after the page read last), every dead
// record is deleted across the two runs and counted once, and no live one
// is touched.
func TestSweepResumesAfterCut(t *testing.T) {
	client := testdynamo.Client(t)
	table := testdynamo.NewTable(t, client)
	cc := &sweepClient{Client: client}
	s := dynamostore.New(cc, table)
	live, dead := fillSweepTable(t, s, 60)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cc.cutDelete = func(scans, pageDeletes int) {
		if scans == 2 && pageDeletes == 2 {
			cancel()
		}
	}
	var reports []dynamostore.SweepProgress
	opts := dynamostore.SweepOptions{Now: sweepNow, Grace: time.Minute, PageSize: 10,
		Progress: func(p dynamostore.SweepProgress) { reports = append(reports, p) }}
	p1, err := s.Sweep(ctx, opts)
	if !errors.Is(err, context.Canceled) || p1.Next == "" {
		t.Fatalf("cut Sweep = %+v, %v; want context.Canceled and a cursor", p1, err)
	}
	if len(reports) != 1 || p1.Pages != 2 || p1.Deleted != reports[0].Deleted+1 {
		t.Fatalf("cut Sweep = %+v after reports %+v; want it cut after one delete of page 2 (one page reported)", p1, reports)
	}
	if p1.Next != reports[0].Next {
		t.Errorf("the cut run's cursor differs from the one reported after page 1: it must not move past the cut page")
	}

	page1 := reports[0]
	cc.cutDelete = nil
	opts.Progress = nil
	opts.Start = p1.Next
	p2, err := s.Sweep(t.Context(), opts)
	if err != nil || p2.Next != "" {
		t.Fatalf("resumed Sweep = %+v, %v; want it to reach the end", p2, err)
	}
	if p1.Deleted+p2.Deleted != len(dead) {
		t.Errorf("Deleted %d + %d across the runs; want %d, each dead record once", p1.Deleted, p2.Deleted, len(dead))
	}
	// Page 2 again (less the record its first delete removed) and the
	// pages after it.
	if want := 60 - page1.Scanned - (p1.Deleted - page1.Deleted); p2.Scanned != want {
		t.Errorf("resumed Sweep scanned %d items; want %d (page 2 again and the pages after it)", p2.Scanned, want)
	}
	checkSwept(t, client, table, live, dead)
}

// TestSweepCutBeforeFirstPage: a run whose context is done before its first
// page returns a cursor that starts at the beginning, never "" (which means
// "reached the end"), and resuming from it sweeps everything.
func TestSweepCutBeforeFirstPage(t *testing.T) {
	client := testdynamo.Client(t)
	table := testdynamo.NewTable(t, client)
	s := dynamostore.New(client, table)
	live, dead := fillSweepTable(t, s, 9)

	for _, segments := range []int{0, 4} {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		p, err := s.Sweep(ctx, dynamostore.SweepOptions{Now: sweepNow, Segments: segments})
		if !errors.Is(err, context.Canceled) || p.Next == "" || p.Pages != 0 {
			t.Fatalf("Segments %d: Sweep on a done context = %+v, %v; want context.Canceled, no page and a cursor", segments, p, err)
		}
		p, err = s.Sweep(t.Context(), dynamostore.SweepOptions{Now: sweepNow, Segments: segments, Start: p.Next})
		if err != nil || p.Next != "" {
			t.Fatalf("Segments %d: resumed Sweep = %+v, %v", segments, p, err)
		}
		if segments == 0 && p.Deleted != len(dead) {
			t.Errorf("resumed Sweep deleted %d; want %d", p.Deleted, len(dead))
		}
	}
	checkSwept(t, client, table, live, dead)
}

// TestSweepSegments sweeps a few hundred records in 4 segments, at most 2
// at a time: every item is scanned exactly once, every dead record is
// deleted and counted once, Progress is called once per page (serialized:
// -race checks its unsynchronized append) with totals that only grow and
// end at the returned ones.
func TestSweepSegments(t *testing.T) {
	client := testdynamo.Client(t)
	table := testdynamo.NewTable(t, client)
	cc := &sweepClient{Client: client}
	s := dynamostore.New(cc, table)
	const n = 300
	live, dead := fillSweepTable(t, s, n)

	var (
		reports  []dynamostore.SweepProgress
		inCall   atomic.Int32
		overlaps atomic.Int32
	)
	p, err := s.Sweep(t.Context(), dynamostore.SweepOptions{Now: sweepNow, PageSize: 7, Segments: 4, Parallel: 2,
		Progress: func(p dynamostore.SweepProgress) {
			if inCall.Add(1) > 1 {
				overlaps.Add(1)
			}
			// Give another segment's report the chance to overlap this one.
			for range 100 {
				runtime.Gosched()
			}
			reports = append(reports, p)
			inCall.Add(-1)
		}})
	if err != nil || p.Next != "" {
		t.Fatalf("Sweep = %+v, %v", p, err)
	}
	if n := overlaps.Load(); n > 0 {
		t.Errorf("%d Progress calls overlapped another; they must be serialized", n)
	}
	if p.Scanned != n || p.Deleted != len(dead) || p.Changed != 0 || p.Capacity <= 0 {
		t.Errorf("Sweep = %+v; want %d scanned, %d deleted, capacity reported", p, n, len(dead))
	}
	if len(reports) != p.Pages || p.Pages != cc.scans {
		t.Fatalf("%d reports, %d pages, %d Scan calls; want them equal", len(reports), p.Pages, cc.scans)
	}
	for i := 1; i < len(reports); i++ {
		a, b := reports[i-1], reports[i]
		if b.Pages != a.Pages+1 || b.Scanned < a.Scanned || b.Deleted < a.Deleted || b.Capacity < a.Capacity {
			t.Fatalf("report %d = %+v after %+v; want one page more and totals that do not shrink", i, b, a)
		}
	}
	last := reports[len(reports)-1]
	if last.Next != "" || last.Scanned != p.Scanned || last.Deleted != p.Deleted {
		t.Errorf("last report %+v; want the returned totals %+v and no cursor", last, p)
	}
	if len(cc.segments) != 4 || len(cc.totals) != 1 || !cc.totals[4] {
		t.Errorf("Scan calls per segment %v with TotalSegments %v; want segments 0..3 of 4", cc.segments, cc.totals)
	}
	if cc.maxInFlight > 2 {
		t.Errorf("%d Scans in flight at once; Parallel is 2", cc.maxInFlight)
	}
	checkSwept(t, client, table, live, dead)
}

// TestSweepSegmentsResume cuts a 4-segment sweep after some deletes and
// resumes it from its cursor: across the runs every dead record is deleted
// and counted once, and the live ones stay.
func TestSweepSegmentsResume(t *testing.T) {
	client := testdynamo.Client(t)
	table := testdynamo.NewTable(t, client)
	cc := &sweepClient{Client: client, finishStarted: true}
	s := dynamostore.New(cc, table)
	live, dead := fillSweepTable(t, s, 200)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var deletes atomic.Int32
	cc.cutDelete = func(int, int) {
		if deletes.Add(1) == 40 {
			cancel()
		}
	}
	opts := dynamostore.SweepOptions{Now: sweepNow, PageSize: 5, Segments: 4}
	p1, err := s.Sweep(ctx, opts)
	if !errors.Is(err, context.Canceled) || p1.Next == "" || p1.Deleted >= len(dead) {
		t.Fatalf("cut Sweep = %+v, %v; want context.Canceled part way", p1, err)
	}
	cc.cutDelete = nil
	opts.Start = p1.Next
	p2, err := s.Sweep(t.Context(), opts)
	if err != nil || p2.Next != "" {
		t.Fatalf("resumed Sweep = %+v, %v", p2, err)
	}
	if p1.Deleted+p2.Deleted != len(dead) {
		t.Errorf("Deleted %d + %d across the runs; want %d", p1.Deleted, p2.Deleted, len(dead))
	}
	checkSwept(t, client, table, live, dead)
}

// TestSweepBadCursor: a cursor that does not decode, or that belongs to
// another table or segment layout, is a *idempotent.ConfigError before any
// call (no silent restart, no skip), and Next is the Start given.
func TestSweepBadCursor(t *testing.T) {
	client, counter := testdynamo.CountingClient(t)
	table := testdynamo.NewTable(t, client)
	other := testdynamo.NewTable(t, client)
	s := dynamostore.New(client, table)
	_, dead := fillSweepTable(t, s, 6)

	// Real cursors of runs cut before their first page.
	cut := func(s *dynamostore.Store, segments int) string {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		p, err := s.Sweep(ctx, dynamostore.SweepOptions{Segments: segments})
		if !errors.Is(err, context.Canceled) || p.Next == "" {
			t.Fatalf("cut Sweep = %+v, %v", p, err)
		}
		return p.Next
	}
	four := cut(s, 4)
	composite := testdynamo.NewTable(t, client, dynamostore.WithCompositeKey(""))
	tests := []struct {
		name     string
		start    string
		segments int
	}{
		{"garbage", "not a cursor", 0},
		{"prefix only", "sweep1.", 0},
		{"bad base64", "sweep1.%%%", 0},
		{"not JSON", "sweep1.bm90IGpzb24", 0},
		{"truncated", four[:len(four)-3], 4},
		{"other table", cut(dynamostore.New(client, other), 0), 0},
		{"composite table", cut(dynamostore.New(client, composite, dynamostore.WithCompositeKey("")), 0), 0},
		{"composite key, same table name", cut(dynamostore.New(client, table, dynamostore.WithCompositeKey("")), 0), 0},
		{"four segments given one", four, 0},
		{"four segments given two", four, 2},
		{"one segment given four", cut(s, 0), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counter.Reset()
			p, err := s.Sweep(t.Context(), dynamostore.SweepOptions{Now: sweepNow, Start: tt.start, Segments: tt.segments})
			var ce *idempotent.ConfigError
			if !errors.As(err, &ce) || ce.Option != "SweepOptions.Start" {
				t.Fatalf("Sweep from %q = %+v, %v; want a ConfigError on SweepOptions.Start", tt.start, p, err)
			}
			if p.Next != tt.start || p.Pages != 0 {
				t.Errorf("Sweep = %+v; want nothing done and Next = Start", p)
			}
			if n := counter.Total(); n != 0 {
				t.Errorf("Sweep made %d calls on a bad cursor; want none", n)
			}
		})
	}
	if ids := tableIDs(t, client, table); len(ids) != 6 {
		t.Errorf("%d items left after the bad cursors; want all 6 (%d dead ones included)", len(ids), len(dead))
	}
	if p, err := s.Sweep(t.Context(), dynamostore.SweepOptions{Now: sweepNow, Start: four, Segments: 4}); err != nil || p.Deleted != len(dead) {
		t.Errorf("Sweep from a good cursor = %+v, %v; want %d deleted", p, err, len(dead))
	}
}

// TestSweepOptionErrors: bad Segments and Parallel are ConfigErrors.
func TestSweepOptionErrors(t *testing.T) {
	s := dynamostore.New(testdynamo.NewClient("http://127.0.0.1:1"), "t")
	for _, tt := range []struct {
		name   string
		opts   dynamostore.SweepOptions
		option string
	}{
		{"negative segments", dynamostore.SweepOptions{Segments: -1}, "SweepOptions.Segments"},
		{"too many segments", dynamostore.SweepOptions{Segments: 1001}, "SweepOptions.Segments"},
		{"negative parallel", dynamostore.SweepOptions{Segments: 2, Parallel: -1}, "SweepOptions.Parallel"},
		{"negative grace", dynamostore.SweepOptions{Grace: -time.Second}, "SweepOptions.Grace"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Sweep(t.Context(), tt.opts)
			var ce *idempotent.ConfigError
			if !errors.As(err, &ce) || ce.Option != tt.option {
				t.Fatalf("Sweep(%+v) = %v; want a ConfigError on %s", tt.opts, err, tt.option)
			}
		})
	}
}

// TestSweepKeepsCursorItem: the item docs/global-tables.md's sweeper
// function keeps its cursor in (id "sweeper-cursor", a string attribute
// "cursor", no expiration, no status; on a composite-key table in a
// partition of its own) is never deleted by Sweep, even when everything
// else is long dead, and List does not show it, not even as Foreign.
func TestSweepKeepsCursorItem(t *testing.T) {
	for _, tt := range []struct {
		name   string
		optFns []func(*dynamostore.Options)
		key    map[string]types.AttributeValue
	}{
		{"simple key", nil, map[string]types.AttributeValue{
			dynamostore.DefaultKeyAttr: &types.AttributeValueMemberS{Value: "sweeper-cursor"}}},
		{"composite key", []func(*dynamostore.Options){dynamostore.WithCompositeKey("")}, map[string]types.AttributeValue{
			dynamostore.DefaultPartitionKeyAttr: &types.AttributeValueMemberS{Value: "sweeper"},
			dynamostore.DefaultSortKeyAttr:      &types.AttributeValueMemberS{Value: "cursor"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client := testdynamo.Client(t)
			table := testdynamo.NewTable(t, client, tt.optFns...)
			s := dynamostore.New(client, table, tt.optFns...)
			fillSweepTable(t, s, 6)
			item := map[string]types.AttributeValue{"cursor": &types.AttributeValueMemberS{Value: "sweep1.x"}}
			for k, v := range tt.key {
				item[k] = v
			}
			if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
				t.Fatal(err)
			}
			p, err := s.Sweep(t.Context(), dynamostore.SweepOptions{Now: sweepNow.Add(1000 * time.Hour), Segments: 2})
			if err != nil || p.Deleted != 6 {
				t.Fatalf("Sweep = %+v, %v; want the 6 records deleted", p, err)
			}
			out, err := client.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: tt.key, ConsistentRead: aws.Bool(true)})
			if err != nil || out.Item == nil {
				t.Fatalf("cursor item after Sweep: %v, %v; want it kept", out, err)
			}
			for _, name := range []string{"fn", "sweeper", "sweeper-cursor"} {
				page, err := s.List(t.Context(), idempotent.ListQuery{Name: name})
				if err != nil || len(page.Records) != 0 || page.Foreign != 0 {
					t.Errorf("List(%s) = %+v, %v; want nothing, no foreign item", name, page, err)
				}
			}
		})
	}
}

// TestSweepSegmentFailure: when one segment's Scan fails, every segment
// stops (the others' second Scans wait for their context to be cancelled),
// Sweep returns that failure as a StoreError (not the cancellation it
// caused in the others) with a cursor, and resuming from the cursor deletes
// the rest, each dead record counted once.
func TestSweepSegmentFailure(t *testing.T) {
	client := testdynamo.Client(t)
	table := testdynamo.NewTable(t, client)
	cc := &sweepClient{Client: client, finishStarted: true}
	s := dynamostore.New(cc, table)
	live, dead := fillSweepTable(t, s, 120)

	boom := errors.New("injected Scan failure")
	var stuck atomic.Int32
	cc.failScan = func(ctx context.Context, segment int32, segmentScans int) error {
		switch {
		case segmentScans == 1:
			return nil
		case segment == 2:
			return boom
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Second): // only reached when the bug is there
			stuck.Add(1)
			return errors.New("segment not stopped after another one failed")
		}
	}
	opts := dynamostore.SweepOptions{Now: sweepNow, PageSize: 5, Segments: 4}
	p1, err := s.Sweep(t.Context(), opts)
	var se *idempotent.StoreError
	if !errors.As(err, &se) || se.Op != "sweep" || !errors.Is(err, boom) || p1.Next == "" {
		t.Fatalf("Sweep = %+v, %v; want the injected failure as a StoreError and a cursor", p1, err)
	}
	if n := stuck.Load(); n > 0 {
		t.Errorf("%d segments went on after another one failed", n)
	}
	if p1.Pages != 4 {
		t.Errorf("Sweep = %+v; want the first page of each segment and no other", p1)
	}
	cc.failScan = nil
	opts.Start = p1.Next
	p2, err := s.Sweep(t.Context(), opts)
	if err != nil || p2.Next != "" {
		t.Fatalf("resumed Sweep = %+v, %v", p2, err)
	}
	if p1.Deleted+p2.Deleted != len(dead) {
		t.Errorf("Deleted %d + %d across the runs; want %d", p1.Deleted, p2.Deleted, len(dead))
	}
	checkSwept(t, client, table, live, dead)
}
