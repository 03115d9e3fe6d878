package idemotel

import (
	"context"
	"errors"
	"runtime/debug"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/idemlambda/idemlambda/idempotent"
)

// ScopeName is the instrumentation scope of the tracer.
const ScopeName = "github.com/idemlambda/idemlambda/idempotent/idemotel"

// Version is the version of this module as the binary was built with it
// (its module version from the build information, "(devel)" when it is
// built from a work tree). It is the instrumentation scope's version.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path == modulePath && bi.Main.Version != "" {
			return bi.Main.Version
		}
		for _, m := range bi.Deps {
			if m.Path == modulePath {
				if m.Replace != nil && m.Replace.Version != "" {
					return m.Replace.Version
				}
				if m.Version != "" {
					return m.Version
				}
			}
		}
	}
	return "(devel)"
}

const modulePath = ScopeName // the package is the module's root

// Span names.
const (
	SpanCall     = "idempotent"
	SpanAcquire  = "idempotent.acquire"
	SpanRun      = "idempotent.run"
	SpanComplete = "idempotent.complete"
	SpanRelease  = "idempotent.release"
)

// Attribute keys.
const (
	AttrName        = attribute.Key("idempotent.name")
	AttrRecord      = attribute.Key("idempotent.record")
	AttrOutcome     = attribute.Key("idempotent.outcome")
	AttrReplay      = attribute.Key("idempotent.replay")
	AttrTakeover    = attribute.Key("idempotent.takeover")
	AttrAttempts    = attribute.Key("idempotent.attempts")
	AttrPolls       = attribute.Key("idempotent.polls")
	AttrStoreOp     = attribute.Key("idempotent.store_op")
	AttrLeaseEnd    = attribute.Key("idempotent.lease_end")
	AttrStoreMS     = attribute.Key("idempotent.store_ms")
	AttrHandlerMS   = attribute.Key("idempotent.handler_ms")
	AttrStatusClass = attribute.Key("idempotent.http.status_class")
	AttrStatus      = attribute.Key("idempotent.http.status")
	AttrSource      = attribute.Key("idempotent.batch.source")
	AttrRecords     = attribute.Key("idempotent.batch.records")
	AttrFailures    = attribute.Key("idempotent.batch.failures")
	AttrReplays     = attribute.Key("idempotent.batch.replays")
)

var spanNames = [...]string{
	idempotent.PhaseCall:     SpanCall,
	idempotent.PhaseAcquire:  SpanAcquire,
	idempotent.PhaseRun:      SpanRun,
	idempotent.PhaseComplete: SpanComplete,
	idempotent.PhaseRelease:  SpanRelease,
}

// Option installs the observer of Observer(tp) in the core (and, through the
// adapters' core options, in apigw, idemhttp and sqsbatch). A nil tp means
// the global tracer provider (otel.GetTracerProvider), as for Observer.
func Option(tp trace.TracerProvider) idempotent.Option {
	return idempotent.WithObserver(Observer(tp))
}

// Observer returns an idempotent.Observer that makes the spans with a
// tracer of tp (the global tracer provider when tp is nil), scope ScopeName
// at Version. HTTP and batch reports become events ("idempotent.http",
// "idempotent.batch") on the span of the context they are made in.
//
// A span whose phase ends with an error has status Error and the
// OpenTelemetry semantic conventions' error.type attribute (see ErrorType).
func Observer(tp trace.TracerProvider) idempotent.Observer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	tr := tp.Tracer(ScopeName, trace.WithInstrumentationVersion(Version()))
	return idempotent.Observer{
		Phase: func(ctx context.Context, p idempotent.Phase, record string) (context.Context, func(error)) {
			name := "idempotent." + p.String()
			if int(p) < len(spanNames) {
				name = spanNames[p]
			}
			ctx, span := tr.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal))
			if p == idempotent.PhaseCall && record != "" {
				span.SetAttributes(AttrRecord.String(record))
			}
			return ctx, func(err error) {
				if err != nil {
					span.SetStatus(codes.Error, err.Error())
					span.SetAttributes(ErrorType(err))
				}
				span.End()
			}
		},
		Call: func(ctx context.Context, e idempotent.Report) {
			span := trace.SpanFromContext(ctx)
			if !span.IsRecording() {
				return
			}
			attrs := []attribute.KeyValue{
				AttrName.String(e.Name),
				AttrOutcome.String(e.Outcome.String()),
				AttrReplay.Bool(e.Outcome.Replay()),
				AttrTakeover.Bool(e.Takeover),
				AttrAttempts.Int(e.Attempts),
				AttrStoreMS.Float64(float64(e.StoreTime.Microseconds()) / 1000),
				AttrHandlerMS.Float64(float64(e.HandlerTime.Microseconds()) / 1000),
			}
			if e.Polls > 0 {
				attrs = append(attrs, AttrPolls.Int(e.Polls))
			}
			if e.Op != "" {
				attrs = append(attrs, AttrStoreOp.String(e.Op))
			}
			if !e.LeaseEnd.IsZero() {
				attrs = append(attrs, AttrLeaseEnd.String(e.LeaseEnd.UTC().Format("2006-01-02T15:04:05.000Z07:00")))
			}
			span.SetAttributes(attrs...)
			if e.Takeover {
				span.AddEvent("idempotent.lease_takeover")
			}
		},
		HTTP: func(ctx context.Context, e idempotent.HTTPReport) {
			span := trace.SpanFromContext(ctx)
			if span.IsRecording() {
				span.AddEvent("idempotent.http", trace.WithAttributes(AttrStatus.Int(e.Status), AttrStatusClass.String(e.StatusClass())))
			}
		},
		Batch: func(ctx context.Context, e idempotent.BatchReport) {
			span := trace.SpanFromContext(ctx)
			if span.IsRecording() {
				span.AddEvent("idempotent.batch", trace.WithAttributes(AttrSource.String(e.Source),
					AttrRecords.Int(e.Records), AttrFailures.Int(e.Failures), AttrReplays.Int(e.Replays)))
			}
		},
	}
}

// sentinels are the core's errors a caller matches with errors.Is, named
// for error.type (they are all *errors.errorString to reflection).
var sentinels = [...]struct {
	err  error
	name string
}{
	{idempotent.ErrInProgress, "idempotent.ErrInProgress"},
	{idempotent.ErrPayloadMismatch, "idempotent.ErrPayloadMismatch"},
	{idempotent.ErrNoKey, "idempotent.ErrNoKey"},
	{idempotent.ErrLeaseLost, "idempotent.ErrLeaseLost"},
	{idempotent.ErrCorruptRecord, "idempotent.ErrCorruptRecord"},
}

// ErrorType returns the error.type attribute for err, low in cardinality
// as the semantic conventions ask: the name of the core's sentinel err
// matches (errors.Is), such as "idempotent.ErrLeaseLost"; otherwise what
// semconv.ErrorType gives: an ErrorType() string method's value if err has
// one, else err's Go type after fmt.Errorf wrappers, such as
// "*idempotent.StoreError" or the handler's own error type; "_OTHER" for
// a nil err. Of an errors.Join, the first error is classified.
func ErrorType(err error) attribute.KeyValue {
	// The core joins a handler's error with a failed release: the first is
	// the one that classifies the failure.
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := j.Unwrap(); len(errs) > 0 && errs[0] != nil {
			err = errs[0]
		}
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return semconv.ErrorTypeKey.String(s.name)
		}
	}
	return semconv.ErrorType(err)
}
