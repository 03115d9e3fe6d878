package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/tools/internal/chaos/faultproxy"
)

// Profile is the shape of one chaos run.
type Profile struct {
	// Seed seeds the fault decisions and every client's choices.
	Seed uint64
	// Clients is the number of concurrent clients (W); each performs
	// OpsPerClient logical operations (N) one after the other.
	Clients, OpsPerClient int
	// Containers is the number of simulated Lambda containers sharing the
	// table; every attempt goes to a random one.
	Containers int
	// Faults is the per-request rate of each fault kind while faults are on.
	Faults map[faultproxy.Kind]float64
	// DelayMax bounds the Delay fault (default 150 ms).
	DelayMax time.Duration
	// Crash, Slow and Fail are the fractions of operations whose first
	// attempt crashes, is slow (and meets a concurrent duplicate), or has its
	// handler return an error. Dup is the fraction that get a concurrent
	// duplicate delivery besides.
	Crash, Slow, Fail, Dup float64
	// Lease is the lease of ordinary attempts (default 3 s); ShortLease that
	// of crashing and slow ones (default 300 ms).
	Lease, ShortLease time.Duration
	// FaultAttempts is how many attempts a client makes per operation while
	// faults are on before it sets the operation aside for the drain phase
	// (default 12).
	FaultAttempts int
	// SDKAttempts is the SDK retryer's attempt bound per request (default 3).
	SDKAttempts int
	// Drain bounds the drain phase, after faults stop (default 60 s).
	Drain time.Duration
	// Paths names the operation paths to mix, see Paths(); empty means all.
	Paths []string
	// StoreHook, when set, wraps every container's store: tests break the
	// store on purpose to show that the checker notices.
	StoreHook func(idempotent.Store) idempotent.Store
}

func (p *Profile) defaults() {
	if p.Clients <= 0 {
		p.Clients = 4
	}
	if p.OpsPerClient <= 0 {
		p.OpsPerClient = 10
	}
	if p.Containers <= 0 {
		p.Containers = 3
	}
	if p.DelayMax <= 0 {
		p.DelayMax = 150 * time.Millisecond
	}
	if p.Lease <= 0 {
		p.Lease = 3 * time.Second
	}
	if p.ShortLease <= 0 {
		p.ShortLease = 300 * time.Millisecond
	}
	if p.FaultAttempts <= 0 {
		p.FaultAttempts = 12
	}
	if p.SDKAttempts <= 0 {
		p.SDKAttempts = 3
	}
	if p.Drain <= 0 {
		p.Drain = 60 * time.Second
	}
	if len(p.Paths) == 0 {
		p.Paths = Paths()
	}
}

// DefaultFaults is every fault kind at a rate that makes most operations
// meet several faults.
func DefaultFaults() map[faultproxy.Kind]float64 {
	return map[faultproxy.Kind]float64{
		faultproxy.Reset:                 0.05,
		faultproxy.Drop:                  0.08,
		faultproxy.Delay:                 0.05,
		faultproxy.InternalError:         0.04,
		faultproxy.Throttle:              0.04,
		faultproxy.ProvisionedThroughput: 0.04,
	}
}

// DefaultRedisFaults is the TCP fault kinds (reset, drop: the command ran
// and its answer is lost, delay) at the rates of DefaultFaults, the HTTP-only
// kinds' share going to drop.
func DefaultRedisFaults() map[faultproxy.Kind]float64 {
	return map[faultproxy.Kind]float64{
		faultproxy.Reset: 0.05,
		faultproxy.Drop:  0.12,
		faultproxy.Delay: 0.05,
	}
}

// Target is where Run works: a DynamoDB server endpoint and an existing
// table laid out for dynamostore with default options, or, when Redis is
// set, a Redis server (host:port) whose keys under KeyPrefix hold the
// records (redisstore with that prefix; the run's keys must be the only ones
// under it).
type Target struct {
	Endpoint string
	Table    string

	Redis     string
	KeyPrefix string
}

// Store names the target's store: "dynamodb" or "redis".
func (t Target) Store() string {
	if t.Redis != "" {
		return "redis"
	}
	return "dynamodb"
}

