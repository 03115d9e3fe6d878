package idempotent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Outcome is what became of one guarded call. Every call reports exactly one.
type Outcome uint8

// The outcomes. The zero value is OutcomeUnknown, which the core never
// reports: a Report with it was not filled by the core.
const (
	OutcomeUnknown Outcome = iota
	// OutcomeCompleted: the function ran and its result was stored.
	OutcomeCompleted
	// OutcomeFailed: the function returned an error (or a result that could
	// not be encoded) and the key was released.
	OutcomeFailed
	// OutcomePanicked: the function panicked; the key was released and the
	// panic goes on.
	OutcomePanicked
	// OutcomeReplayed: a completed record was found in the store and its
	// result returned; the function did not run.
	OutcomeReplayed
	// OutcomeCacheReplayed: the result came from the local cache
	// (WithLocalCache), with no store call.
	OutcomeCacheReplayed
	// OutcomeInProgress: another run held the key; the call failed at once
	// with ErrInProgress.
	OutcomeInProgress
	// OutcomeWaitReplayed: another run held the key; the call waited
	// (WithWait) and replayed its result.
	OutcomeWaitReplayed
	// OutcomeWaitTimedOut: another run held the key; the call waited
	// (WithWait) until its wait or its context ran out, and failed with
	// ErrInProgress.
	OutcomeWaitTimedOut
	// OutcomePayloadMismatch: the key was used before with another payload.
	OutcomePayloadMismatch
	// OutcomeUnguarded: the event had no key; the function ran unguarded.
	OutcomeUnguarded
	// OutcomeNoKey: the event had no key (or its key could not be read) and
	// the call failed with ErrNoKey (WithRequireKey) or the key error.
	OutcomeNoKey
	// OutcomeLeaseLost: the function ran, but its lease ended and another run
	// took the key over before it completed; its result was not stored.
	OutcomeLeaseLost
	// OutcomeStoreError: a store operation (Report.Op) failed. With "acquire"
	// or "get" the function did not run; with "complete" it ran and its
	// result was not stored; with "release" it failed and its key stays held
	// until the lease ends.
	OutcomeStoreError
	// OutcomeCorruptRecord: the stored record or result could not be read
	// (ErrCorruptRecord); the function did not run.
	OutcomeCorruptRecord
	// OutcomeCoalesced: a call of the same record in this process held it;
	// the call waited in memory for that call and replayed the result it
	// stored or found, making no store call (docs/concurrency.md).
	OutcomeCoalesced
)

var outcomeNames = [...]string{
	OutcomeUnknown:         "unknown",
	OutcomeCompleted:       "completed",
	OutcomeFailed:          "failed",
	OutcomePanicked:        "panicked",
	OutcomeReplayed:        "replayed",
	OutcomeCacheReplayed:   "cache_replayed",
	OutcomeInProgress:      "in_progress",
	OutcomeWaitReplayed:    "wait_replayed",
	OutcomeWaitTimedOut:    "wait_timed_out",
	OutcomePayloadMismatch: "payload_mismatch",
	OutcomeUnguarded:       "unguarded",
	OutcomeNoKey:           "no_key",
	OutcomeLeaseLost:       "lease_lost",
	OutcomeStoreError:      "store_error",
	OutcomeCorruptRecord:   "corrupt_record",
	OutcomeCoalesced:       "coalesced",
}

// String is the outcome's stable snake_case name, as logged and exported.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", o)
}

// Replay reports whether the caller got a stored result without the
// function running.
func (o Outcome) Replay() bool {
	return o == OutcomeReplayed || o == OutcomeCacheReplayed || o == OutcomeWaitReplayed || o == OutcomeCoalesced
}

