package emf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// DefaultNamespace is the CloudWatch namespace of the metrics when
// Options.Namespace is empty.
const DefaultNamespace = "idemlambda"

// LevelFatal is the default Options.Level: the one level Lambda's
// application log-level filtering never drops.
const LevelFatal = "FATAL"

// levels are Lambda's application log levels, most detailed first.
var levels = [...]string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}

// Options configure New.
type Options struct {
	// Namespace is the CloudWatch namespace (default DefaultNamespace):
	// 1–255 printable ASCII characters, not starting with ':' or "AWS/".
	Namespace string
	// Dimensions are the dimensions of every metric, name → value: at most
	// 30; names 1–255 and values 1–1024 printable ASCII characters, not all
	// spaces; no name starting with ':', equal to a metric name or to a
	// member the record itself uses (_aws, level, timestamp). Default:
	// FunctionName = $AWS_LAMBDA_FUNCTION_NAME when it is set, else none.
	// Set it to an empty, non-nil map for none.
	Dimensions map[string]string
	// Level is the "level" member of every record (default LevelFatal),
	// one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL. Lambda's log-level
	// filtering (LoggingConfig ApplicationLogLevel with LogFormat JSON)
	// keeps a JSON line only when its level is at the function's level or
	// less detailed, and counts a line with no level as INFO; FATAL, the
	// least detailed level, is kept at every setting, so the metrics reach
	// CloudWatch whatever the function's log level is. Set it lower only
	// when the function's ApplicationLogLevel is known to let it through.
	Level string
	// Writer receives the records, one JSON line each (default os.Stdout,
	// the Lambda convention). Writes from one Metrics value are serialised.
	Writer io.Writer
	// Clock gives the records' timestamps (default time.Now).
	Clock func() time.Time
}

// Metrics collects reports and writes them as EMF records. It is safe for
// concurrent use. Create one per process with New.
type Metrics struct {
	w      io.Writer
	clock  func() time.Time
	prefix []byte // `{"level":"FATAL","timestamp":"` (then RFC 3339, `","_aws":{"Timestamp":`)
	mid    []byte // `,"CloudWatchMetrics":[{"Namespace":…,"Dimensions":[[…]],"Metrics":[`
	dims   []byte // `,"FunctionName":"fn"` (the dimension values at the root)

	wmu  sync.Mutex // serialises writes
	mu   sync.Mutex // guards shared
	buf  []byte     // guarded by wmu
	pool sync.Pool  // *batch

	shared counts // reports made outside Wrap; guarded by mu
}

// New returns a Metrics writing with the given options, or an error when
// they break the EMF limits.
func New(optFns ...func(*Options)) (*Metrics, error) {
	o := Options{Namespace: DefaultNamespace, Writer: os.Stdout, Clock: time.Now, Level: LevelFatal}
	for _, f := range optFns {
		f(&o)
	}
	if o.Dimensions == nil {
		o.Dimensions = map[string]string{}
		if fn := os.Getenv(idempotent.FunctionNameEnv); fn != "" {
			o.Dimensions["FunctionName"] = fn
		}
	}
	if err := check(&o); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(o.Dimensions))
	for k := range o.Dimensions {
		names = append(names, k)
	}
	slices.Sort(names)
	ns, _ := json.Marshal(o.Namespace)
	set, _ := json.Marshal(names)
	m := &Metrics{w: o.Writer, clock: o.Clock}
	lv, _ := json.Marshal(o.Level)
	m.prefix = fmt.Appendf(nil, `{"level":%s,"timestamp":"`, lv)
	m.mid = fmt.Appendf(nil, `,"CloudWatchMetrics":[{"Namespace":%s,"Dimensions":[%s],"Metrics":[`, ns, set)
	for _, k := range names {
		kj, _ := json.Marshal(k)
		vj, _ := json.Marshal(o.Dimensions[k])
		m.dims = fmt.Appendf(m.dims, ",%s:%s", kj, vj)
	}
	m.pool.New = func() any { return new(batch) }
	return m, nil
}

// ErrOptions is wrapped by the errors of New (each an *OptionError).
var ErrOptions = errors.New("emf: invalid options")

// OptionError is the error of New for an option CloudWatch or Lambda would
// refuse or mangle. It wraps ErrOptions.
type OptionError struct {
	// Field is the Options field: Namespace, Dimensions, Level, Writer or
	// Clock.
	Field string
	// Name is the dimension's name when Field is Dimensions.
	Name string
	// Value is the rejected value (the dimension's value when Name is set
	// and the name itself is valid).
	Value string
	// Reason says which rule it breaks.
	Reason string
}

