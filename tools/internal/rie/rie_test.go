package rie

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	echoBinary string
	rieBinary  string
)

// TestMain builds the real aws-lambda-go test function once and finds the
// emulator that make rie-install puts in <repo>/.build/bin. A missing emulator
// fails the run with the command that installs it: it never skips.
func TestMain(m *testing.M) {
	var err error
	if rieBinary, err = Locate(filepath.Join("..", "..", "..")); err != nil {
		fmt.Fprintln(os.Stderr, "rie tests:", err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "rie-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Open to others: the managed-instances mode runs the bootstrap as
	// user 993 (managed_test.go).
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	echoBinary = filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", echoBinary, "./testdata/echo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building testdata/echo: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if os.Getenv("RIE_TEST_HELPER") == "1" {
		holdAFunction()
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type echoReply struct {
	Message     string            `json:"message"`
	RequestID   string            `json:"requestId"`
	FunctionARN string            `json:"functionArn"`
	DeadlineMs  int64             `json:"deadlineMs"`
	HasDeadline bool              `json:"hasDeadline"`
	PID         int               `json:"pid"`
	Env         map[string]string `json:"env"`
	Invocations int               `json:"invocations"`
	StartedNs   int64             `json:"startedNs"`
	EndedNs     int64             `json:"endedNs"`
}

// syncBuffer collects output written by several processes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testConfig(t *testing.T) Config {
	t.Helper()
	return Config{
		RIE:     rieBinary,
		Binary:  echoBinary,
		Name:    "EchoFunction",
		Env:     map[string]string{"CUSTOM": "from-template"},
		Timeout: 5 * time.Second,
		Region:  "eu-west-1",
		Output:  io.Discard,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func start(t *testing.T, cfg Config) *Function {
	t.Helper()
	fn, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { fn.Close() })
	return fn
}

func invokeEcho(t *testing.T, fn *Function, action, msg string) (Result, echoReply, error) {
	t.Helper()
	payload, _ := json.Marshal(map[string]string{"action": action, "message": msg})
	res, err := fn.Invoke(context.Background(), payload, "")
	var reply echoReply
	if err == nil && res.Err == nil {
		if jerr := json.Unmarshal(res.Payload, &reply); jerr != nil {
			t.Fatalf("response %q: %v", res.Payload, jerr)
		}
	}
	return res, reply, err
}

func TestInvokeResponse(t *testing.T) {
	t.Setenv("IDEM_TEST_LEAK", "the caller's environment")
	cfg := testConfig(t)
	cfg.MemoryMB = 256
	fn := start(t, cfg)

	before := time.Now()
	res, reply, err := invokeEcho(t, fn, "echo", "hello")
	after := time.Now()
	if err != nil || res.Err != nil {
		t.Fatalf("Invoke: err=%v, function error=%v", err, res.Err)
	}
	if reply.Message != "hello" {
		t.Errorf("message = %q, want hello", reply.Message)
	}
	if res.RequestID == "" || reply.RequestID != res.RequestID {
		t.Errorf("request id seen by the function %q, Result.RequestID %q", reply.RequestID, res.RequestID)
	}
	// The emulator always names account 012345678912 in us-east-1.
	if want := "arn:aws:lambda:us-east-1:012345678912:function:EchoFunction"; reply.FunctionARN != want {
		t.Errorf("function ARN = %q, want %q", reply.FunctionARN, want)
	}
	// The handler's ctx deadline is the invocation's start + Timeout.
	if !reply.HasDeadline {
		t.Fatal("handler ctx has no deadline")
	}
	lo, hi := before.Add(cfg.Timeout).UnixMilli(), after.Add(cfg.Timeout).UnixMilli()
	if reply.DeadlineMs < lo || reply.DeadlineMs > hi {
		t.Errorf("deadline %d ms not within [%d, %d]", reply.DeadlineMs, lo, hi)
	}
	for k, want := range map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        "EchoFunction",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     "5",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"_HANDLER":                        "bootstrap",
		"AWS_REGION":                      "eu-west-1",
		"AWS_DEFAULT_REGION":              "eu-west-1",
		"LAMBDA_TASK_ROOT":                filepath.Dir(echoBinary),
		"CUSTOM":                          "from-template",
		"IDEM_TEST_LEAK":                  "", // the caller's environment stays out
	} {
		if got := reply.Env[k]; got != want {
			t.Errorf("env %s = %q, want %q", k, got, want)
		}
	}

	// The same process serves the next invocation (warm start).
	_, reply2, err := invokeEcho(t, fn, "echo", "again")
	if err != nil {
		t.Fatal(err)
	}
	if reply2.PID != reply.PID || reply2.Invocations != 2 {
		t.Errorf("second invocation: pid %d (first %d), invocations %d; want the same warm process", reply2.PID, reply.PID, reply2.Invocations)
	}
	if reply2.RequestID == reply.RequestID {
		t.Error("request ids repeat")
	}
}

func TestInvokeGivenRequestID(t *testing.T) {
	fn := start(t, testConfig(t))
	res, err := fn.Invoke(context.Background(), []byte(`{"action":"echo"}`), "req-from-the-front")
	if err != nil || res.Err != nil {
		t.Fatalf("Invoke: %v %v", err, res.Err)
	}
	var reply echoReply
	if err := json.Unmarshal(res.Payload, &reply); err != nil {
		t.Fatal(err)
	}
	if res.RequestID != "req-from-the-front" || reply.RequestID != "req-from-the-front" {
		t.Errorf("request id %q, the function saw %q; want req-from-the-front", res.RequestID, reply.RequestID)
	}
}

func TestInvokeHandlerError(t *testing.T) {
	fn := start(t, testConfig(t))
	res, _, err := invokeEcho(t, fn, "error", "card declined")
	if err != nil {
		t.Fatalf("Invoke: %v (a handler error is not a platform error)", err)
	}
	if res.Err == nil {
		t.Fatalf("no function error; payload %q", res.Payload)
	}
	if res.Err.Type != "echoError" || res.Err.Message != "echo failed: card declined" {
		t.Errorf("function error = %+v, want echoError / echo failed: card declined", res.Err)
	}
	if res.Payload != nil {
		t.Errorf("payload %q alongside an error", res.Payload)
	}
	if _, _, err := invokeEcho(t, fn, "echo", "still warm"); err != nil {
		t.Fatal(err)
	}
}

func TestInvokeTimeoutRestartsRuntime(t *testing.T) {
	cfg := testConfig(t)
	cfg.Timeout = time.Second // the emulator's smallest: AWS_LAMBDA_FUNCTION_TIMEOUT is in whole seconds
	fn := start(t, cfg)
	_, first, err := invokeEcho(t, fn, "echo", "warm")
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := invokeEcho(t, fn, "hang", "")
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if res.RequestID == "" {
		t.Error("timed-out Result has no request id")
	}
	_, after, err := invokeEcho(t, fn, "echo", "cold again")
	if err != nil {
		t.Fatal(err)
	}
	if after.PID == first.PID || after.Invocations != 1 {
		t.Errorf("after a timeout: pid %d (before %d), invocations %d; want a fresh runtime", after.PID, first.PID, after.Invocations)
	}
}

// TestInvokeRuntimeExit is what a function that dies mid-invocation looks
// like (a crash, an OOM kill): the invocation fails with ErrExited and the
// next one runs on a fresh runtime (a cold start), as on Lambda.
func TestInvokeRuntimeExit(t *testing.T) {
	fn := start(t, testConfig(t))
	_, first, err := invokeEcho(t, fn, "echo", "warm")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = invokeEcho(t, fn, "exit", "")
	if !errors.Is(err, ErrExited) {
		t.Fatalf("err = %v, want ErrExited", err)
	}
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Type != "Runtime.ExitError" || !strings.Contains(fe.Message, "exit status 3") {
		t.Errorf("error %v does not carry Runtime.ExitError with the exit status", err)
	}
	_, reply, err := invokeEcho(t, fn, "echo", "again")
	if err != nil || reply.Invocations != 1 || reply.PID == first.PID {
		t.Fatalf("after exit: err=%v pid %d (before %d) invocations=%d, want a fresh runtime", err, reply.PID, first.PID, reply.Invocations)
	}
}

func TestInvokeInitError(t *testing.T) {
	for _, tt := range []struct {
		name         string
		mode         string
		wantReported *FunctionError
	}{
		{name: "reported", mode: "error", wantReported: &FunctionError{Type: "Config.Missing", Message: "TABLE is not set"}},
		{name: "crash", mode: "crash"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Env["ECHO_INIT"] = tt.mode
			fn := start(t, cfg) // the bootstrap starts at the first invocation
			for i := range 2 {  // and every invocation tries its init again
				_, _, err := invokeEcho(t, fn, "echo", "")
				var ie *InitError
				if !errors.As(err, &ie) {
					t.Fatalf("invocation %d: err = %T %v, want *InitError", i+1, err, err)
				}
				if ie.Function != "EchoFunction" {
					t.Errorf("Function = %q", ie.Function)
				}
				switch {
				case tt.wantReported == nil && ie.Reported != nil:
					t.Errorf("Reported = %+v, want nil", ie.Reported)
				case tt.wantReported != nil && (ie.Reported == nil || ie.Reported.Type != tt.wantReported.Type || ie.Reported.Message != tt.wantReported.Message):
					t.Errorf("Reported = %+v, want %+v", ie.Reported, tt.wantReported)
				}
			}
		})
	}
}

// TestConcurrentInvokes: each execution environment serves one invocation at
// a time (the emulator panics on a second one), so concurrent callers queue.
func TestConcurrentInvokes(t *testing.T) {
	for _, instances := range []int{1, 3} {
		t.Run(fmt.Sprintf("instances=%d", instances), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Instances = instances
			fn := start(t, cfg)
			const n = 8
			replies := make([]echoReply, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					payload, _ := json.Marshal(map[string]string{"action": "echo", "message": fmt.Sprint(i)})
					res, err := fn.Invoke(context.Background(), payload, "")
					if err == nil {
						err = json.Unmarshal(res.Payload, &replies[i])
					}
					errs[i] = err
				})
			}
			wg.Wait()
			ids, pids := map[string]bool{}, map[int][]int{}
			for i, r := range replies {
				if errs[i] != nil {
					t.Fatalf("invoke %d: %v", i, errs[i])
				}
				if r.Message != fmt.Sprint(i) {
					t.Errorf("invoke %d got the reply for %q", i, r.Message)
				}
				ids[r.RequestID] = true
				pids[r.PID] = append(pids[r.PID], r.Invocations)
			}
			if len(ids) != n {
				t.Errorf("%d distinct request ids, want %d", len(ids), n)
			}
			if len(pids) > instances {
				t.Errorf("%d runtimes served, want at most %d", len(pids), instances)
			}
			for pid, counts := range pids {
				seen := map[int]bool{}
				for _, c := range counts {
					if seen[c] {
						t.Errorf("runtime %d ran two invocations as its #%d", pid, c)
					}
					seen[c] = true
				}
			}
		})
	}
}