// faultInjector is the fault proxy of a run: faultproxy's HTTP proxy in
// front of DynamoDB or tcpProxy in front of Redis.
type faultInjector interface {
	SetEnabled(bool)
	Stats() faultproxy.Stats
	Close() error
}

// Run runs profile p against t and returns the checked history.
func Run(ctx context.Context, t Target, p Profile) (*Report, error) {
	p.defaults()
	for _, name := range p.Paths {
		if _, ok := pathByName(name); !ok {
			return nil, fmt.Errorf("chaos: unknown path %q (have %v)", name, Paths())
		}
	}
	var (
		proxy    faultInjector
		newStore func() idempotent.Store // a container's store, through the proxy
		scanAll  func(context.Context) (map[string][]byte, int, int, int, error)
	)
	if t.Redis != "" {
		tp, err := startTCPProxy(t.Redis, p.Seed, p.Faults, p.DelayMax)
		if err != nil {
			return nil, err
		}
		proxy = tp
		var clients []*redis.Client
		defer func() {
			for _, c := range clients {
				_ = c.Close()
			}
		}()
		newStore = func() idempotent.Store {
			c := newRedisClient(tp.Addr())
			clients = append(clients, c)
			return redisstore.New(c, redisstore.WithKeyPrefix(t.KeyPrefix))
		}
		direct := newRedisClient(t.Redis)
		clients = append(clients, direct)
		scanAll = func(ctx context.Context) (map[string][]byte, int, int, int, error) {
			return scanRedis(ctx, direct, t.KeyPrefix)
		}
	} else {
		hp, err := faultproxy.Start(t.Endpoint, faultproxy.Config{Seed: p.Seed, Rates: p.Faults, DelayMin: time.Millisecond, DelayMax: p.DelayMax})
		if err != nil {
			return nil, err
		}
		proxy = hp
		newStore = func() idempotent.Store {
			return dynamostore.New(newDynamoClient(hp.URL(), p.SDKAttempts), t.Table)
		}
		direct := newDynamoClient(t.Endpoint, p.SDKAttempts)
		scanAll = func(ctx context.Context) (map[string][]byte, int, int, int, error) {
			return scan(ctx, direct, t.Table)
		}
	}
	defer func() { _ = proxy.Close() }()

	w := &workload{
		p:       p,
		ledger:  NewLedger(),
		release: make(chan struct{}),
		answers: make(map[string][]answer),
		logger:  slog.New(slog.DiscardHandler),
	}
	var paths []path
	for _, name := range p.Paths {
		mk, _ := pathByName(name)
		paths = append(paths, mk())
	}
	for i := range p.Containers {
		w.containers = append(w.containers, newContainer(i, newStore(), p))
	}

	start := time.Now()
	// Phase 1: faults on. Clients give up on an operation after
	// FaultAttempts and set it aside.
	var (
		mu       sync.Mutex
		deferred []*operation
		clients  sync.WaitGroup
	)
	for c := range p.Clients {
		clients.Add(1)
		go func() {
			defer clients.Done()
			rng := rand.New(rand.NewPCG(p.Seed, uint64(c)+1))
			for n := range p.OpsPerClient {
				op := w.newOperation(rng, paths, c, n)
				if !w.perform(ctx, rng, op, op.primary, p.FaultAttempts) {
					mu.Lock()
					deferred = append(deferred, op)
					mu.Unlock()
				}
			}
		}()
	}
	clients.Wait()
	faultPhase := time.Since(start)

	// Phase 2: faults off; set-aside operations and duplicates drain.
	proxy.SetEnabled(false)
	w.faultsOff.Store(true)
	dctx, cancel := context.WithTimeout(ctx, p.Drain)
	defer cancel()
	var drain sync.WaitGroup
	sem := make(chan struct{}, p.Clients)
	for i, op := range deferred {
		drain.Add(1)
		sem <- struct{}{}
		go func() {
			defer drain.Done()
			defer func() { <-sem }()
			rng := rand.New(rand.NewPCG(p.Seed, 1<<32+uint64(i)))
			w.perform(dctx, rng, op, op.primary, 0)
		}()
	}
	drain.Wait()
	w.dups.Wait()

	// Phase 3: release the crashed and slow handlers and wait for them.
	close(w.release)
	w.background.Wait()
	elapsed := time.Since(start)

	r := &Report{
		Profile:    p,
		Target:     t,
		Elapsed:    elapsed,
		FaultPhase: faultPhase,
		Deferred:   len(deferred),
		Faults:     proxy.Stats(),
	}
	if err := w.check(ctx, scanAll, r); err != nil {
		return nil, err
	}
	return r, nil
}

