package rie

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Version is the emulator's module version the Makefile installs
// (make rie-install) into .build/bin.
const Version = "v0.0.0-20261030222936-bef5c4ba774d"

// Package is the emulator's command, for go install Package@Version.
const Package = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// MaxPayloadSize is the largest request or response payload of a synchronous
// Lambda invocation (6 MB).
const MaxPayloadSize = 6 * 1024 * 1024

// invokePath is the emulator's invoke endpoint (the function is always "function").
const invokePath = "/2015-03-31/functions/function/invocations"

var (
	// ErrTimeout is matched (errors.Is) by the error Invoke returns when the
	// function ran past Config.Timeout. The emulator has killed its runtime.
	ErrTimeout = errors.New("rie: task timed out")
	// ErrExited is matched by the error Invoke returns when the bootstrap
	// process exited during an invocation (errorType Runtime.ExitError).
	ErrExited = errors.New("rie: runtime exited")
	// ErrClosed is returned by Invoke after Close.
	ErrClosed = errors.New("rie: function closed")
	// ErrEmulator is matched by the error Invoke returns when the emulator
	// itself failed (died, refused the request, answered an unknown status).
	ErrEmulator = errors.New("rie: emulator failure")
)

// Config describes one function to run.
type Config struct {
	// RIE is the path of the aws-lambda-rie executable.
	RIE string
	// Binary is the function's bootstrap (a custom runtime's executable).
	Binary string
	// Name is AWS_LAMBDA_FUNCTION_NAME (the template's logical id is a good choice).
	Name string
	// Env holds the function's environment variables (the template's
	// Environment.Variables and anything the caller adds, such as endpoints and
	// credentials for local servers). The variables Lambda reserves override it.
	Env map[string]string
	// Timeout is AWS_LAMBDA_FUNCTION_TIMEOUT, in whole seconds (rounded up);
	// 3 s (Lambda's default) when zero.
	Timeout time.Duration
	// MemoryMB is AWS_LAMBDA_FUNCTION_MEMORY_SIZE; 128 when zero. Not enforced.
	MemoryMB int
	// Region is AWS_REGION and AWS_DEFAULT_REGION; "us-east-1" when empty.
	Region string
	// Handler is _HANDLER; "bootstrap" when empty.
	Handler string
	// Instances is the number of execution environments (emulator
	// processes); 1 when zero. The function's concurrency is Instances ×
	// MaxConcurrency.
	Instances int
	// MaxConcurrency above 1 runs every environment as a Lambda Managed
	// Instances one: AWS_LAMBDA_MAX_CONCURRENCY is set to it, the emulator
	// runs in its managed-instances mode, and one environment (one bootstrap
	// process) serves up to MaxConcurrency invocations at once (aws-lambda-go
	// ≥ v1.51 runs that many /next loops). See the package doc for what the
	// mode changes. 0 or 1: on-demand, one invocation at a time.
	MaxConcurrency int
	// LogLevel is the emulator's --log-level; "warn" when empty, which keeps
	// its notes on timeouts and runtime exits and drops the per-invoke INFO lines.
	LogLevel string
	// Output receives the emulator's output: its log, the START/END/REPORT
	// lines and the function's own stdout and stderr. os.Stderr when nil.
	Output io.Writer
	// Logger receives this package's log lines; slog.Default() when nil.
	Logger *slog.Logger
}

// Result is the outcome of an invocation that reached the handler and came back.
type Result struct {
	// RequestID is the invocation's request id (the function's
	// lambdacontext.AwsRequestID).
	RequestID string
	// Payload is the function's response; nil when Err is set.
	Payload []byte
	// Err is the error the handler returned, if any.
	Err *FunctionError
}