func (e *OptionError) Error() string {
	if e.Name != "" || e.Field == "Dimensions" && e.Value != "" {
		return fmt.Sprintf("%v: %s %q = %q: %s", ErrOptions, e.Field, e.Name, e.Value, e.Reason)
	}
	return fmt.Sprintf("%v: %s %q: %s", ErrOptions, e.Field, e.Value, e.Reason)
}

// Unwrap returns ErrOptions.
func (e *OptionError) Unwrap() error { return ErrOptions }

func check(o *Options) error {
	if r := asciiText(o.Namespace, 255); r != "" {
		return &OptionError{Field: "Namespace", Value: o.Namespace, Reason: r}
	}
	if o.Namespace[0] == ':' || strings.HasPrefix(o.Namespace, "AWS/") {
		return &OptionError{Field: "Namespace", Value: o.Namespace, Reason: "starts with ':' or AWS/"}
	}
	if !slices.Contains(levels[:], o.Level) {
		return &OptionError{Field: "Level", Value: o.Level, Reason: "not one of " + strings.Join(levels[:], ", ")}
	}
	if o.Writer == nil {
		return &OptionError{Field: "Writer", Reason: "nil"}
	}
	if o.Clock == nil {
		return &OptionError{Field: "Clock", Reason: "nil"}
	}
	if len(o.Dimensions) > maxDimensions {
		return &OptionError{Field: "Dimensions", Reason: fmt.Sprintf("%d dimensions, at most %d", len(o.Dimensions), maxDimensions)}
	}
	for k, v := range o.Dimensions {
		if r := asciiText(k, 255); r != "" {
			return &OptionError{Field: "Dimensions", Name: k, Reason: "name " + r}
		}
		if k[0] == ':' {
			return &OptionError{Field: "Dimensions", Name: k, Reason: "name starts with ':'"}
		}
		if k == "_aws" || k == "level" || k == "timestamp" || slices.ContainsFunc(metrics[:], func(d metricDef) bool { return d.name == k }) {
			return &OptionError{Field: "Dimensions", Name: k, Reason: "name is a metric's or a record member's"}
		}
		if r := asciiText(v, 1024); r != "" {
			return &OptionError{Field: "Dimensions", Name: k, Value: v, Reason: "value " + r}
		}
	}
	return nil
}

// asciiText says why s is not 1 to max printable ASCII characters with one
// that is not a space, or "" when it is. CloudWatch refuses non-ASCII and
// control characters in namespaces and dimensions; JSON would turn invalid
// UTF-8 into U+FFFD, so such bytes never reach the record.
func asciiText(s string, max int) string {
	if len(s) == 0 || len(s) > max {
		return fmt.Sprintf("must be 1-%d characters", max)
	}
	blank := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("byte %#x at %d is not printable ASCII", c, i)
		}
		if c != ' ' {
			blank = false
		}
	}
	if blank {
		return "is blank"
	}
	return ""
}

// The EMF limits this package keeps to.
const (
	maxMetrics    = 100 // per metric directive
	maxDimensions = 30  // per dimension set
)

// Option installs m's observer in the idempotency core (and, through the
// adapters' core options, in apigw, idemhttp and sqsbatch).
func (m *Metrics) Option() idempotent.Option { return idempotent.WithObserver(m.Observer()) }

// Observer returns the observer that counts into m.
func (m *Metrics) Observer() idempotent.Observer {
	return idempotent.Observer{Call: m.call, HTTP: m.http, Batch: m.batch}
}

type ctxKey struct{}

// Wrap returns h with its invocation's metrics batched: reports made while
// h runs (on its context) are written as one record when h returns or
// panics.
func Wrap[In, Out any](m *Metrics, h func(context.Context, In) (Out, error)) func(context.Context, In) (Out, error) {
	return func(ctx context.Context, in In) (Out, error) {
		b := m.pool.Get().(*batch)
		defer func() {
			b.mu.Lock()
			_ = m.write(&b.c)
			b.c = counts{}
			b.mu.Unlock()
			m.pool.Put(b)
		}()
		return h(context.WithValue(ctx, ctxKey{}, b), in)
	}
}

// Flush writes what was reported outside Wrap since the last Flush, if
// anything, as one record.
func (m *Metrics) Flush() error {
	m.mu.Lock()
	c := m.shared
	m.shared = counts{}
	m.mu.Unlock()
	return m.write(&c)
}