// Report is the report of one guarded call (one Wrap invocation, one Do).
type Report struct {
	// Name is the key namespace (WithName, else the function name).
	Name string
	// Record is the record id, "<name>#<sha256 hex>"; empty when the call
	// had no key. The raw key is never reported.
	Record string
	// Outcome is what became of the call.
	Outcome Outcome
	// Takeover is true when this call acquired the key by replacing an
	// in-progress record of another run whose lease had ended: that run
	// crashed or overran its lease, and may have had effects. The function
	// then ran; Outcome says how that went. Stores that do not report the
	// record they replace (see Store.Acquire) never set it.
	Takeover bool
	// Op is the failed store operation of an OutcomeStoreError: "acquire",
	// "get", "complete" or "release".
	Op string
	// Attempts is the number of conditional writes (Store.Acquire calls)
	// made; zero for a cache replay or a call without key.
	Attempts int
	// Polls is the number of reads made while waiting (WithWait).
	Polls int
	// LeaseEnd is the end of this call's lease when it acquired the key, or
	// of the holder's lease for OutcomeInProgress and OutcomeWaitTimedOut.
	LeaseEnd time.Time
	// StoreTime is the time spent in Store calls, HandlerTime the time spent
	// in the guarded function, both measured with the configured clock
	// (WithClock). Waiting between polls counts in neither.
	StoreTime, HandlerTime time.Duration
	// Err is the error the call returns, nil on success.
	Err error
}

// Phase is a step of a guarded call, as reported to Observer.Phase.
type Phase uint8

// The phases. PhaseCall spans the whole guarded call and encloses the others.
const (
	PhaseCall Phase = iota
	// PhaseAcquire: the conditional write, and the reads and waits that
	// resolve a conflict.
	PhaseAcquire
	// PhaseRun: the guarded function. Its context is the one the function
	// gets.
	PhaseRun
	// PhaseComplete: storing the result.
	PhaseComplete
	// PhaseRelease: freeing the key after a failed run.
	PhaseRelease
)

var phaseNames = [...]string{PhaseCall: "call", PhaseAcquire: "acquire", PhaseRun: "run", PhaseComplete: "complete", PhaseRelease: "release"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", p)
}

// HTTPReport is the report of one request an HTTP adapter (apigw, idemhttp)
// answered, after the core's Report of its guarded call, if any.
type HTTPReport struct {
	// Method is the request method.
	Method string
	// Status is the status code of the response, 0 when the handler returned
	// a Go error instead of a response.
	Status int
}

// StatusClass is "2xx", "3xx", "4xx" or "5xx" (a Go error counts as "5xx",
// which is what Lambda's front answers).
func (e HTTPReport) StatusClass() string {
	switch {
	case e.Status >= 200 && e.Status < 300:
		return "2xx"
	case e.Status >= 300 && e.Status < 400:
		return "3xx"
	case e.Status >= 400 && e.Status < 500:
		return "4xx"
	}
	return "5xx"
}

// BatchReport is the report of one batch the batch wrapper (sqsbatch)
// processed.
type BatchReport struct {
	// Source is the event source: "sqs", "kinesis" or "dynamodb".
	Source string
	// Records is the number of records in the batch, Failures those reported
	// in BatchItemFailures (failed or not started), Replays those completed
	// before and acknowledged without running.
	Records, Failures, Replays int
}

// Observer receives what the idempotency layer does. Every field is
// optional; the zero Observer observes nothing. Install it with
// WithObserver; several observers may be installed, and each sees every
// report. Functions are called on the goroutine of the call they report, and
// must be safe for concurrent use when the guarded handler is.
//
// Without an observer the core does no extra work: no clock reads, no
// allocation.
type Observer struct {
	// Call receives the Report of every guarded call, once, when it ends (for
	// a panic, before the panic goes on). ctx is the call's context, inside
	// PhaseCall.
	Call func(ctx context.Context, e Report)
	// Phase, when set, is called as each phase of a guarded call starts. It
	// returns the context the phase runs with (a span's, say) and a function
	// the core calls when the phase ends, with the phase's error.
	Phase func(ctx context.Context, p Phase, record string) (context.Context, func(error))
	// HTTP receives a report per request from the HTTP adapters.
	HTTP func(ctx context.Context, e HTTPReport)
	// Batch receives a report per batch from the batch wrapper.
	Batch func(ctx context.Context, e BatchReport)
}

// WithObserver installs o. Several WithObserver options add up.
//
// Observers are merged once, by New; a Guard's Observer method returns
// the merged one for adapters.
//
// An observer cannot change what the guard does: a panic in any of its
// functions is recovered and logged (slog's default logger), and a Phase that
// returns a nil context leaves the phase on the context it was given.
func WithObserver(o Observer) Option {
	return func(c *config) {
		if o.Call != nil || o.Phase != nil || o.HTTP != nil || o.Batch != nil {
			c.observers = append(c.observers, guarded(o))
		}
	}
}