// FunctionError is the error document of a failed invocation or init. The Go
// runtime sets Type to the Go type name of the error.
type FunctionError struct {
	Type       string          `json:"errorType"`
	Message    string          `json:"errorMessage"`
	StackTrace json.RawMessage `json:"stackTrace,omitempty"`
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// InitError reports a bootstrap that failed before asking for its first event.
type InitError struct {
	// Function is Config.Name.
	Function string
	// Reported is what the runtime posted to /runtime/init/error, if anything.
	Reported *FunctionError
}

func (e *InitError) Error() string {
	msg := "rie: " + e.Function + ": init failed"
	if e.Reported != nil {
		return msg + ": " + e.Reported.Error()
	}
	return msg + " (the bootstrap exited; see its output)"
}

// Function is a running function: Config.Instances emulator processes. Its
// methods are safe for concurrent use.
type Function struct {
	cfg       Config
	varDir    string // managed mode: the /var the emulators see (varRoot)
	log       *slog.Logger
	instances []*instance
	idle      chan *instance
	closed    chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex // guards isClosed and wg.Add against Close
	isClosed bool
	wg       sync.WaitGroup // invocations in flight
}

// Start starts the function's emulator processes and waits until each accepts
// invocations. The bootstrap itself starts at the first invocation, as an
// on-demand Lambda function's init does.
func Start(ctx context.Context, cfg Config) (*Function, error) {
	if cfg.Binary == "" {
		return nil, errors.New("rie: Config.Binary is empty")
	}
	if cfg.RIE == "" {
		return nil, errors.New("rie: Config.RIE is empty")
	}
	var err error
	if cfg.Binary, err = filepath.Abs(cfg.Binary); err != nil {
		return nil, fmt.Errorf("rie: %w", err)
	}
	if cfg.RIE, err = filepath.Abs(cfg.RIE); err != nil {
		return nil, fmt.Errorf("rie: %w", err)
	}
	if _, err := os.Stat(cfg.RIE); err != nil {
		return nil, fmt.Errorf("rie: the Lambda Runtime Interface Emulator is not installed (%w); run `make rie-install` (GOBIN=<repo>/%s go install %s@%s)", err, BinDir, Package, Version)
	}
	if cfg.Name == "" {
		cfg.Name = filepath.Base(filepath.Dir(cfg.Binary))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.MemoryMB <= 0 {
		cfg.MemoryMB = 128
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Handler == "" {
		cfg.Handler = "bootstrap"
	}
	if cfg.Instances <= 0 {
		cfg.Instances = 1
	}
	if cfg.MaxConcurrency < 0 {
		return nil, fmt.Errorf("rie: Config.MaxConcurrency %d is negative", cfg.MaxConcurrency)
	}
	if cfg.MaxConcurrency == 0 {
		cfg.MaxConcurrency = 1
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "warn"
	}
	if cfg.Output == nil {
		cfg.Output = os.Stderr
	}
	// idle holds each environment once per invocation it can take at once.
	f := &Function{
		cfg:    cfg,
		log:    cfg.Logger,
		idle:   make(chan *instance, cfg.Instances*cfg.MaxConcurrency),
		closed: make(chan struct{}),
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	f.log = f.log.With("function", cfg.Name)
	if cfg.managed() {
		if f.varDir, err = varRoot(cfg.Binary); err != nil {
			return nil, err
		}
	}
	for i := range cfg.Instances {
		inst := &instance{f: f, index: i}
		if err := inst.start(ctx); err != nil {
			f.Close()
			return nil, err
		}
		f.instances = append(f.instances, inst)
		for range cfg.MaxConcurrency {
			f.idle <- inst
		}
	}
	return f, nil
}

// Name returns the function's name (Config.Name).
func (f *Function) Name() string { return f.cfg.Name }

// Invoke sends payload to a free execution environment and waits for the
// answer. requestID becomes the invocation's request id (a new one when
// empty). It returns an error when the platform failed: the function timed out
// (ErrTimeout), its bootstrap exited (ErrExited) or failed its init
// (*InitError), the emulator failed (ErrEmulator), ctx ended while waiting, or
// the Function is closed. A handler error is a successful Invoke with
// Result.Err set.
//
// When ctx ends while the function runs, Invoke returns ctx.Err() at once and
// the invocation goes on to completion or timeout in the background, as on
// Lambda; the environment becomes free afterwards.
func (f *Function) Invoke(ctx context.Context, payload []byte, requestID string) (Result, error) {
	f.mu.Lock()
	if f.isClosed {
		f.mu.Unlock()
		return Result{}, ErrClosed
	}
	f.wg.Add(1)
	f.mu.Unlock()
	defer f.wg.Done()

	var inst *instance
	select {
	case inst = <-f.idle:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-f.closed:
		return Result{}, ErrClosed
	}
	if requestID == "" {
		requestID = newRequestID()
	}
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		res, err := inst.invoke(payload, requestID)
		f.idle <- inst
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Close stops every emulator process (and its bootstrap) and waits for the
// invocations in flight to end. It is safe to call more than once.
func (f *Function) Close() error {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		f.isClosed = true
		f.mu.Unlock()
		close(f.closed)
		for _, inst := range f.instances {
			inst.stop()
		}
		f.wg.Wait()
		if f.varDir != "" {
			os.RemoveAll(f.varDir)
		}
	})
	return nil
}

// instance is one execution environment: one emulator process at a time.
type instance struct {
	f     *Function
	index int

	restart sync.Mutex // one restart at a time (managed mode: several invocations share the environment)

	mu      sync.Mutex
	stopped bool // Close has stopped this environment: start no new emulator
	cmd     *exec.Cmd
	url     string        // the emulator's invoke URL
	exited  chan struct{} // closed when the process has exited
	client  *http.Client
}

// start runs a new emulator process on two free ports and waits until its
// invoke endpoint accepts connections. A port taken between the choice and
// the emulator's listen makes the emulator exit; start then tries new ports
// (three attempts in all).
func (inst *instance) start(ctx context.Context) error {
	var err error
	for range 3 {
		if err = inst.startOnce(ctx); err == nil || errors.Is(err, ErrClosed) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func (inst *instance) startOnce(ctx context.Context) error {
	cfg := inst.f.cfg
	apiAddr, err := freeAddr()
	if err != nil {
		return err
	}
	rieAddr, err := freeAddr()
	if err != nil {
		return err
	}
	args := []string{cfg.RIE,
		"--runtime-api-address", apiAddr,
		"--runtime-interface-emulator-address", rieAddr,
		"--log-level", cfg.LogLevel,
		cfg.Binary}
	if cfg.managed() {
		args = managedCommand(inst.f.varDir, args)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = filepath.Dir(cfg.Binary) // the emulator runs the bootstrap in its own working directory
	cmd.Env = inst.environ()
	cmd.Stdout, cmd.Stderr = cfg.Output, cfg.Output
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("rie: start %s: %w", cfg.RIE, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := waitListening(ctx, rieAddr, exited); err != nil {
		killProcessGroup(cmd)
		<-exited
		return fmt.Errorf("rie: %s: the emulator did not start: %w", cfg.Name, err)
	}
	inst.mu.Lock()
	if inst.stopped { // Close ran while this one started: it must not outlive Close
		inst.mu.Unlock()
		terminate(cmd)
		<-exited
		return ErrClosed
	}
	inst.cmd, inst.url, inst.exited = cmd, "http://"+rieAddr+invokePath, exited
	// The emulator answers a timed-out invocation itself; the client's own
	// limit only guards against an emulator that hangs.
	inst.client = &http.Client{Timeout: cfg.Timeout + 30*time.Second}
	inst.mu.Unlock()
	inst.f.log.Debug("execution environment ready", "instance", inst.index, "emulator", rieAddr, "runtimeAPI", apiAddr)
	return nil
}

// environ is the emulator's (and so the function's) whole environment.
func (inst *instance) environ() []string {
	cfg := inst.f.cfg
	env := map[string]string{}
	for k, v := range cfg.Env {
		env[k] = v
	}
	if _, ok := env["PATH"]; !ok {
		env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
	}
	if _, ok := env["TZ"]; !ok {
		env["TZ"] = ":UTC"
	}
	dir := filepath.Dir(cfg.Binary)
	for k, v := range map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        cfg.Name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(cfg.MemoryMB),
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     strconv.Itoa(int((cfg.Timeout + time.Second - 1) / time.Second)),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + cfg.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      "$LATEST",
		"AWS_REGION":                      cfg.Region,
		"AWS_DEFAULT_REGION":              cfg.Region,
		"_HANDLER":                        cfg.Handler,
		"LAMBDA_TASK_ROOT":                dir,
		"LAMBDA_RUNTIME_DIR":              dir,
	} {
		env[k] = v
	}
	// AWS_LAMBDA_MAX_CONCURRENCY switches the emulator to its managed-instances
	// mode: set by MaxConcurrency only, never passed on from Env.
	delete(env, "AWS_LAMBDA_MAX_CONCURRENCY")
	if cfg.managed() {
		env["AWS_LAMBDA_MAX_CONCURRENCY"] = strconv.Itoa(cfg.MaxConcurrency)
		env["LAMBDA_TASK_ROOT"] = managedTaskRoot // where the emulator runs the bootstrap
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// invoke posts one invocation to the environment's emulator, starting a new
// emulator first if the last one died. Up to Config.MaxConcurrency
// goroutines call it at a time (each took the instance from Function.idle);
// one of them restarts a dead emulator, the others use the new one.
func (inst *instance) invoke(payload []byte, requestID string) (Result, error) {
	inst.mu.Lock()
	exited, url, client := inst.exited, inst.url, inst.client
	inst.mu.Unlock()
	select {
	case <-exited:
		inst.restart.Lock()
		inst.mu.Lock()
		again := inst.exited == exited // nobody restarted it meanwhile
		inst.mu.Unlock()
		if again {
			inst.f.log.Warn("the emulator process had exited; starting a new one", "instance", inst.index)
			if err := inst.start(context.Background()); err != nil {
				inst.restart.Unlock()
				return Result{}, fmt.Errorf("%w: %w", ErrEmulator, err)
			}
		}
		inst.restart.Unlock()
		inst.mu.Lock()
		url, client = inst.url, inst.client
		inst.mu.Unlock()
	default:
	}
	res, err := inst.post(url, client, payload, requestID)
	// Managed mode: the slot was given back when the last answer came,
	// and its runtime loop may not be back in /next yet (or may still run
	// an invocation that timed out): wait for a loop, up to the timeout.
	backoff, waited := 2*time.Millisecond, time.Duration(0)
	for errors.Is(err, errUnavailable) && waited < inst.f.cfg.Timeout {
		time.Sleep(backoff)
		waited += backoff
		backoff = min(2*backoff, 50*time.Millisecond)
		res, err = inst.post(url, client, payload, requestID)
	}
	res.RequestID = requestID
	switch {
	case errors.Is(err, ErrTimeout) && inst.f.cfg.managed():
		inst.f.log.Warn("invocation timed out; as on Lambda Managed Instances, the runtime is not stopped and the handler may still run",
			"requestId", requestID, "timeout", inst.f.cfg.Timeout)
	case errors.Is(err, ErrTimeout):
		inst.f.log.Warn("invocation timed out; the emulator killed the runtime, the next invocation starts a new one",
			"requestId", requestID, "timeout", inst.f.cfg.Timeout)
	case errors.Is(err, ErrExited):
		inst.f.log.Warn("the runtime exited mid-invocation; the next invocation starts a new one", "requestId", requestID, "err", err)
	}
	return res, err
}

// post sends one invocation and classifies the answer.
func (inst *instance) post(url string, client *http.Client, payload []byte, requestID string) (Result, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amzn-RequestId", requestID)
	resp, err := client.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %s: %w", ErrEmulator, inst.f.cfg.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPayloadSize+1))
	if err != nil {
		return Result{}, fmt.Errorf("%w: %s: read the answer: %w", ErrEmulator, inst.f.cfg.Name, err)
	}
	res, err := classify(inst.f.cfg.Name, resp.StatusCode, body)
	if inst.f.cfg.managed() {
		res, err = classifyManaged(inst.f.cfg.Name, resp.StatusCode, resp.Header.Get("Error-Type"), body, res, err)
	}
	return res, err
}

// timedOut is the emulator's whole answer to a timed-out invocation.
var timedOut = regexp.MustCompile(`^Task timed out after [0-9]+\.[0-9]{2} seconds$`)

// classify maps the emulator's answer (see the package doc) to Invoke's result.
func classify(name string, status int, body []byte) (Result, error) {
	if len(body) > MaxPayloadSize {
		return Result{}, fmt.Errorf("%w: %s: the response is over %d bytes", ErrEmulator, name, MaxPayloadSize)
	}
	switch status {
	case http.StatusOK:
		if timedOut.Match(body) {
			return Result{}, fmt.Errorf("%w: %s: %s", ErrTimeout, name, body)
		}
		if fe := functionError(body); fe != nil {
			return Result{Err: fe}, nil
		}
		return Result{Payload: body}, nil
	case http.StatusBadGateway:
		fe := functionError(body)
		if fe != nil && fe.Type == "Runtime.ExitError" {
			return Result{}, fmt.Errorf("%w: %w", ErrExited, fe)
		}
		return Result{}, &InitError{Function: name, Reported: fe}
	}
	return Result{}, fmt.Errorf("%w: %s: HTTP %d %q", ErrEmulator, name, status, body)
}

// functionError returns body as an error document if it is exactly one: an
// object with errorMessage and errorType and nothing else but stackTrace. The
// emulator does not pass X-Amz-Function-Error on, so a handler that returns
// such an object as its result reads as an error, as under SAM CLI.
func functionError(body []byte) *FunctionError {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return nil
	}
	if _, ok := doc["errorMessage"]; !ok {
		return nil
	}
	if _, ok := doc["errorType"]; !ok {
		return nil
	}
	for k := range doc {
		if k != "errorMessage" && k != "errorType" && k != "stackTrace" {
			return nil
		}
	}
	var fe FunctionError
	if json.Unmarshal(body, &fe) != nil {
		return nil
	}
	return &fe
}

// stop ends the environment's emulator and waits for it to exit. SIGTERM
// makes the emulator kill its runtime (which it starts in a process group of
// its own) before it exits; SIGKILL to the emulator's group follows if it has
// not exited within 2 s.
func (inst *instance) stop() {
	inst.mu.Lock()
	inst.stopped = true
	cmd, exited := inst.cmd, inst.exited
	inst.mu.Unlock()
	if cmd == nil {
		return
	}
	terminate(cmd)
	grace := time.NewTimer(2 * time.Second)
	defer grace.Stop()
	select {
	case <-exited:
	case <-grace.C:
		killProcessGroup(cmd)
		<-exited
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// waitListening waits until addr accepts a TCP connection, for up to 10 s.
func waitListening(ctx context.Context, addr string, exited <-chan struct{}) error {
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			return c.Close()
		}
		select {
		case <-tick.C:
		case <-exited:
			return errors.New("it exited (see its output)")
		case <-deadline.C:
			return fmt.Errorf("nothing listens on %s after 10s", addr)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// BinDir is where the Makefile installs the emulator, relative to the
// repository root.
const BinDir = ".build/bin"

// Locate returns the emulator's path: root/.build/bin/aws-lambda-rie (what
// make rie-install writes) or else aws-lambda-rie on PATH. Its error says how
// to install it.
func Locate(root string) (string, error) {
	p := filepath.Join(root, BinDir, "aws-lambda-rie")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("the Lambda Runtime Interface Emulator is not installed in %s nor on PATH: run `make rie-install` (GOBIN=<repo>/%s go install %s@%s, about 10 s)",
		filepath.Join(root, BinDir), BinDir, Package, Version)
}

// managed reports whether the environments run in the emulator's
// managed-instances mode.
func (c *Config) managed() bool { return c.MaxConcurrency > 1 }

// managedTaskRoot is where the emulator's managed-instances mode runs the
// bootstrap: it ignores the command line and looks only in /var/runtime,
// /var/task and /opt (as in Lambda's container), with /var/task as the
// working directory.
const managedTaskRoot = "/var/task"

// managedUID is the user the emulator's managed-instances mode runs the
// bootstrap as (its process supervisor sets uid 993, as Lambda's sandbox
// user).
const managedUID = 993

// varRoot makes the /var a managed-mode emulator sees: a private directory
// whose task entry is the bootstrap's directory, mounted on /var in a mount
// namespace of the emulator's own (managedCommand), so nothing outside it
// changes and functions started side by side each see their own. The mode
// needs root (it mounts, and it starts the bootstrap as user 993), and the
// bootstrap's directory must be open to that user.
func varRoot(binary string) (string, error) {
	if runtime.GOOS != "linux" {
		return "", errors.New("rie: Config.MaxConcurrency > 1 needs Linux: the emulator's managed-instances mode runs the bootstrap only from /var/task, which is mounted privately for it")
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("rie: Config.MaxConcurrency > 1 needs root: the emulator's managed-instances mode starts the bootstrap as user %d, and /var/task is mounted for it in a private mount namespace", managedUID)
	}
	if filepath.Base(binary) != "bootstrap" {
		return "", fmt.Errorf("rie: Config.MaxConcurrency > 1: the binary must be named bootstrap (the emulator runs /var/task/bootstrap), not %s", filepath.Base(binary))
	}
	for _, tool := range []string{"unshare", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("rie: Config.MaxConcurrency > 1 needs %s (util-linux) to give the emulator a private /var/task: %w", tool, err)
		}
	}
	if err := openToOthers(binary); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "rie-var-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err == nil {
		err = os.Symlink(filepath.Dir(binary), filepath.Join(dir, "task"))
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("rie: %w", err)
	}
	return dir, nil
}

// openToOthers checks that user managedUID can run binary: every directory
// above it searchable, the file executable by others.
func openToOthers(binary string) error {
	fi, err := os.Stat(binary)
	if err != nil {
		return fmt.Errorf("rie: %w", err)
	}
	if fi.Mode().Perm()&0o005 != 0o005 {
		return fmt.Errorf("rie: Config.MaxConcurrency > 1: %s must be readable and executable by others (mode %v): the emulator runs it as user %d", binary, fi.Mode().Perm(), managedUID)
	}
	for dir := filepath.Dir(binary); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("rie: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("rie: Config.MaxConcurrency > 1: directory %s must be searchable by others (mode %v): the emulator runs the bootstrap as user %d", dir, fi.Mode().Perm(), managedUID)
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// managedCommand wraps the emulator's command line: a new mount namespace,
// varDir bound on /var, then exec of the emulator, which keeps the process
// id (and so the process group) of the command started.
func managedCommand(varDir string, rie []string) []string {
	args := []string{"unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", `mount --bind "$0" /var && exec "$@"`, varDir}
	return append(args, rie...)
}

// errUnavailable is the managed-instances mode's answer when no runtime
// loop waits in /next: the invocation was not delivered.
var errUnavailable = errors.New("no runtime loop of the environment is waiting for an invocation")

// classifyManaged maps the answers of the managed-instances mode that the
// on-demand mode gives otherwise: a timeout and a runtime exit are HTTP 200
// with the Error-Type header (and a body that may lack errorMessage), and an
// invocation that finds no runtime loop waiting in /next is refused with
// HTTP 400 Runtime.Unavailable; a platform error is an Error-Type header on
// a body that is no handler error document.
func classifyManaged(name string, status int, errorType string, body []byte, res Result, err error) (Result, error) {
	switch {
	case status == http.StatusOK && errorType == "Sandbox.Timedout":
		msg := "Task timed out"
		if res.Err != nil {
			msg = res.Err.Message
		}
		return Result{}, fmt.Errorf("%w: %s: %s", ErrTimeout, name, msg)
	case status == http.StatusOK && errorType == "Runtime.ExitError":
		fe := res.Err
		if fe == nil {
			fe = &FunctionError{Type: errorType}
			_ = json.Unmarshal(body, fe)
		}
		return Result{}, fmt.Errorf("%w: %w", ErrExited, fe)
	case status == http.StatusBadRequest && errorType == "Runtime.Unavailable":
		return Result{}, fmt.Errorf("%w: %s: %w", ErrEmulator, name, errUnavailable)
	case err == nil && res.Err == nil && errorType != "":
		// A platform error, not the handler's (whose error document has an
		// errorMessage): e.g. the answer to an invocation after a failed
		// init, which brings the emulator down.
		return Result{}, fmt.Errorf("%w: %s: %s: %s", ErrEmulator, name, errorType, body)
	}
	return res, err
}
