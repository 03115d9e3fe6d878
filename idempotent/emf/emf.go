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

// Options configure New.
type Options struct {
	// Namespace is the CloudWatch namespace (default DefaultNamespace):
	// 1–255 characters, not starting with "AWS/".
	Namespace string
	// Dimensions are the dimensions of every metric, name → value: at most
	// 30, names 1–255 characters, values 1–1024, no name equal to a metric
	// name. Default: FunctionName = $AWS_LAMBDA_FUNCTION_NAME when it is
	// set, else none. Set it to an empty, non-nil map for none.
	Dimensions map[string]string
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
	prefix []byte // `{"_aws":{"Timestamp":`
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
	o := Options{Namespace: DefaultNamespace, Writer: os.Stdout, Clock: time.Now}
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
	m.prefix = []byte(`{"_aws":{"Timestamp":`)
	m.mid = fmt.Appendf(nil, `,"CloudWatchMetrics":[{"Namespace":%s,"Dimensions":[%s],"Metrics":[`, ns, set)
	for _, k := range names {
		kj, _ := json.Marshal(k)
		vj, _ := json.Marshal(o.Dimensions[k])
		m.dims = fmt.Appendf(m.dims, ",%s:%s", kj, vj)
	}
	m.pool.New = func() any { return new(batch) }
	return m, nil
}

// ErrOptions is wrapped by the errors of New.
var ErrOptions = errors.New("emf: invalid options")

func check(o *Options) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrOptions, fmt.Sprintf(format, a...))
	}
	if n := len(o.Namespace); n == 0 || n > 255 || strings.HasPrefix(o.Namespace, "AWS/") || !printable(o.Namespace) {
		return bad("namespace %q must be 1-255 printable characters, not starting with AWS/", o.Namespace)
	}
	if o.Writer == nil {
		return bad("nil Writer")
	}
	if o.Clock == nil {
		return bad("nil Clock")
	}
	if len(o.Dimensions) > maxDimensions {
		return bad("%d dimensions, at most %d", len(o.Dimensions), maxDimensions)
	}
	for k, v := range o.Dimensions {
		if len(k) == 0 || len(k) > 255 || !printable(k) || strings.HasPrefix(k, ":") {
			return bad("dimension name %q must be 1-255 printable characters, not starting with ':'", k)
		}
		if len(v) == 0 || len(v) > 1024 || !printable(v) {
			return bad("dimension %q value %q must be 1-1024 printable characters", k, v)
		}
		if k == "_aws" || slices.ContainsFunc(metrics[:], func(d metricDef) bool { return d.name == k }) {
			return bad("dimension name %q is a reserved or metric name", k)
		}
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
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

func (m *Metrics) call(ctx context.Context, e idempotent.Event) {
	m.with(ctx, func(b *counts) { b.addEvent(&e) })
}

func (m *Metrics) http(ctx context.Context, e idempotent.HTTPEvent) {
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

func (m *Metrics) batch(ctx context.Context, e idempotent.BatchEvent) {
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
	buf := append(m.buf[:0], m.prefix...)
	buf = strconv.AppendInt(buf, m.clock().UnixMilli(), 10)
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
}

func (b *counts) addEvent(e *idempotent.Event) {
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
