package testredis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvURL names the environment variable with the URL of an already running
// server. When it is set, no server is started.
const EnvURL = "IDEMLAMBDA_TEST_REDIS_URL"

// startTimeout bounds the wait for a started server to answer.
const startTimeout = 30 * time.Second

var server struct {
	once sync.Once
	opts *redis.Options
	err  error

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited <-chan struct{} // closed once cmd has exited
	dir    string
}

// Options returns the client options for the local server, starting it on
// first use (see the package doc). It fails tb if the server cannot be
// started. Each call returns a fresh copy.
func Options(tb testing.TB) *redis.Options {
	tb.Helper()
	o, err := Start()
	if err != nil {
		tb.Fatalf("testredis: %v", err)
	}
	return o
}

// Start is Options for code without a testing.TB (TestMain, examples): it
// starts the server on first use and returns a fresh copy of its client
// options.
func Start() (*redis.Options, error) {
	server.once.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			server.opts, server.err = redis.ParseURL(u)
			return
		}
		var addr string
		addr, server.err = start()
		server.opts = &redis.Options{Addr: addr}
	})
	if server.err != nil {
		return nil, server.err
	}
	o := *server.opts
	return &o, nil
}

// Addr returns host:port of the local server, starting it on first use.
func Addr(tb testing.TB) string {
	tb.Helper()
	return Options(tb).Addr
}

// Main runs the tests of m and then stops the server this test binary
// started, if any. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testredis.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop kills the server this test binary started, if any. Main calls it.
func Stop() {
	server.mu.Lock()
	defer server.mu.Unlock()
	if server.cmd != nil && server.cmd.Process != nil {
		_ = server.cmd.Process.Kill()
		<-server.exited
		server.cmd = nil
	}
	if server.dir != "" {
		_ = os.RemoveAll(server.dir)
		server.dir = ""
	}
}

// start launches redis-server on a free port and waits until it answers. A
// port taken between choosing and binding makes the server exit; start then
// tries another one.
func start() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server is not installed: run `make redis-install` (redis/ctl.sh install: apt-get install redis-server): %w", err)
	}
	dir, err := os.MkdirTemp("", "testredis-")
	if err != nil {
		return "", err
	}
	var errs []error
	for range 3 {
		addr, cmd, exited, err := launch(bin, dir)
		if err == nil {
			server.mu.Lock()
			server.dir = dir
			server.cmd, server.exited = cmd, exited
			server.mu.Unlock()
			return addr, nil
		}
		errs = append(errs, err)
	}
	_ = os.RemoveAll(dir)
	return "", errors.Join(errs...)
}

// launch starts redis-server on a free port with its files in dir and the
// extra arguments, and waits until it answers PING.
func launch(bin, dir string, extra ...string) (string, *exec.Cmd, <-chan struct{}, error) {
	port, err := freePort()
	if err != nil {
		return "", nil, nil, err
	}
	args := append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--maxmemory-policy", "noeviction", "--loglevel", "warning"}, extra...)
	cmd := exec.Command(bin, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return "", nil, nil, fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitReady(addr, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return "", nil, nil, fmt.Errorf("redis-server on %s: %w; output:\n%s", addr, err, out.String())
	}
	return addr, cmd, exited, nil
}

// waitReady sends PING until the server answers, it exits, or startTimeout
// passes.
func waitReady(addr string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer client.Close()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		callCtx, callCancel := context.WithTimeout(ctx, 2*time.Second)
		err := client.Ping(callCtx).Err()
		callCancel()
		if err == nil {
			return nil
		}
		lastErr = err
		select {
		case <-exited:
			return errors.New("exited before answering")
		case <-ctx.Done():
			return fmt.Errorf("no answer within %s: %w", startTimeout, lastErr)
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects the server's output (for error messages), keeping at
// most its last 64 KiB.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, _ := b.buf.Write(p)
	if over := b.buf.Len() - 64<<10; over > 0 {
		b.buf.Next(over)
	}
	return n, nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