// workload is the state of one run.
type workload struct {
	p          Profile
	ledger     *Ledger
	containers []*container
	logger     *slog.Logger
	release    chan struct{} // closed when crashed and slow handlers may go on
	faultsOff  atomic.Bool
	runs       atomic.Int64
	background sync.WaitGroup // abandoned (crashed) attempts
	dups       sync.WaitGroup // duplicate callers

	mu       sync.Mutex
	ops      []*operation
	answers  map[string][]answer // op key -> final answers
	attempts int
	outcomes map[string]int
	late     map[string]int // outcomes of released crashed attempts
	unexpect []string
}

// operation is one logical operation: one key, one payload.
type operation struct {
	key      string
	path     path
	amount   int
	behavior string // first attempt's behavior
	primary  *caller
	answered atomic.Bool
}

// caller is one party that presents the key: the operation's client or a
// duplicate delivery.
type caller struct {
	name     string
	attempts int
}

// answer is a final answer a caller got.
type answer struct {
	caller string
	body   []byte
}

// attempt is one try of one caller.
type attempt struct {
	op        *operation
	caller    *caller
	n         int
	behavior  string
	container *container
	lease     time.Duration
	run       string        // set by the handler when it runs
	own       bool          // the answer is this attempt's own run
	handlerOK bool          // the handler returned success (sqs path)
	started   chan struct{} // closed when the handler runs
}

const (
	behaveCrash = "crash"
	behaveSlow  = "slow"
	behaveFail  = "fail"
)

func (w *workload) newOperation(rng *rand.Rand, paths []path, client, n int) *operation {
	pa := paths[rng.IntN(len(paths))]
	op := &operation{
		key:     fmt.Sprintf("%s-%d-c%d-n%d", pa.name(), w.p.Seed, client, n),
		path:    pa,
		amount:  1 + rng.IntN(10000),
		primary: &caller{name: fmt.Sprintf("c%d", client)},
	}
	switch x := rng.Float64(); {
	case x < w.p.Crash:
		op.behavior = behaveCrash
	case x < w.p.Crash+w.p.Slow:
		op.behavior = behaveSlow
	case x < w.p.Crash+w.p.Slow+w.p.Fail:
		op.behavior = behaveFail
	}
	w.mu.Lock()
	w.ops = append(w.ops, op)
	w.mu.Unlock()
	dup := op.behavior == behaveSlow || rng.Float64() < w.p.Dup
	if dup {
		d := &caller{name: op.primary.name + "-dup"}
		seed := rng.Uint64()
		w.dups.Add(1)
		go func() {
			defer w.dups.Done()
			w.perform(context.Background(), rand.New(rand.NewPCG(w.p.Seed, seed)), op, d, 0)
		}()
	}
	return op
}