// with calls f with the counts of ctx's invocation, or the shared ones.
func (m *Metrics) with(ctx context.Context, f func(*counts)) {
	if b, ok := ctx.Value(ctxKey{}).(*batch); ok {
		b.mu.Lock()
		f(&b.c)
		b.mu.Unlock()
		return
	}
	m.mu.Lock()
	f(&m.shared)
	m.mu.Unlock()
}

func (m *Metrics) call(ctx context.Context, e idempotent.Report) {
	m.with(ctx, func(b *counts) { b.addEvent(&e) })
}

func (m *Metrics) http(ctx context.Context, e idempotent.HTTPReport) {
	m.with(ctx, func(b *counts) {
		switch e.StatusClass() {
		case "2xx":
			b.add(mHTTP2xx, 1)
		case "3xx":
			b.add(mHTTP3xx, 1)
		case "4xx":
			b.add(mHTTP4xx, 1)
		default:
			b.add(mHTTP5xx, 1)
		}
	})
}

func (m *Metrics) batch(ctx context.Context, e idempotent.BatchReport) {
	m.with(ctx, func(b *counts) {
		b.add(mBatchRecords, float64(e.Records))
		b.add(mBatchFailures, float64(e.Failures))
		b.add(mBatchReplays, float64(e.Replays))
	})
}

