package sqsbatch

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
)

// attrReceiveCount is the SQS system attribute that counts deliveries.
const attrReceiveCount = "ApproximateReceiveCount"

// redelivered reports whether SQS has delivered m before.
func redelivered(m *events.SQSMessage) bool {
	n, err := strconv.Atoi(m.Attributes[attrReceiveCount])
	return err == nil && n > 1
}

// prefetch reads the records of a redelivered batch ahead, before any
// record runs, and returns the context the records run under.
//
// Only a batch with at least one redelivered record is read ahead: on a
// fresh batch the look-up would find nothing and cost one more round trip
// (and 0.5 read units per record) for every batch. With a BatchReader store
// the whole batch is read in one request (dynamostore: one BatchGetItem per
// 100 keys); each record's Do then replays a completed record from the
// answer without a call, goes straight to its conditional write when the
// answer says absent, and reads first when the answer left it out
// (unprocessed). With only a ReplayReader, the records read first one by
// one. Ordering and partial-batch semantics do not change: every record
// still goes through Do in its turn; only where Do finds its record
// changes. A failed look-up is logged and the batch runs the normal way.
func (p *processor[R]) prefetch(ctx context.Context, items []item[R]) context.Context {
	again := false
	for i := range items {
		again = again || items[i].redelivered
	}
	if !again || p.g.Disabled() {
		return ctx
	}
	br, ok := p.g.Store().(idempotent.BatchReader)
	if !ok {
		return idempotent.ReadFirstContext(ctx)
	}
	ids := make([]string, 0, len(items))
	for i := range items {
		if items[i].keyErr == nil && items[i].key != "" {
			ids = append(ids, p.g.RecordID(doStep, items[i].key))
		}
	}
	recs, err := br.PeekBatch(ctx, ids)
	if err != nil {
		p.log.WarnContext(ctx, "batch look-up failed; records go the normal way", slog.String("source", p.source), slog.Any("error", err))
		return ctx
	}
	return idempotent.PrefetchedContext(ctx, recs)
}