// perform retries op as caller c until it gets a final answer. limit > 0
// bounds the attempts while faults are on; it reports whether c got an
// answer.
func (w *workload) perform(ctx context.Context, rng *rand.Rand, op *operation, c *caller, limit int) bool {
	backoff := 10 * time.Millisecond
	for tries := 0; ; tries++ {
		if limit > 0 && tries >= limit && !w.faultsOff.Load() {
			return false
		}
		if ctx.Err() != nil {
			return false
		}
		c.attempts++
		a := &attempt{
			op:        op,
			caller:    c,
			n:         c.attempts,
			container: w.containers[rng.IntN(len(w.containers))],
			lease:     w.p.Lease,
			started:   make(chan struct{}),
		}
		if c == op.primary && c.attempts == 1 && op.behavior != "" {
			a.behavior = op.behavior
			if a.behavior == behaveCrash || a.behavior == behaveSlow {
				a.lease = w.p.ShortLease
			}
		}
		body, err := w.try(ctx, a)
		w.count(a, err)
		if err == nil {
			w.mu.Lock()
			w.answers[op.key] = append(w.answers[op.key], answer{caller: c.name, body: body})
			w.mu.Unlock()
			if c == op.primary {
				op.answered.Store(true)
			}
			return true
		}
		// Jittered backoff; a key held by a run is retried after its lease.
		wait := backoff/2 + time.Duration(rng.Int64N(int64(backoff)))
		backoff = min(backoff*2, 400*time.Millisecond)
		var ip *idempotent.InProgressError
		if errors.As(err, &ip) {
			if d := time.Until(ip.LeaseExpiration); d > 0 {
				wait = min(d, w.p.Lease) + time.Duration(rng.Int64N(int64(20*time.Millisecond)))
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// try makes one attempt. A crashing attempt is abandoned once its handler
// runs: it goes on in the background until the run drains.
func (w *workload) try(ctx context.Context, a *attempt) ([]byte, error) {
	if a.behavior != behaveCrash {
		return w.call(ctx, a)
	}
	type result struct {
		body []byte
		err  error
	}
	done := make(chan result, 1)
	w.background.Add(1)
	go func() {
		defer w.background.Done()
		body, err := w.call(context.WithoutCancel(ctx), a)
		done <- result{body, err}
	}()
	select {
	case r := <-done:
		return r.body, r.err
	case <-a.started:
		w.background.Add(1)
		go func() {
			defer w.background.Done()
			r := <-done
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.late == nil {
				w.late = make(map[string]int)
			}
			w.late[classify(r.err, a, r.body)]++
			if r.err == nil {
				// The crashed run completed after all: a legitimate
				// completion only if no other run did (the checker tells).
				w.answers[a.op.key] = append(w.answers[a.op.key], answer{caller: a.caller.name + "-crashed", body: r.body})
			}
		}()
		return nil, errCrashed
	}
}

var errCrashed = errors.New("chaos: invocation crashed (abandoned)")

// call is one attempt through the operation's path; a success is recorded
// in the ledger as a completion when the result is the attempt's own run.
func (w *workload) call(ctx context.Context, a *attempt) ([]byte, error) {
	body, own, err := a.op.path.call(ctx, w, a)
	a.own = err == nil && own
	if a.own {
		w.ledger.Commit(a.op.key, a.run)
	}
	// A replay names the run that completed, even when that run's caller
	// never learnt it (its answer was lost): record it, so a slow handler
	// waiting for the key to complete is not left waiting.
	if run := runOf(body); err == nil && run != "" {
		w.ledger.Commit(a.op.key, run)
	}
	if err == nil {
		w.ledger.Answered(a.op.key)
	}
	return body, err
}

// handle is the business logic every path runs: record the effect, charge
// idempotently by record key, misbehave as told, return a result that names
// the run.
func (w *workload) handle(ctx context.Context, a *attempt) (Payment, error) {
	rk, ok := idempotent.RecordIDFromContext(ctx)
	if !ok {
		return Payment{}, errors.New("chaos: no record key in the handler's context")
	}
	a.run = "r" + strconv.FormatInt(w.runs.Add(1), 10)
	w.ledger.Begin(Effect{
		Key: a.op.key, RecordKey: rk, Caller: a.caller.name, Attempt: a.n,
		Run: a.run, Container: a.container.id, Behavior: a.behavior,
	})
	close(a.started)
	switch a.behavior {
	case behaveCrash:
		<-w.release
	case behaveSlow:
		// Outlive the lease: wait until a duplicate took the key over and
		// completed it, or the run drains.
		// The timer is a backstop so that a bug elsewhere shows as a
		// violation rather than a hang.
		t := time.NewTimer(slowBackstop)
		select {
		case <-w.ledger.Done(a.op.key):
		case <-w.release:
		case <-t.C:
			w.mu.Lock()
			w.unexpect = append(w.unexpect, fmt.Sprintf("slow run %s of %s: no other run completed the key within %s", a.run, a.op.key, slowBackstop))
			w.mu.Unlock()
		}
		t.Stop()
	case behaveFail:
		return Payment{}, errHandler
	}
	charged := w.ledger.Charge(rk, a.run)
	return Payment{Key: a.op.key, Amount: a.op.amount, Run: a.run, Charge: charged, Container: a.container.id}, nil
}

// slowBackstop bounds a slow handler's wait for a duplicate to complete its
// key.
const slowBackstop = time.Minute

var errHandler = errors.New("chaos: handler failed (injected)")

// Payment is the result of every operation. Run names the run that
// produced it, so answers from two runs differ.
type Payment struct {
	Key       string `json:"key"`
	Amount    int    `json:"amount"`
	Run       string `json:"run"`
	Charge    string `json:"charge"`
	Container int    `json:"container"`
}

func (w *workload) count(a *attempt, err error) {
	cls := classify(err, a, nil)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempts++
	if w.outcomes == nil {
		w.outcomes = make(map[string]int)
	}
	w.outcomes[cls]++
	if cls == "unexpected" {
		w.unexpect = append(w.unexpect, fmt.Sprintf("%s attempt %d of %s: %v", a.caller.name, a.n, a.op.key, err))
	}
}

// classify names the outcome of an attempt.
func classify(err error, a *attempt, _ []byte) string {
	var se *idempotent.StoreError
	switch {
	case err == nil && a.own:
		return "ok (ran)"
	case err == nil:
		return "ok (replay)"
	case errors.Is(err, errCrashed):
		return "crashed"
	case errors.Is(err, errHandler):
		return "handler error"
	case errors.Is(err, idempotent.ErrLeaseLost):
		return "lease lost"
	case errors.Is(err, idempotent.ErrInProgress):
		return "in progress"
	case errors.As(err, &se):
		return "store error"
	case errors.Is(err, errRetryable):
		return "retryable (adapter)"
	default:
		return "unexpected"
	}
}

// errRetryable marks an adapter's answer that tells the caller to retry (a
// 409 or 503, a record in BatchItemFailures).
var errRetryable = errors.New("chaos: retryable answer")

// container is one simulated Lambda container: its own SDK client, store
// and guards (each with its local cache).
type container struct {
	id     int
	store  idempotent.Store
	wait   bool // duplicates wait for a running invocation instead of failing
	paths  sync.Map
	guards sync.Map // name/lease → *idempotent.Guard
}

func newContainer(id int, store idempotent.Store, p Profile) *container {
	if p.StoreHook != nil {
		store = p.StoreHook(store)
	}
	return &container{
		id:    id,
		store: store,
		wait:  id%2 == 1,
	}
}

// guard is c's guard for the key namespace name and lease, built on first
// use (with the logger of the workload that first asks) and kept, so its
// local cache lives as long as the container.
func (c *container) guard(name string, lease time.Duration, logger *slog.Logger) *idempotent.Guard {
	key := name + "/" + lease.String()
	if g, ok := c.guards.Load(key); ok {
		return g.(*idempotent.Guard)
	}
	o := []idempotent.Option{
		idempotent.WithName(name),
		idempotent.WithLocalCache(256),
		idempotent.WithLease(lease),
		idempotent.WithLogger(logger),
	}
	if c.wait {
		o = append(o, idempotent.WithWait(lease))
	}
	g, _ := c.guards.LoadOrStore(key, idempotent.New(c.store, o...))
	return g.(*idempotent.Guard)
}

// newDynamoClient is a client whose retryer makes at most attempts tries
// per request, with short backoff and no retry quota (the faults would
// drain it).
func newDynamoClient(endpoint string, attempts int) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("chaos", "chaos", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.MaxBackoff = 100 * time.Millisecond
			o.RateLimiter = ratelimit.None
		}),
		HTTPClient: &http.Client{
			Timeout: 5 * time.Second,
			Transport: &http.Transport{
				MaxIdleConns:        64,
				MaxIdleConnsPerHost: 64,
				IdleConnTimeout:     30 * time.Second,
			},
		},
	})
}

// newRedisClient is a go-redis client with its default retries (3: a
// command whose connection broke is resent, which is the lost-answer case
// the store must recognise) and short timeouts.
func newRedisClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:         addr,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
		PoolSize:     32,
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
