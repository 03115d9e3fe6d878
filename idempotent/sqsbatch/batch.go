package sqsbatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"golang.org/x/sync/errgroup"

	"github.com/idemlambda/idemlambda/idempotent"
)

// item is one record of a batch, prepared for processing.
type item[R any] struct {
	rec R
	// id is the record's itemIdentifier in the batch response.
	id string
	// key is the prefixed key material; empty when keyErr is set.
	key    string
	keyErr error
	// group is the ordering group of an ordered record: after a failure,
	// later records of the group fail without running.
	group   string
	ordered bool
	// redelivered: the source says it delivered the record before
	// (prefetch.go).
	redelivered bool
}

// outcome is what became of one record. The zero value is pending: a record
// whose processing never positively ended (its goroutine exited through
// runtime.Goexit, say) is a failure, like every outcome but completed and
// replayed.
type outcome int

const (
	pending   outcome = iota // not finished: a failure
	completed                // ran and completed
	replayed                 // completed before; acknowledged without running
	failed                   // key unreadable, error, panic, in progress, store error
	skipped                  // not started: earlier failure in its group, or deadline
)

// acknowledged reports whether the record is done with and leaves the queue.
// Fail closed: only the two positive outcomes are.
func (o outcome) acknowledged() bool { return o == completed || o == replayed }

// processor is the batch engine shared by Wrap, WrapKinesis and WrapDynamoDB.
type processor[R any] struct {
	c      *config
	g      *idempotent.Guard
	log    *slog.Logger
	fn     func(context.Context, R) error
	source string
	obs    idempotent.Observer // the guard's observers, for BatchReport
	err    error               // configuration error: every invocation fails with it
}

func newProcessor[R any](g *idempotent.Guard, fn func(context.Context, R) error, source string, allowed []keyKind, opts []Option) *processor[R] {
	c := newConfig(opts)
	p := &processor[R]{c: c, g: g, log: g.Logger(), fn: fn, source: source}
	p.err = g.Err()
	if p.err == nil {
		p.err = c.err
	}
	if p.err == nil {
		ok := false
		for _, k := range allowed {
			ok = ok || c.key == k
		}
		if !ok {
			p.err = &idempotent.ConfigError{Option: c.key.option(), Err: fmt.Errorf("does not apply to %s records", source)}
		}
	}
	if p.err == nil && fn == nil {
		p.err = &idempotent.ConfigError{Option: "fn", Err: errors.New("nil function")}
	}
	if p.err == nil && c.key == keyBody {
		// Compiled with the guard's custom functions.
		c.bodyPath, p.err = g.CompileKeyPath(c.bodyExpr)
		var ce *idempotent.ConfigError
		if errors.As(p.err, &ce) {
			p.err = &idempotent.ConfigError{Option: keyBody.option(), Err: ce.Err}
		}
	}
	p.obs = g.Observer()
	return p
}

// run processes items and reports, per item, whether it failed (it goes
// into BatchItemFailures).
func (p *processor[R]) run(ctx context.Context, items []item[R]) []bool {
	ctx = p.prefetch(ctx, items)
	out := make([]outcome, len(items))
	ordered := false
	for i := range items {
		ordered = ordered || items[i].ordered
	}
	if ordered || p.c.concurrency == 1 || len(items) < 2 {
		p.sequential(ctx, items, out)
	} else {
		p.parallel(ctx, items, out)
	}
	failures := make([]bool, len(items))
	for i, o := range out {
		failures[i] = !o.acknowledged()
	}
	if p.obs.Batch != nil {
		p.report(ctx, out)
	}
	return failures
}

// sequential processes items in batch order. After a failure, later records
// of the same ordered group are skipped.
func (p *processor[R]) sequential(ctx context.Context, items []item[R], out []outcome) {
	var stopped map[string]bool
	for i := range items {
		it := &items[i]
		if it.ordered && stopped[it.group] {
			p.logSkip(ctx, it, "an earlier record of its group failed")
			out[i] = skipped
			continue
		}
		out[i] = p.one(ctx, it)
		if it.ordered && !out[i].acknowledged() {
			if stopped == nil {
				stopped = make(map[string]bool)
			}
			stopped[it.group] = true
		}
	}
}