func TestInvokeContextAndClose(t *testing.T) {
	fn := start(t, testConfig(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := fn.Invoke(ctx, []byte(`{}`), ""); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled ctx: err = %v", err)
	}
	if err := fn.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := fn.Invoke(context.Background(), []byte(`{}`), ""); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: err = %v, want ErrClosed", err)
	}
}

// TestEmulatorRestart: an emulator process that dies is replaced at the next
// invocation of its environment.
func TestEmulatorRestart(t *testing.T) {
	fn := start(t, testConfig(t))
	_, first, err := invokeEcho(t, fn, "echo", "warm")
	if err != nil {
		t.Fatal(err)
	}
	inst := fn.instances[0]
	inst.mu.Lock()
	cmd, exited := inst.cmd, inst.exited
	inst.mu.Unlock()
	terminate(cmd) // the emulator ends, unasked by Close
	<-exited
	_, reply, err := invokeEcho(t, fn, "echo", "after the emulator died")
	if err != nil {
		t.Fatalf("after the emulator died: %v", err)
	}
	if reply.PID == first.PID || reply.Invocations != 1 {
		t.Errorf("pid %d (before %d) invocations %d, want a fresh runtime", reply.PID, first.PID, reply.Invocations)
	}
}

func TestStartWithoutEmulator(t *testing.T) {
	cfg := testConfig(t)
	cfg.RIE = filepath.Join(t.TempDir(), "aws-lambda-rie")
	_, err := Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "make rie-install") {
		t.Errorf("err = %v, want one that names make rie-install", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := Locate(t.TempDir()); err == nil || !strings.Contains(err.Error(), "make rie-install") {
		t.Errorf("Locate in an empty folder: %v, want an error that names make rie-install", err)
	}
}

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		name    string
		status  int
		body    string
		wantErr error
		wantFE  *FunctionError
		wantOK  string
		initErr bool
	}{
		{name: "response", status: 200, body: `{"ok":true}`, wantOK: `{"ok":true}`},
		{name: "string response", status: 200, body: `"Task timed out after 1.00 seconds"`, wantOK: `"Task timed out after 1.00 seconds"`},
		{name: "handler error", status: 200, body: `{"errorMessage":"m","errorType":"T"}`, wantFE: &FunctionError{Type: "T", Message: "m"}},
		{name: "object with more fields is a result", status: 200, body: `{"errorMessage":"m","errorType":"T","other":1}`, wantOK: `{"errorMessage":"m","errorType":"T","other":1}`},
		{name: "timeout", status: 200, body: "Task timed out after 3.00 seconds", wantErr: ErrTimeout},
		{name: "exit", status: 502, body: `{"errorType":"Runtime.ExitError","errorMessage":"RequestId: x Error: Runtime exited with error: exit status 3"}`, wantErr: ErrExited},
		{name: "init crash", status: 502, body: ``, initErr: true},
		{name: "emulator refuses", status: 400, body: ``, wantErr: ErrEmulator},
		{name: "reservation timeout", status: 504, body: ``, wantErr: ErrEmulator},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := classify("F", tt.status, []byte(tt.body))
			var ie *InitError
			switch {
			case tt.initErr:
				if !errors.As(err, &ie) {
					t.Errorf("err = %v, want *InitError", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("err = %v", err)
			case tt.wantFE != nil:
				if res.Err == nil || res.Err.Type != tt.wantFE.Type || res.Err.Message != tt.wantFE.Message || res.Payload != nil {
					t.Errorf("got %+v, want function error %+v", res, tt.wantFE)
				}
			default:
				if res.Err != nil || string(res.Payload) != tt.wantOK {
					t.Errorf("got %+v, want payload %s", res, tt.wantOK)
				}
			}
		})
	}
}