// write writes b as one record, if it holds anything.
func (m *Metrics) write(b *counts) error {
	if b.set == 0 {
		return nil
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	now := m.clock()
	buf := append(m.buf[:0], m.prefix...)
	// Lambda reads "level" only beside a valid RFC 3339 "timestamp".
	buf = now.UTC().AppendFormat(buf, "2006-01-02T15:04:05.000Z")
	buf = append(buf, `","_aws":{"Timestamp":`...)
	buf = strconv.AppendInt(buf, now.UnixMilli(), 10)
	buf = append(buf, m.mid...)
	first := true
	for i := range metrics {
		if b.set&(1<<i) == 0 {
			continue
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = append(buf, metrics[i].directive...)
	}
	buf = append(buf, "]}]}"...)
	buf = append(buf, m.dims...)
	for i := range metrics {
		if b.set&(1<<i) == 0 {
			continue
		}
		buf = append(buf, ",\""...)
		buf = append(buf, metrics[i].name...)
		buf = append(buf, "\":"...)
		if v := b.v[i]; v == float64(int64(v)) {
			buf = strconv.AppendInt(buf, int64(v), 10) // counts: the fast path
		} else {
			buf = strconv.AppendFloat(buf, v, 'f', -1, 64)
		}
	}
	buf = append(buf, "}\n"...)
	m.buf = buf
	_, err := m.w.Write(buf)
	return err
}

// batch is the counts of one invocation, which may report from several
// goroutines (sqsbatch.WithConcurrency).
type batch struct {
	mu sync.Mutex
	c  counts
}

// counts are the metrics of one record.
type counts struct {
	set uint64 // bit i: metric i was reported
	v   [nMetrics]float64
}

func (b *counts) add(i metric, v float64) {
	if v == 0 {
		return
	}
	b.set |= 1 << i
	b.v[i] += v
}

var outcomeMetric = [...]metric{
	idempotent.OutcomeCompleted:       mCompleted,
	idempotent.OutcomeFailed:          mFailed,
	idempotent.OutcomePanicked:        mPanicked,
	idempotent.OutcomeReplayed:        mReplayed,
	idempotent.OutcomeCacheReplayed:   mCacheReplayed,
	idempotent.OutcomeInProgress:      mInProgress,
	idempotent.OutcomeWaitReplayed:    mWaitReplayed,
	idempotent.OutcomeWaitTimedOut:    mWaitTimedOut,
	idempotent.OutcomePayloadMismatch: mPayloadMismatch,
	idempotent.OutcomeUnguarded:       mUnguarded,
	idempotent.OutcomeNoKey:           mNoKey,
	idempotent.OutcomeLeaseLost:       mLeaseLost,
	idempotent.OutcomeStoreError:      mStoreErrors,
	idempotent.OutcomeCorruptRecord:   mCorruptRecords,
	idempotent.OutcomeCoalesced:       mCoalesced,
}

func (b *counts) addEvent(e *idempotent.Report) {
	b.add(mCalls, 1)
	if int(e.Outcome) < len(outcomeMetric) && e.Outcome != idempotent.OutcomeUnknown {
		b.add(outcomeMetric[e.Outcome], 1)
	}
	if e.Op != "" {
		if e.Outcome != idempotent.OutcomeStoreError {
			b.add(mStoreErrors, 1) // a panic whose release failed
		}
		switch e.Op {
		case "acquire":
			b.add(mStoreErrorsAcquire, 1)
		case "get":
			b.add(mStoreErrorsGet, 1)
		case "complete":
			b.add(mStoreErrorsComplete, 1)
		case "release":
			b.add(mStoreErrorsRelease, 1)
		}
	}
	if e.Takeover {
		b.add(mLeaseTakeovers, 1)
	}
	// Milliseconds with microsecond precision.
	b.add(mStoreTime, float64(e.StoreTime.Microseconds())/1000)
	b.add(mHandlerTime, float64(e.HandlerTime.Microseconds())/1000)
}

// metric indexes the metric table.
type metric uint8

const (
	mCalls metric = iota
	mCompleted
	mFailed
	mPanicked
	mReplayed
	mCacheReplayed
	mInProgress
	mWaitReplayed
	mWaitTimedOut
	mPayloadMismatch
	mUnguarded
	mNoKey
	mLeaseLost
	mLeaseTakeovers
	mStoreErrors
	mStoreErrorsAcquire
	mStoreErrorsGet
	mStoreErrorsComplete
	mStoreErrorsRelease
	mCorruptRecords
	mStoreTime
	mHandlerTime
	mHTTP2xx
	mHTTP3xx
	mHTTP4xx
	mHTTP5xx
	mBatchRecords
	mBatchFailures
	mBatchReplays
	mCoalesced
	nMetrics
)

type metricDef struct {
	name, unit string
	directive  string // {"Name":…,"Unit":…}
}

var metrics = func() [nMetrics]metricDef {
	defs := [nMetrics]metricDef{
		mCalls:               {name: "Calls"},
		mCompleted:           {name: "Completed"},
		mFailed:              {name: "Failed"},
		mPanicked:            {name: "Panicked"},
		mReplayed:            {name: "Replayed"},
		mCacheReplayed:       {name: "CacheReplayed"},
		mInProgress:          {name: "InProgress"},
		mWaitReplayed:        {name: "WaitReplayed"},
		mWaitTimedOut:        {name: "WaitTimedOut"},
		mPayloadMismatch:     {name: "PayloadMismatch"},
		mUnguarded:           {name: "Unguarded"},
		mNoKey:               {name: "NoKey"},
		mLeaseLost:           {name: "LeaseLost"},
		mLeaseTakeovers:      {name: "LeaseTakeovers"},
		mStoreErrors:         {name: "StoreErrors"},
		mStoreErrorsAcquire:  {name: "StoreErrorsAcquire"},
		mStoreErrorsGet:      {name: "StoreErrorsGet"},
		mStoreErrorsComplete: {name: "StoreErrorsComplete"},
		mStoreErrorsRelease:  {name: "StoreErrorsRelease"},
		mCorruptRecords:      {name: "CorruptRecords"},
		mStoreTime:           {name: "StoreTime", unit: "Milliseconds"},
		mHandlerTime:         {name: "HandlerTime", unit: "Milliseconds"},
		mHTTP2xx:             {name: "HTTP2xx"},
		mHTTP3xx:             {name: "HTTP3xx"},
		mHTTP4xx:             {name: "HTTP4xx"},
		mHTTP5xx:             {name: "HTTP5xx"},
		mBatchRecords:        {name: "BatchRecords"},
		mBatchFailures:       {name: "BatchFailures"},
		mBatchReplays:        {name: "BatchReplays"},
		mCoalesced:           {name: "Coalesced"},
	}
	for i := range defs {
		if defs[i].unit == "" {
			defs[i].unit = "Count"
		}
		defs[i].directive = fmt.Sprintf(`{"Name":%q,"Unit":%q}`, defs[i].name, defs[i].unit)
	}
	return defs
}()

// The table must fit one directive and the batch's bit set.
var _ [maxMetrics - nMetrics]struct{}
var _ [64 - nMetrics]struct{}

// MetricNames returns the names of every metric the package can write, in
// a fixed order: for alarms and dashboards that must name them exactly (a
// line carries only the metrics of its calls).
func MetricNames() []string {
	out := make([]string, len(metrics))
	for i, d := range metrics {
		out[i] = d.name
	}
	return out
}
