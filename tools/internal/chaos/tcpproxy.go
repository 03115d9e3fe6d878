package chaos

import (
	"bytes"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idemlambda/idemlambda/tools/internal/chaos/faultproxy"
)

// tcpProxy relays TCP between the Redis clients and redis-server and, for
// each chunk a client sends (one command: go-redis sends one at a time per
// connection and the store never pipelines), injects a fault drawn from a
// seeded source:
//
//   - faultproxy.Reset: both connections close, the command never reaches
//     the server;
//   - faultproxy.Delay: the command is held for a random time in
//     [1 ms, DelayMax], then sent;
//   - faultproxy.Drop: the command is sent, the server's reply is thrown
//     away and both connections close: the command ran, its answer is lost
//     (go-redis resends it on the next connection).
//
// The kinds that only make sense over HTTP (500, throttle, throughput) are
// never injected. Faults are counted per kind and per command name
// (EVALSHA, EVAL, ...) in a faultproxy.Stats, so the report prints them as
// it does the DynamoDB ones.
type tcpProxy struct {
	ln       net.Listener
	target   string
	rates    map[faultproxy.Kind]float64
	delayMax time.Duration
	enabled  atomic.Bool

	mu       sync.Mutex
	rng      *rand.Rand
	requests int
	counts   map[faultproxy.Kind]map[string]int
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

// startTCPProxy listens on a free loopback port and relays to target.
func startTCPProxy(target string, seed uint64, rates map[faultproxy.Kind]float64, delayMax time.Duration) (*tcpProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &tcpProxy{
		ln: ln, target: target, rates: rates, delayMax: delayMax,
		rng:    rand.New(rand.NewPCG(seed, 0x7ed15)),
		counts: map[faultproxy.Kind]map[string]int{},
		conns:  map[net.Conn]struct{}{},
	}
	p.enabled.Store(true)
	p.wg.Go(p.serve)
	return p, nil
}

// Addr is the proxy's host:port.
func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

// SetEnabled turns fault injection on or off.
func (p *tcpProxy) SetEnabled(on bool) { p.enabled.Store(on) }

// Close stops accepting, closes every relayed connection and waits for the
// relays to end.
func (p *tcpProxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// Stats returns a copy of the counts so far.
func (p *tcpProxy) Stats() faultproxy.Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return faultproxy.SnapshotStats(p.requests, p.counts)
}

// tcpKinds are the fault kinds a TCP proxy injects, in draw order.
var tcpKinds = []faultproxy.Kind{faultproxy.Reset, faultproxy.Drop, faultproxy.Delay}

// fault draws the fault for the next chunk, which carries command op.
func (p *tcpProxy) fault(op string) (faultproxy.Kind, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	if !p.enabled.Load() {
		return faultproxy.None, 0
	}
	x := p.rng.Float64()
	kind := faultproxy.None
	for _, k := range tcpKinds {
		if x < p.rates[k] {
			kind = k
			break
		}
		x -= p.rates[k]
	}
	if kind == faultproxy.None {
		return kind, 0
	}
	if p.counts[kind] == nil {
		p.counts[kind] = map[string]int{}
	}
	p.counts[kind][op]++
	d := time.Millisecond
	if p.delayMax > d {
		d += time.Duration(p.rng.Int64N(int64(p.delayMax - d + 1)))
	}
	return kind, d
}

// track adds (on) or removes a connection from the set Close closes.
func (p *tcpProxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.track(c, true)
		p.track(s, true)
		var dropReply atomic.Bool
		var once sync.Once
		closeBoth := func() {
			once.Do(func() {
				_ = c.Close()
				_ = s.Close()
				p.track(c, false)
				p.track(s, false)
			})
		}
		p.wg.Go(func() { // client → server
			defer closeBoth()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					kind, d := p.fault(commandName(buf[:n]))
					switch kind {
					case faultproxy.Reset:
						return
					case faultproxy.Delay:
						time.Sleep(d)
					case faultproxy.Drop:
						dropReply.Store(true)
					}
					if _, err := s.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		})
		p.wg.Go(func() { // server → client
			defer closeBoth()
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 && dropReply.Load() {
					return // the command ran; its answer is lost
				}
				if n > 0 {
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		})
	}
}

// commandName is the name of the RESP command that starts chunk b
// ("*N\r\n$L\r\nNAME\r\n..."), upper-cased, or "?" when b does not start
// with one (the rest of a large command).
func commandName(b []byte) string {
	if len(b) == 0 || b[0] != '*' {
		return "?"
	}
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 || i+1 >= len(b) || len(b) <= i+2 || b[i+2] != '$' {
		return "?"
	}
	rest := b[i+3:]
	j := bytes.Index(rest, []byte("\r\n"))
	if j < 0 {
		return "?"
	}
	n, err := strconv.Atoi(string(rest[:j]))
	if err != nil || n < 0 || n > 32 || len(rest) < j+2+n {
		return "?"
	}
	return strings.ToUpper(string(rest[j+2 : j+2+n]))
}