// TestEmulatorOutput: the function's own output and the emulator's report
// lines reach Config.Output.
func TestEmulatorOutput(t *testing.T) {
	cfg := testConfig(t)
	out := &syncBuffer{}
	cfg.Output = out
	fn := start(t, cfg)
	res, _, err := invokeEcho(t, fn, "error", "logged")
	if err != nil {
		t.Fatal(err)
	}
	fn.Close()
	for _, want := range []string{"START RequestId: " + res.RequestID, "echo failed: logged", "REPORT RequestId: " + res.RequestID} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestPinnedVersion: the Makefile installs the version this package names, and
// the tests run that one.
func TestPinnedVersion(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join("..", "..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var pinned string
	for _, line := range strings.Split(string(mk), "\n") {
		if k, v, ok := strings.Cut(line, ":="); ok && strings.TrimSpace(k) == "RIE_VERSION" {
			pinned = strings.TrimSpace(v)
		}
	}
	if pinned != Version {
		t.Errorf("the Makefile's RIE_VERSION is %q, rie.Version %q", pinned, Version)
	}
	info, err := buildinfo.ReadFile(rieBinary)
	if err != nil {
		t.Fatal(err)
	}
	if info.Main.Path != "github.com/aws/aws-lambda-runtime-interface-emulator" || info.Main.Version != Version {
		t.Errorf("%s is %s@%s, want the pinned %s: run make rie-install", rieBinary, info.Main.Path, info.Main.Version, Version)
	}
}
