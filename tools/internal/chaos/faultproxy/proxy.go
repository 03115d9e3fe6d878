package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idemlambda/idemlambda/internal/amztarget"
)

// Kind is a kind of injected fault.
type Kind int

// The fault kinds, in the order they are drawn.
const (
	// None: the request is forwarded untouched.
	None Kind = iota
	// Reset resets the connection before forwarding.
	Reset
	// Drop forwards the request, then resets the connection instead of
	// answering.
	Drop
	// Delay holds the request for a random time in [DelayMin, DelayMax],
	// then forwards it.
	Delay
	// InternalError answers 500 InternalServerError without forwarding.
	InternalError
	// Throttle answers 400 ThrottlingException without forwarding.
	Throttle
	// ProvisionedThroughput answers 400
	// ProvisionedThroughputExceededException without forwarding.
	ProvisionedThroughput
)

// Kinds lists the fault kinds (without None) in draw order.
var Kinds = []Kind{Reset, Drop, Delay, InternalError, Throttle, ProvisionedThroughput}

var kindNames = [...]string{"none", "reset", "drop", "delay", "500", "throttle", "throughput"}

// String returns the kind's short name, as accepted by ParseKind.
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return "kind(" + strconv.Itoa(int(k)) + ")"
	}
	return kindNames[k]
}

// ParseKind returns the Kind named s (see Kind.String).
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), nil
		}
	}
	return None, fmt.Errorf("faultproxy: unknown fault kind %q (want one of %s)", s, strings.Join(kindNames[1:], ", "))
}

// Config configures a Proxy.
type Config struct {
	// Seed makes the decisions reproducible: request n's decision is a
	// function of Seed and n only.
	Seed uint64
	// Rates is the probability, per request, of each fault kind. The sum
	// must not exceed 1; the rest is forwarded untouched.
	Rates map[Kind]float64
	// DelayMin and DelayMax bound the Delay fault (default 20 ms and
	// 200 ms).
	DelayMin, DelayMax time.Duration
}

// Proxy is a running fault-injecting proxy. Its methods are safe for
// concurrent use.
type Proxy struct {
	cfg      Config
	cum      []float64 // cumulative rates in Kinds order
	target   *url.URL
	ln       net.Listener
	srv      *http.Server
	upstream *http.Transport
	enabled  atomic.Bool
	seq      atomic.Uint64

	mu       sync.Mutex
	requests int
	counts   map[Kind]map[string]int // kind -> operation -> count
}

// Start starts a proxy on a free 127.0.0.1 port that forwards to target
// (e.g. "http://127.0.0.1:8000"). Faults are enabled.
func Start(target string, cfg Config) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: target %q is not an absolute URL", target)
	}
	if cfg.DelayMin <= 0 {
		cfg.DelayMin = 20 * time.Millisecond
	}
	if cfg.DelayMax < cfg.DelayMin {
		cfg.DelayMax = max(cfg.DelayMin, 200*time.Millisecond)
	}
	p := &Proxy{cfg: cfg, target: u, counts: make(map[Kind]map[string]int)}
	sum := 0.0
	for _, k := range Kinds {
		r := cfg.Rates[k]
		if r < 0 {
			return nil, fmt.Errorf("faultproxy: negative rate %v for %s", r, k)
		}
		sum += r
		p.cum = append(p.cum, sum)
	}
	for k := range cfg.Rates {
		if k <= None || int(k) >= len(kindNames) {
			return nil, fmt.Errorf("faultproxy: rate for unknown kind %d", int(k))
		}
	}
	if sum > 1+1e-9 {
		return nil, fmt.Errorf("faultproxy: fault rates sum to %v, more than 1", sum)
	}
	p.upstream = &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
	}
	p.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	p.enabled.Store(true)
	go func() { _ = p.srv.Serve(p.ln) }()
	return p, nil
}

// URL is the proxy's base URL, to use as the client's endpoint.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// SetEnabled turns fault injection on or off. Off, every request is
// forwarded untouched and draws no number.
func (p *Proxy) SetEnabled(on bool) { p.enabled.Store(on) }

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	p.upstream.CloseIdleConnections()
	return err
}

// Decide returns the decision for request number n: the fault kind and, for
// Delay, the delay. It depends on the seed and n only.
func (p *Proxy) Decide(n uint64) (Kind, time.Duration) {
	r := rand.New(rand.NewPCG(p.cfg.Seed, n))
	x := r.Float64()
	k := None
	for i, c := range p.cum {
		if x < c {
			k = Kinds[i]
			break
		}
	}
	var d time.Duration
	if k == Delay {
		d = p.cfg.DelayMin + time.Duration(r.Int64N(int64(p.cfg.DelayMax-p.cfg.DelayMin)+1))
	}
	return k, d
}

