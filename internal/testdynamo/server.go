package testdynamo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// EnvEndpoint names the environment variable with the endpoint of an already
// running server. When it is set, no server is started.
const EnvEndpoint = "AWS_ENDPOINT_URL_DYNAMODB"

// startTimeout bounds the wait for a started server to answer.
const startTimeout = 30 * time.Second

var server struct {
	once     sync.Once
	endpoint string
	err      error

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited <-chan struct{} // closed once cmd has exited
}

// Endpoint returns the URL of the local server, starting it on first use
// (see the package doc). It fails tb if the server cannot be started.
func Endpoint(tb testing.TB) string {
	tb.Helper()
	if ep := os.Getenv(EnvEndpoint); ep != "" {
		return ep
	}
	server.once.Do(func() { server.endpoint, server.err = start() })
	if server.err != nil {
		tb.Fatalf("testdynamo: %v", server.err)
	}
	return server.endpoint
}

// Main runs the tests of m and then stops the server this test binary
// started, if any. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testdynamo.Main(m) }
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
}

// start launches dynalite on a free port and waits until it answers. A port
// taken between choosing and binding makes dynalite exit; start then tries
// another one.
func start() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	cli, err := serverScript(root)
	if err != nil {
		return "", err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("node (Node.js) is needed to run the local DynamoDB server: %w", err)
	}
	var errs []error
	for range 3 {
		ep, err := launch(node, cli)
		if err == nil {
			return ep, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

// serverScript is the script that runs dynalite's command line in the
// repository at root: dynalite/serve.js, which keeps the server up when a
// client aborts a request. It fails when dynalite is not installed.
func serverScript(root string) (string, error) {
	cli := filepath.Join(root, "dynalite", "node_modules", "dynalite", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		return "", fmt.Errorf("the local DynamoDB server is not installed (%s missing): run `make dynamo-install` (npm ci in dynalite/)", cli)
	}
	return filepath.Join(root, "dynalite", "serve.js"), nil
}

func launch(node, cli string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(node, cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start dynalite: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(endpoint, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return "", fmt.Errorf("dynalite on %s: %w; output:\n%s", endpoint, err, out.String())
	}
	server.mu.Lock()
	server.cmd, server.exited = cmd, exited
	server.mu.Unlock()
	return endpoint, nil
}

// waitReady polls ListTables until the server answers, it exits, or
// startTimeout passes.
func waitReady(endpoint string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := newClient(endpoint, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		callCtx, callCancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := client.ListTables(callCtx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)})
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

// repoRoot walks up from the working directory to the repository root: the
// folder with dynalite/ctl.sh (nested modules such as tools/ and handlers/
// have a go.mod of their own, so go.mod does not mark the root).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "dynalite", "ctl.sh")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no dynalite/ctl.sh above %s: cannot find the repository root", dir)
		}
		d = parent
	}
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

// ServerPID returns the process id of the server Endpoint started in this
// test binary, starting it first; 0 when the server runs elsewhere
// (EnvEndpoint is set). Benchmarks read the server's CPU time from it.
func ServerPID(tb testing.TB) int {
	tb.Helper()
	Endpoint(tb)
	server.mu.Lock()
	defer server.mu.Unlock()
	if server.cmd == nil || server.cmd.Process == nil {
		return 0
	}
	return server.cmd.Process.Pid
}
