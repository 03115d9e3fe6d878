package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"

	"github.com/idemlambda/idemlambda/internal/amztarget"
)

// dynamoFront is a reverse proxy in front of the local DynamoDB server. The
// demo and the end-to-end test give its endpoint to the functions, so they can
// show and assert what the functions do to DynamoDB: it counts the calls per
// operation and table, and it can hold one call until released, which makes
// a duplicate request arrive while the first one is still running — without
// a sleep and without special code in the handler.
type dynamoFront struct {
	proxy *httputil.ReverseProxy
	srv   *http.Server
	url   string

	mu     sync.Mutex
	counts map[call]int
	hold   *hold
}

// call is one DynamoDB operation on one table.
type call struct{ op, table string }

// hold makes the call after the next pass calls on table wait for release.
type hold struct {
	table   string
	pass    int
	held    chan struct{} // closed when a call is held
	release chan struct{} // closed by the releaser
}

// startDynamoFront serves a proxy to target on a free loopback port.
func startDynamoFront(target string) (*dynamoFront, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &dynamoFront{
		proxy:  &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) }},
		url:    "http://" + ln.Addr().String(),
		counts: map[call]int{},
	}
	f.srv = &http.Server{Handler: f}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *dynamoFront) close() { _ = f.srv.Close() }

func (f *dynamoFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in struct{ TableName string }
	_ = json.Unmarshal(body, &in)
	op, _ := amztarget.Op(r.Header)
	c := call{op: op, table: in.TableName}

	f.mu.Lock()
	f.counts[c]++
	var wait *hold
	if h := f.hold; h != nil && h.table == c.table {
		if h.pass > 0 {
			h.pass--
		} else {
			wait, f.hold = h, nil
			close(h.held)
		}
	}
	f.mu.Unlock()
	if wait != nil {
		select {
		case <-wait.release:
		case <-r.Context().Done():
			return
		}
	}
	f.proxy.ServeHTTP(w, r)
}

// holdAfter arms a hold: the next pass calls on table go through, the one
// after waits until release is called. held is closed once a call waits.
// release is idempotent and also disarms a hold that never caught a call.
func (f *dynamoFront) holdAfter(table string, pass int) (held <-chan struct{}, release func()) {
	h := &hold{table: table, pass: pass, held: make(chan struct{}), release: make(chan struct{})}
	f.mu.Lock()
	f.hold = h
	f.mu.Unlock()
	var once sync.Once
	return h.held, func() {
		once.Do(func() {
			f.mu.Lock()
			if f.hold == h {
				f.hold = nil
			}
			f.mu.Unlock()
			close(h.release)
		})
	}
}

// snapshot returns the counts so far.
func (f *dynamoFront) snapshot() map[call]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[call]int, len(f.counts))
	for c, n := range f.counts {
		out[c] = n
	}
	return out
}

// since returns the calls counted after the snapshot before.
func (f *dynamoFront) since(before map[call]int) map[call]int {
	out := map[call]int{}
	for c, n := range f.snapshot() {
		if d := n - before[c]; d > 0 {
			out[c] = d
		}
	}
	return out
}