// Stats is what a proxy saw and injected.
type Stats struct {
	// Requests is the number of requests received.
	Requests int
	// Injected counts the injected faults per kind and DynamoDB operation
	// ("PutItem", ...).
	Injected map[Kind]map[string]int
}

// Total is the number of injected faults of kind k.
func (s Stats) Total(k Kind) int {
	n := 0
	for _, v := range s.Injected[k] {
		n += v
	}
	return n
}

// Faults is the number of injected faults of every kind.
func (s Stats) Faults() int {
	n := 0
	for _, k := range Kinds {
		n += s.Total(k)
	}
	return n
}

// Operations lists the operations that saw faults, sorted.
func (s Stats) Operations() []string {
	seen := map[string]bool{}
	for _, m := range s.Injected {
		for op := range m {
			seen[op] = true
		}
	}
	ops := make([]string, 0, len(seen))
	for op := range seen {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}

// Stats returns a copy of the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return SnapshotStats(p.requests, p.counts)
}

// SnapshotStats returns Stats holding a copy of counts (kind -> operation ->
// injected faults), for a proxy of any protocol that counts that way.
func SnapshotStats(requests int, counts map[Kind]map[string]int) Stats {
	s := Stats{Requests: requests, Injected: make(map[Kind]map[string]int, len(counts))}
	for k, m := range counts {
		s.Injected[k] = maps.Clone(m)
	}
	return s
}

func (p *Proxy) record(k Kind, op string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	if k == None {
		return
	}
	m := p.counts[k]
	if m == nil {
		m = make(map[string]int)
		p.counts[k] = m
	}
	m[op]++
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := amztarget.Op(r.Header)
	if !ok {
		op = "unknown"
	}
	kind, delay := None, time.Duration(0)
	if p.enabled.Load() {
		kind, delay = p.Decide(p.seq.Add(1) - 1)
	}
	p.record(kind, op)

	switch kind {
	case Reset:
		reset(w)
		return
	case InternalError:
		awsError(w, http.StatusInternalServerError, "InternalServerError", "faultproxy: injected internal server error")
		return
	case Throttle:
		awsError(w, http.StatusBadRequest, "ThrottlingException", "faultproxy: injected throttling")
		return
	case ProvisionedThroughput:
		awsError(w, http.StatusBadRequest, "ProvisionedThroughputExceededException", "faultproxy: injected provisioned throughput exceeded")
		return
	case Delay:
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	status, header, body, err := p.forward(r)
	if err != nil {
		// The upstream failed on its own: tell the client it was a gateway
		// problem, which the SDK retries like a 5xx.
		awsError(w, http.StatusBadGateway, "InternalServerError", "faultproxy: upstream: "+err.Error())
		return
	}
	if kind == Drop {
		reset(w)
		return
	}
	for k, vs := range header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// forward sends r to the target and reads the whole answer.
func (p *Proxy) forward(r *http.Request) (int, http.Header, []byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	u := *p.target
	u.Path = r.URL.Path
	u.RawQuery = r.URL.RawQuery
	// The upstream request outlives the client's cancellation: a write
	// that reached the proxy reaches the server, as on a real network.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	out.Header = r.Header.Clone()
	out.Header.Del("Connection")
	out.Host = p.target.Host
	resp, err := p.upstream.RoundTrip(out)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	h := resp.Header.Clone()
	h.Del("Content-Length")
	h.Del("Connection")
	return resp.StatusCode, h, rb, nil
}

// reset closes the client connection with a TCP RST and no answer.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// awsError answers with a DynamoDB JSON-protocol error.
func awsError(w http.ResponseWriter, status int, typ, msg string) {
	m, _ := json.Marshal(msg)
	body := fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%s}`, typ, m)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Requestid", "faultproxy")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// ParseRates reads fault rates written as kind=rate,... (rates in [0, 1]),
// the form the chaos commands take on their command lines.
func ParseRates(s string) (map[Kind]float64, error) {
	rates := make(map[Kind]float64)
	if s == "" {
		return rates, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("fault rates: %q is not kind=rate", part)
		}
		k, err := ParseKind(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		r, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("fault rates: rate %q of %s is not in [0, 1]", val, k)
		}
		rates[k] = r
	}
	return rates, nil
}

// FormatRates writes rates in the form ParseRates reads, in the order of
// Kinds.
func FormatRates(rates map[Kind]float64) string {
	var parts []string
	for _, k := range Kinds {
		if r, ok := rates[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%g", k, r))
		}
	}
	return strings.Join(parts, ",")
}