// guarded wraps o's functions so that they cannot break a guarded call: a
// panic in an observer between a successful run and its Complete would
// otherwise leave the key held and the result unstored (the handler would
// run again once the lease ends).
func guarded(o Observer) Observer {
	g := Observer{}
	if f := o.Call; f != nil {
		g.Call = func(ctx context.Context, e Report) {
			defer recoverObserver("Call")
			f(ctx, e)
		}
	}
	if f := o.HTTP; f != nil {
		g.HTTP = func(ctx context.Context, e HTTPReport) {
			defer recoverObserver("HTTP")
			f(ctx, e)
		}
	}
	if f := o.Batch; f != nil {
		g.Batch = func(ctx context.Context, e BatchReport) {
			defer recoverObserver("Batch")
			f(ctx, e)
		}
	}
	if f := o.Phase; f != nil {
		g.Phase = func(ctx context.Context, p Phase, record string) (pctx context.Context, end func(error)) {
			pctx, end = ctx, noEnd
			defer recoverObserver("Phase")
			c, e := f(ctx, p, record)
			if c != nil {
				pctx = c
			}
			if e != nil {
				end = func(err error) {
					defer recoverObserver("Phase end")
					e(err)
				}
			}
			return pctx, end
		}
	}
	return g
}

// recoverObserver ends a panic in an observer's function.
func recoverObserver(fn string) {
	if r := recover(); r != nil {
		slog.Default().Error("idempotent: an observer panicked; the guarded call goes on", slog.String("func", fn), slog.Any("panic", r))
	}
}

// observers is the installed observers; nil when none.
type observers []Observer

func (os observers) merged() Observer {
	switch len(os) {
	case 0:
		return Observer{}
	case 1:
		return os[0]
	}
	var m Observer
	for _, o := range os {
		if o.Call != nil {
			m.Call = func(ctx context.Context, e Report) {
				for _, o := range os {
					if o.Call != nil {
						o.Call(ctx, e)
					}
				}
			}
		}
		if o.Phase != nil {
			m.Phase = os.phase
		}
		if o.HTTP != nil {
			m.HTTP = func(ctx context.Context, e HTTPReport) {
				for _, o := range os {
					if o.HTTP != nil {
						o.HTTP(ctx, e)
					}
				}
			}
		}
		if o.Batch != nil {
			m.Batch = func(ctx context.Context, e BatchReport) {
				for _, o := range os {
					if o.Batch != nil {
						o.Batch(ctx, e)
					}
				}
			}
		}
	}
	return m
}

// phase starts p in every observer that watches phases, nesting their
// contexts in installation order, and ends them in reverse order.
func (os observers) phase(ctx context.Context, p Phase, record string) (context.Context, func(error)) {
	var ends []func(error)
	for _, o := range os {
		if o.Phase == nil {
			continue
		}
		var end func(error)
		ctx, end = o.Phase(ctx, p, record)
		if end != nil {
			ends = append(ends, end)
		}
	}
	return ctx, func(err error) {
		for i := len(ends) - 1; i >= 0; i-- {
			ends[i](err)
		}
	}
}

// tracker follows one guarded call for its report. Its zero cost when no
// observer is installed comes from on: without it, no clock is read and no
// phase is started.
type tracker struct {
	c       *config
	on      bool // an observer is installed
	ev      Report
	endCall func(error)
	hook    any // the call's replay hook
}

func noEnd(error) {}

// start begins tracking; ctx is the call's context, and the returned one
// carries PhaseCall's.
func (t *tracker) start(ctx context.Context, c *config, record string) context.Context {
	t.c = c
	t.ev.Name = c.name
	t.ev.Record = record
	t.on = c.observers != nil
	t.endCall = noEnd
	if t.on {
		ctx, t.endCall = t.phase(ctx, PhaseCall)
	}
	return ctx
}

// phase starts p when an observer watches phases.
func (t *tracker) phase(ctx context.Context, p Phase) (context.Context, func(error)) {
	if !t.on {
		return ctx, noEnd
	}
	if len(t.c.observers) == 1 {
		if f := t.c.observers[0].Phase; f != nil {
			ctx, end := f(ctx, p, t.ev.Record)
			if end == nil {
				end = noEnd
			}
			return ctx, end
		}
		return ctx, noEnd
	}
	return t.c.observers.phase(ctx, p, t.ev.Record)
}