// parallel processes unordered items on up to concurrency goroutines.
// Records that share a key form one lane and run in batch order, so a
// duplicate within the batch replays instead of meeting its twin in
// progress: the outcomes are those of sequential processing.
func (p *processor[R]) parallel(ctx context.Context, items []item[R], out []outcome) {
	var lanes [][]int
	byKey := make(map[string]int)
	for i := range items {
		k := items[i].key
		if k == "" { // unreadable key: fails alone
			lanes = append(lanes, []int{i})
			continue
		}
		if l, ok := byKey[k]; ok {
			lanes[l] = append(lanes[l], i)
			continue
		}
		byKey[k] = len(lanes)
		lanes = append(lanes, []int{i})
	}
	// A lane whose goroutine ends early (fn called runtime.Goexit) leaves
	// its remaining outcomes pending, hence failed; errgroup's deferred
	// bookkeeping still runs, so Wait returns.
	var g errgroup.Group
	g.SetLimit(p.c.concurrency)
	for _, lane := range lanes {
		g.Go(func() error {
			for _, i := range lane {
				out[i] = p.one(ctx, &items[i])
			}
			return nil
		})
	}
	_ = g.Wait() // the lanes report through out, never an error
}

// one processes a single record: it never panics.
func (p *processor[R]) one(ctx context.Context, it *item[R]) outcome {
	if it.keyErr != nil {
		p.logFailure(ctx, it, it.keyErr)
		return failed
	}
	if err := ctx.Err(); err != nil {
		p.logSkip(ctx, it, "the invocation's context is done")
		return skipped
	}
	if dl, ok := ctx.Deadline(); ok {
		if left := dl.Sub(p.g.Now()); left <= 0 || left < p.c.margin {
			p.logSkip(ctx, it, "the invocation's deadline is near")
			return skipped
		}
	}
	ran, err := p.guard(ctx, it)
	if err != nil {
		p.logFailure(ctx, it, err)
		return failed
	}
	if !ran {
		p.log.DebugContext(ctx, "record completed before; acknowledged without running", p.attrs(it)...)
		return replayed
	}
	return completed
}

// doStep is the step name of every record's idempotent.Do: the key material
// already says which kind of key it is.
const doStep = "sqsbatch"

// guard runs fn for the record under idempotent.Do; a panic in fn (after the
// core has released the record) becomes a *panicError.
func (p *processor[R]) guard(ctx context.Context, it *item[R]) (ran bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{id: it.id, value: v, stack: debug.Stack()}
		}
	}()
	_, err = idempotent.Do(ctx, p.g, doStep, it.key, func(ctx context.Context) (struct{}, error) {
		ran = true
		return struct{}{}, p.fn(ctx, it.rec)
	})
	return ran, err
}

func (p *processor[R]) attrs(it *item[R], more ...any) []any {
	return append([]any{slog.String("source", p.source), slog.String("itemIdentifier", it.id)}, more...)
}

func (p *processor[R]) logFailure(ctx context.Context, it *item[R], err error) {
	var pe *panicError
	if errors.As(err, &pe) {
		p.log.ErrorContext(ctx, "record panicked; reported as a batch item failure",
			p.attrs(it, slog.String("panic", fmt.Sprint(pe.value)), slog.String("stack", string(pe.stack)))...)
		return
	}
	p.log.WarnContext(ctx, "record failed; reported as a batch item failure", p.attrs(it, slog.Any("error", err))...)
}

func (p *processor[R]) logSkip(ctx context.Context, it *item[R], why string) {
	p.log.WarnContext(ctx, "record not started; reported as a batch item failure", p.attrs(it, slog.String("reason", why))...)
}

// panicError is the failure of a record whose function panicked. The batch
// wrapper recovers the panic (the core has already released the record), logs
// it with its stack and reports the record in BatchItemFailures; the other
// records go on.
type panicError struct {
	id    string
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("sqsbatch: record %s panicked: %v", e.id, e.value)
}

// failures lists the failed items' identifiers in batch order, in the
// response type of the event source (never nil: "batchItemFailures": []).
func failures[R, F any](failed []bool, items []item[R], mk func(id string) F) []F {
	out := []F{}
	for i, f := range failed {
		if f {
			out = append(out, mk(items[i].id))
		}
	}
	return out
}

// report gives the batch's counts to the observers.
func (p *processor[R]) report(ctx context.Context, out []outcome) {
	e := idempotent.BatchReport{Source: p.source, Records: len(out)}
	for _, o := range out {
		// Failures are what BatchItemFailures lists: every outcome not
		// acknowledged, pending ones (runtime.Goexit) included.
		if !o.acknowledged() {
			e.Failures++
		} else if o == replayed {
			e.Replays++
		}
	}
	p.obs.Batch(ctx, e)
}
