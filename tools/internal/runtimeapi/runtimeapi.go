package runtimeapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
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
	"sort"
	"strconv"
	"sync"
	"time"
)

// MaxResponseSize is the largest response payload Lambda accepts from a
// function (6 MB for synchronous invocations).
const MaxResponseSize = 6 * 1024 * 1024

// initTimeout is Lambda's limit on the init phase of an on-demand function.
const initTimeout = 10 * time.Second

var (
	// ErrTimeout is matched (errors.Is) by the error Invoke returns when the
	// function runs past Config.Timeout. Its process has been killed.
	ErrTimeout = errors.New("runtimeapi: task timed out")
	// ErrExited is matched by the error Invoke returns when the function's
	// process exits during an invocation.
	ErrExited = errors.New("runtimeapi: runtime exited")
	// ErrClosed is returned by Invoke after Close.
	ErrClosed = errors.New("runtimeapi: function closed")
)

// Config describes one function to run.
type Config struct {
	// Binary is the path of the executable (a custom runtime's bootstrap).
	Binary string
	// Name is AWS_LAMBDA_FUNCTION_NAME; the template's logical id is a good choice.
	Name string
	// Env holds the function's environment variables (the template's
	// Environment.Variables and anything the caller adds, such as endpoints and
	// credentials for local servers). Lambda's reserved variables override it.
	Env map[string]string
	// Timeout is the invocation timeout; 3 s (Lambda's default) when zero.
	Timeout time.Duration
	// MemoryMB is AWS_LAMBDA_FUNCTION_MEMORY_SIZE; 128 when zero. Not enforced.
	MemoryMB int
	// Region is AWS_REGION; "us-east-1" when empty.
	Region string
	// Handler is _HANDLER; "bootstrap" when empty.
	Handler string
	// Instances is the number of processes, i.e. the concurrency; 1 when zero.
	Instances int
	// Stdout and Stderr receive the function's output; os.Stderr when nil.
	Stdout, Stderr io.Writer
	// Logger receives the emulator's own log lines; slog.Default() when nil.
	Logger *slog.Logger
}

// Result is the outcome of an invocation that reached the function and came back.
type Result struct {
	// RequestID is the Lambda-Runtime-Aws-Request-Id of the invocation.
	RequestID string
	// Payload is the function's response body; nil when Err is set.
	Payload []byte
	// Err is the error the handler reported (POST .../error), if any.
	Err *FunctionError
}