// now reads the clock when an observer will use the reading.
func (t *tracker) now() time.Time {
	if !t.on {
		return time.Time{}
	}
	return t.c.clock()
}

// storeSince adds the time since start to StoreTime.
func (t *tracker) storeSince(start time.Time) {
	if t.on {
		t.ev.StoreTime += t.c.clock().Sub(start)
	}
}

// handlerSince adds the time since start to HandlerTime.
func (t *tracker) handlerSince(start time.Time) {
	if t.on {
		t.ev.HandlerTime += t.c.clock().Sub(start)
	}
}

// end reports the call with outcome o and error err, then ends PhaseCall.
func (t *tracker) end(ctx context.Context, o Outcome, err error) {
	t.ev.Outcome = o
	t.ev.Err = err
	if (o == OutcomeStoreError || o == OutcomePanicked) && t.ev.Op == "" {
		var se *StoreError
		if errors.As(err, &se) {
			t.ev.Op = se.Op
		}
	}
	t.c.logEvent(ctx, &t.ev)
	if t.on {
		for _, ob := range t.c.observers {
			if ob.Call != nil {
				ob.Call(ctx, t.ev)
			}
		}
		if err == nil && o == OutcomePanicked {
			err = errPanicked // the call failed, whatever the release did
		}
		t.endCall(err)
	}
}

// endNoKey reports a call refused because its key could not be read.
func endNoKey(ctx context.Context, c *config, err error) {
	var t tracker
	ctx = t.start(ctx, c, "")
	t.end(ctx, OutcomeNoKey, err)
}

// level is the log level of an outcome: the events an operator acts on are
// warnings or errors; the everyday ones are debug.
func (e *Report) level() slog.Level {
	switch e.Outcome {
	case OutcomePanicked, OutcomeStoreError, OutcomeCorruptRecord:
		return slog.LevelError
	case OutcomeLeaseLost, OutcomePayloadMismatch, OutcomeUnguarded, OutcomeWaitTimedOut:
		return slog.LevelWarn
	case OutcomeInProgress:
		return slog.LevelInfo
	}
	if e.Takeover {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

var eventMessages = [...]string{
	OutcomeUnknown:         "idempotent call",
	OutcomeCompleted:       "idempotent run completed",
	OutcomeFailed:          "idempotent run failed; key released",
	OutcomePanicked:        "idempotent run panicked; key released",
	OutcomeReplayed:        "idempotent replay from the store",
	OutcomeCacheReplayed:   "idempotent replay from the local cache",
	OutcomeInProgress:      "idempotency key in progress in another run",
	OutcomeWaitReplayed:    "idempotent replay after waiting for another run",
	OutcomeWaitTimedOut:    "idempotency key still in progress after waiting",
	OutcomePayloadMismatch: "idempotency key reused with a different payload",
	OutcomeUnguarded:       "no idempotency key; ran unguarded",
	OutcomeNoKey:           "no idempotency key; call refused",
	OutcomeLeaseLost:       "idempotency lease lost before completion; result not stored",
	OutcomeStoreError:      "idempotency store failed",
	OutcomeCorruptRecord:   "corrupt idempotency record",
	OutcomeCoalesced:       "idempotent replay of a concurrent duplicate in this process",
}

// Stable field names of the log records. Dashboards and queries may rely on
// them.
const (
	logRecord   = "record"
	logName     = "name"
	logOutcome  = "outcome"
	logTakeover = "takeover"
	logLeaseEnd = "lease_end"
	logAttempt  = "attempt"
	logPolls    = "polls"
	logOp       = "op"
	logStoreMS  = "store_ms"
	logRunMS    = "handler_ms"
	logError    = "error"
)

// logEvent writes one log record for the call, at the outcome's level. The
// record id is logged, never the raw key.
func (c *config) logEvent(ctx context.Context, e *Report) {
	lvl := e.level()
	if !c.logger.Enabled(ctx, lvl) {
		return
	}
	msg := eventMessages[0]
	if int(e.Outcome) < len(eventMessages) {
		msg = eventMessages[e.Outcome]
	}
	if e.Takeover {
		msg += " (took over a lease that had ended: the earlier run may have had effects)"
	}
	attrs := make([]slog.Attr, 0, 11)
	attrs = append(attrs,
		slog.String(logOutcome, e.Outcome.String()),
		slog.String(logName, e.Name),
		slog.String(logRecord, e.Record),
		slog.Int(logAttempt, e.Attempts),
	)
	if e.Takeover {
		attrs = append(attrs, slog.Bool(logTakeover, true))
	}
	if !e.LeaseEnd.IsZero() {
		attrs = append(attrs, slog.Time(logLeaseEnd, e.LeaseEnd))
	}
	if e.Polls > 0 {
		attrs = append(attrs, slog.Int(logPolls, e.Polls))
	}
	if e.Op != "" {
		attrs = append(attrs, slog.String(logOp, e.Op))
	}
	if c.observers != nil {
		attrs = append(attrs,
			slog.Float64(logStoreMS, float64(e.StoreTime)/float64(time.Millisecond)),
			slog.Float64(logRunMS, float64(e.HandlerTime)/float64(time.Millisecond)))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.Any(logError, e.Err))
	}
	c.logger.LogAttrs(ctx, lvl, msg, attrs...)
}

// Replay describes a replayed result to a replay hook.
type Replay struct {
	// Name is the key namespace, Record the record id.
	Name, Record string
	// Outcome is OutcomeReplayed, OutcomeCacheReplayed,
	// OutcomeWaitReplayed or OutcomeCoalesced.
	Outcome Outcome
}

// WithReplayHook calls f with every replayed result before the caller gets
// it: f sees the result and returns the one the caller receives — v itself,
// or a decorated copy (the equivalent of Powertools' response_hook). The
// stored record is never changed.
//
// T is the result type of the guarded function: Out of Wrap, T of Do; for the
// HTTP adapters, the adapter's response type (events.APIGatewayV2HTTPResponse,
// …), so a hook can add a header to replayed responses. With T = any, f sees
// the replays of every result type, and must return a value of v's dynamic
// type. A hook of another type fails the call with a *ConfigError before
// anything runs; one returning a value of the wrong dynamic type fails the
// replay with a *ConfigError.
//
// A hook is checked against the result type when Wrap is built, and on every
// Do call (a type switch, no allocation).
func WithReplayHook[T any](f func(ctx context.Context, r Replay, v T) T) SharedOption {
	if f == nil {
		return hookOption{err: &ConfigError{Option: "WithReplayHook", Err: errors.New("nil hook")}}
	}
	return hookOption{hook: f}
}

// SharedOption is an option that applies to both Wrap and Do: WithReplayHook.
type SharedOption interface {
	WrapOption
	CallOption
}

// hookOption is WithReplayHook's SharedOption.
type hookOption struct {
	hook any
	err  error
}

func (o hookOption) applyWrap(w *wrapConfig) {
	w.replayHook = o.hook
	if o.err != nil {
		w.err = errors.Join(w.err, o.err)
	}
}

func (o hookOption) applyCall(c *callConfig) {
	c.replayHook = o.hook
	if o.err != nil {
		c.err = errors.Join(c.err, o.err)
	}
}

// checkReplayHook fails when the replay hook cannot take results of type T.
func checkReplayHook[T any](hook any) error {
	switch hook.(type) {
	case nil, func(context.Context, Replay, T) T, func(context.Context, Replay, any) any:
		return nil
	}
	return &ConfigError{Option: "WithReplayHook", Err: fmt.Errorf("hook %T does not take results of type %T", hook, *new(T))}
}

// replayed passes a replayed result through the replay hook, if any.
func replayed[T any](ctx context.Context, c *config, hook any, id string, o Outcome, v T) (T, error) {
	if hook == nil {
		return v, nil
	}
	r := Replay{Name: c.name, Record: id, Outcome: o}
	switch f := hook.(type) {
	case func(context.Context, Replay, T) T:
		return f(ctx, r, v), nil
	case func(context.Context, Replay, any) any:
		if out, ok := f(ctx, r, v).(T); ok {
			return out, nil
		}
	}
	var zero T
	return zero, &ConfigError{Option: "WithReplayHook", Err: fmt.Errorf("hook for record %s did not return a %T", id, zero)}
}