// FunctionError is the error document a runtime posts for a failed invocation
// or a failed init. The Go runtime sets Type to the Go type name of the error.
type FunctionError struct {
	Type       string          `json:"errorType"`
	Message    string          `json:"errorMessage"`
	StackTrace json.RawMessage `json:"stackTrace,omitempty"`
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// InitError reports a process that failed before asking for its first event.
type InitError struct {
	// Function is Config.Name.
	Function string
	// Reported is what the runtime posted to /runtime/init/error, if anything.
	Reported *FunctionError
	// Cause is why the process is gone: its exit status, or a failure to start it.
	Cause error
}

func (e *InitError) Error() string {
	msg := "runtimeapi: " + e.Function + ": init failed"
	if e.Reported != nil {
		msg += ": " + e.Reported.Error()
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

func (e *InitError) Unwrap() error { return e.Cause }

// Function is a running function: Config.Instances processes, each behind its
// own Runtime API endpoint. A restarted process gets a new endpoint, so every
// request is attributed to the process that sent it. Its methods are safe for
// concurrent use.
type Function struct {
	cfg       Config
	log       *slog.Logger
	instances []*instance
	idle      chan *instance
	closed    chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex // guards isClosed and wg.Add against Close
	isClosed bool
	wg       sync.WaitGroup // in-flight invocations
}

// Start starts the function's processes and waits until each has finished its
// init phase (asked for its first event). If one fails, Start stops the others
// and returns an *InitError.
func Start(ctx context.Context, cfg Config) (*Function, error) {
	if cfg.Binary == "" {
		return nil, errors.New("runtimeapi: Config.Binary is empty")
	}
	bin, err := filepath.Abs(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("runtimeapi: %w", err)
	}
	cfg.Binary = bin
	if cfg.Name == "" {
		cfg.Name = filepath.Base(filepath.Dir(bin))
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
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stderr
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	f := &Function{
		cfg:    cfg,
		log:    cfg.Logger,
		idle:   make(chan *instance, cfg.Instances),
		closed: make(chan struct{}),
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	f.log = f.log.With("function", cfg.Name)
	for i := range cfg.Instances {
		inst := &instance{f: f, index: i}
		f.instances = append(f.instances, inst)
		f.idle <- inst
	}
	for _, inst := range f.instances {
		if err := inst.start(ctx); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// Name returns the function's name (Config.Name).
func (f *Function) Name() string { return f.cfg.Name }

// Invoke sends payload to a free process and waits for its answer. It returns
// an error when the platform fails: the function timed out (ErrTimeout), its
// process exited (ErrExited), a restarted process failed init (*InitError), ctx
// ended while waiting, or the Function is closed. A handler error is a
// successful Invoke with Result.Err set.
//
// When ctx ends while the function runs, Invoke returns ctx.Err() at once and
// the invocation goes on to completion or timeout in the background, as on
// Lambda; the instance becomes free afterwards.
func (f *Function) Invoke(ctx context.Context, payload []byte) (Result, error) {
	var inst *instance
	select {
	case <-f.closed:
		return Result{}, ErrClosed
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case inst = <-f.idle:
	}
	f.mu.Lock()
	if f.isClosed {
		f.mu.Unlock()
		f.idle <- inst
		return Result{}, ErrClosed
	}
	f.wg.Add(1)
	f.mu.Unlock()
	if !inst.alive() {
		f.log.Info("starting a new execution environment", "instance", inst.index)
		if err := inst.start(ctx); err != nil {
			f.idle <- inst
			f.wg.Done()
			return Result{}, err
		}
	}
	inv := &invocation{
		id:       newRequestID(),
		payload:  payload,
		deadline: time.Now().Add(f.cfg.Timeout),
		done:     make(chan Result, 1),
	}
	out := make(chan outcome, 1)
	go func() {
		defer f.wg.Done()
		o := inst.run(inv)
		f.idle <- inst
		out <- o
	}()
	select {
	case o := <-out:
		return o.res, o.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Close kills the function's processes, stops its Runtime API endpoints and
// waits for in-flight invocations to end. It is safe to call more than once.
func (f *Function) Close() error {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		f.isClosed = true
		close(f.closed)
		f.mu.Unlock()
		for _, inst := range f.instances {
			inst.kill()
		}
		f.wg.Wait()
		for _, inst := range f.instances {
			inst.kill() // a process an in-flight Invoke restarted meanwhile
			if p := inst.current(); p != nil {
				p.server.Close()
			}
		}
	})
	return nil
}

type outcome struct {
	res Result
	err error
}

type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	done     chan Result
}

// instance is one execution environment: a slot that runs one process
// (generation) at a time and starts a new one after a timeout or a crash.
type instance struct {
	f     *Function
	index int

	mu   sync.Mutex
	proc *process
}

// process is one run of the binary with its own Runtime API endpoint (addr,
// its AWS_LAMBDA_RUNTIME_API). The endpoint's handlers are bound to the
// process, so a request is always attributed to the process that sent it: one
// from a killed process, even one already inside the server when its successor
// starts, cannot close the successor's ready channel or take its events. Such a
// request is answered 410 Gone so that a runtime still running exits.
type process struct {
	addr      string
	server    *http.Server
	cmd       *exec.Cmd
	pending   chan *invocation // GET /next receives from here
	ready     chan struct{}    // closed at the first GET /next
	readyOnce sync.Once
	exited    chan struct{} // closed when the process is gone
	exitErr   error

	mu      sync.Mutex
	current *invocation
	initErr *FunctionError
}

// serve starts p's Runtime API endpoint on ln.
func (inst *instance) serve(p *process, ln net.Listener) {
	bind := func(h func(*process, http.ResponseWriter, *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { h(p, w, r) }
	}
	mux := http.NewServeMux()
	mux.Handle("GET /2018-06-01/runtime/invocation/next", bind(inst.handleNext))
	mux.Handle("POST /2018-06-01/runtime/invocation/{id}/response", bind(inst.handleResponse))
	mux.Handle("POST /2018-06-01/runtime/invocation/{id}/error", bind(inst.handleError))
	mux.Handle("POST /2018-06-01/runtime/init/error", bind(inst.handleInitError))
	p.addr = ln.Addr().String()
	p.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go p.server.Serve(ln)
}

// attached reports whether p is the instance's process and still running, i.e.
// whether a request p sent may act on the instance. When it is not, it answers
// the request 410 Gone.
func (inst *instance) attached(p *process, w http.ResponseWriter) bool {
	if inst.current() == p {
		select {
		case <-p.exited:
		default:
			return true
		}
	}
	writeAPIError(w, http.StatusGone, "Runtime.ExecutionEnvironmentGone",
		"this process's execution environment was shut down or replaced; the runtime must exit")
	return false
}

func (inst *instance) current() *process {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return inst.proc
}

func (inst *instance) alive() bool {
	p := inst.current()
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (inst *instance) kill() {
	if p := inst.current(); p != nil {
		p.kill()
	}
}

func (p *process) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	<-p.exited
}

// start runs a new process and waits for the end of its init phase.
func (inst *instance) start(ctx context.Context) error {
	cfg := inst.f.cfg
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return &InitError{Function: cfg.Name, Cause: fmt.Errorf("runtimeapi: listen: %w", err)}
	}
	p := &process{
		pending: make(chan *invocation),
		ready:   make(chan struct{}),
		exited:  make(chan struct{}),
	}
	inst.serve(p, ln)
	cmd := exec.Command(cfg.Binary)
	cmd.Dir = filepath.Dir(cfg.Binary)
	cmd.Env = inst.environ(p.addr)
	cmd.Stdout = cfg.Stdout
	cmd.Stderr = cfg.Stderr
	p.cmd = cmd
	inst.mu.Lock()
	old := inst.proc
	inst.proc = p
	inst.mu.Unlock()
	if old != nil {
		// old is gone (start runs only when it is); requests it left in its
		// endpoint are answered 410 by their handlers.
		old.server.Close()
	}
	if err := cmd.Start(); err != nil {
		p.exitErr = err
		close(p.exited)
		return &InitError{Function: cfg.Name, Cause: err}
	}
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	timer := time.NewTimer(initTimeout)
	defer timer.Stop()
	var cause error
	select {
	case <-p.ready:
		return nil
	case <-p.exited:
		cause = p.exitErr
	case <-timer.C:
		p.kill()
		cause = fmt.Errorf("init phase did not end within %v", initTimeout)
	case <-ctx.Done():
		p.kill()
		return ctx.Err()
	case <-inst.f.closed:
		p.kill()
		return ErrClosed
	}
	p.mu.Lock()
	reported := p.initErr
	p.mu.Unlock()
	return &InitError{Function: cfg.Name, Reported: reported, Cause: cause}
}

// environ is the environment of a process whose Runtime API endpoint is addr:
// Config.Env, then Lambda's reserved variables.
func (inst *instance) environ(addr string) []string {
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
	for k, v := range map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          addr,
		"AWS_LAMBDA_FUNCTION_NAME":        cfg.Name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(cfg.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + cfg.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      time.Now().UTC().Format("2006/01/02") + "/[$LATEST]" + randomHex(16),
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_REGION":                      cfg.Region,
		"AWS_DEFAULT_REGION":              cfg.Region,
		"_HANDLER":                        cfg.Handler,
		"LAMBDA_TASK_ROOT":                filepath.Dir(cfg.Binary),
		"LAMBDA_RUNTIME_DIR":              filepath.Dir(cfg.Binary),
	} {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// run hands inv to the process and waits for the answer, the timeout or the
// end of the process.
func (inst *instance) run(inv *invocation) outcome {
	p := inst.current()
	cfg := inst.f.cfg
	timer := time.NewTimer(time.Until(inv.deadline))
	defer timer.Stop()
	timedOut := func() outcome {
		p.kill()
		inst.f.log.Warn("invocation timed out; execution environment killed", "requestId", inv.id, "timeout", cfg.Timeout)
		return outcome{res: Result{RequestID: inv.id}, err: fmt.Errorf("%s: RequestId: %s: task timed out after %.2f seconds: %w",
			cfg.Name, inv.id, cfg.Timeout.Seconds(), ErrTimeout)}
	}
	exited := func() outcome {
		return outcome{res: Result{RequestID: inv.id}, err: fmt.Errorf("%s: RequestId: %s: %w with error: %v",
			cfg.Name, inv.id, ErrExited, p.exitErr)}
	}
	closed := func() outcome {
		p.kill()
		return outcome{res: Result{RequestID: inv.id}, err: ErrClosed}
	}
	select {
	case p.pending <- inv:
	case <-p.exited:
		return exited()
	case <-timer.C:
		return timedOut()
	case <-inst.f.closed:
		return closed()
	}
	select {
	case res := <-inv.done:
		return outcome{res: res}
	case <-p.exited:
		// The answer may have been posted just before the process ended.
		select {
		case res := <-inv.done:
			return outcome{res: res}
		default:
		}
		return exited()
	case <-timer.C:
		return timedOut()
	case <-inst.f.closed:
		return closed()
	}
}

func (inst *instance) handleNext(p *process, w http.ResponseWriter, r *http.Request) {
	if !inst.attached(p, w) {
		return
	}
	p.readyOnce.Do(func() { close(p.ready) })
	var inv *invocation
	select {
	case inv = <-p.pending:
	case <-r.Context().Done():
		return
	case <-p.exited:
		return
	}
	p.mu.Lock()
	p.current = inv
	p.mu.Unlock()
	cfg := inst.f.cfg
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", FunctionARN(cfg.Region, cfg.Name))
	h.Set("Lambda-Runtime-Trace-Id", newTraceID())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

// take removes and returns the in-flight invocation with the given id.
func (p *process) take(id string) *invocation {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current == nil || p.current.id != id {
		return nil
	}
	inv := p.current
	p.current = nil
	return inv
}

func (inst *instance) handleResponse(p *process, w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxResponseSize+1))
	if !inst.attached(p, w) {
		return
	}
	inv := p.take(r.PathValue("id"))
	if inv == nil {
		writeAPIError(w, http.StatusBadRequest, "InvalidRequestID", "unknown or finished request id "+r.PathValue("id"))
		return
	}
	if err != nil {
		inv.done <- Result{RequestID: inv.id, Err: &FunctionError{Type: "Runtime.ResponseError", Message: err.Error()}}
		writeAPIError(w, http.StatusBadRequest, "InvalidResponse", err.Error())
		return
	}
	if len(body) > MaxResponseSize {
		inv.done <- Result{RequestID: inv.id, Err: &FunctionError{
			Type:    "Function.ResponseSizeTooLarge",
			Message: fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxResponseSize),
		}}
		writeAPIError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response payload too large")
		return
	}
	// A runtime that fails while streaming its response reports it in trailers.
	if typ := r.Trailer.Get("Lambda-Runtime-Function-Error-Type"); typ != "" {
		fe := &FunctionError{Type: typ}
		if raw, err := base64.StdEncoding.DecodeString(r.Trailer.Get("Lambda-Runtime-Function-Error-Body")); err == nil {
			_ = json.Unmarshal(raw, fe)
		}
		inv.done <- Result{RequestID: inv.id, Err: fe}
	} else {
		inv.done <- Result{RequestID: inv.id, Payload: body}
	}
	w.WriteHeader(http.StatusAccepted)
}

func (inst *instance) handleError(p *process, w http.ResponseWriter, r *http.Request) {
	if !inst.attached(p, w) {
		return
	}
	inv := p.take(r.PathValue("id"))
	if inv == nil {
		writeAPIError(w, http.StatusBadRequest, "InvalidRequestID", "unknown or finished request id "+r.PathValue("id"))
		return
	}
	fe := readFunctionError(r)
	inst.f.log.Debug("function returned an error", "requestId", inv.id, "errorType", fe.Type)
	inv.done <- Result{RequestID: inv.id, Err: fe}
	w.WriteHeader(http.StatusAccepted)
}

func (inst *instance) handleInitError(p *process, w http.ResponseWriter, r *http.Request) {
	if !inst.attached(p, w) {
		return
	}
	fe := readFunctionError(r)
	p.mu.Lock()
	p.initErr = fe
	p.mu.Unlock()
	inst.f.log.Error("function reported an init error", "errorType", fe.Type, "errorMessage", fe.Message)
	w.WriteHeader(http.StatusAccepted)
}

// readFunctionError decodes an error document; a body that is not one becomes
// the message, and the Lambda-Runtime-Function-Error-Type header fills a
// missing type.
func readFunctionError(r *http.Request) *FunctionError {
	body, _ := io.ReadAll(io.LimitReader(r.Body, MaxResponseSize))
	fe := &FunctionError{}
	if err := json.Unmarshal(body, fe); err != nil || (fe.Type == "" && fe.Message == "") {
		fe = &FunctionError{Message: string(bytes.TrimSpace(body))}
	}
	if fe.Type == "" {
		fe.Type = r.Header.Get("Lambda-Runtime-Function-Error-Type")
	}
	if fe.Type == "" {
		fe.Type = "Runtime.Unknown"
	}
	return fe
}

func writeAPIError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(FunctionError{Type: typ, Message: msg})
}

// FunctionARN is the ARN the emulator gives a function: a fixed local account.
func FunctionARN(region, name string) string {
	return "arn:aws:lambda:" + region + ":000000000000:function:" + name
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newRequestID returns a random UUID (version 4), the form of Lambda request ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newTraceID returns an X-Ray trace header value, not sampled.
func newTraceID() string {
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), randomHex(24), randomHex(16))
}
