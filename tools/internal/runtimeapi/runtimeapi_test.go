package runtimeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var echoBinary string

// TestMain builds the real aws-lambda-go test function once for all tests.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runtimeapi-test")
	if err != nil {
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
}

func testConfig(t *testing.T) Config {
	t.Helper()
	var logs bytes.Buffer
	return Config{
		Binary:  echoBinary,
		Name:    "EchoFunction",
		Env:     map[string]string{"CUSTOM": "from-template"},
		Timeout: 5 * time.Second,
		Region:  "eu-west-1",
		Stdout:  io.Discard,
		Stderr:  io.Discard,
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
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
	res, err := fn.Invoke(context.Background(), payload)
	var reply echoReply
	if err == nil && res.Err == nil {
		if jerr := json.Unmarshal(res.Payload, &reply); jerr != nil {
			t.Fatalf("response %q: %v", res.Payload, jerr)
		}
	}
	return res, reply, err
}

func TestInvokeResponse(t *testing.T) {
	cfg := testConfig(t)
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
	if want := FunctionARN("eu-west-1", "EchoFunction"); reply.FunctionARN != want {
		t.Errorf("function ARN = %q, want %q", reply.FunctionARN, want)
	}
	// The deadline header becomes the handler's ctx deadline: invocation start + Timeout.
	if !reply.HasDeadline {
		t.Fatal("handler ctx has no deadline")
	}
	lo, hi := before.Add(cfg.Timeout).UnixMilli(), after.Add(cfg.Timeout).UnixMilli()
	if reply.DeadlineMs < lo || reply.DeadlineMs > hi {
		t.Errorf("deadline %d ms not within [%d, %d]", reply.DeadlineMs, lo, hi)
	}
	for k, want := range map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        "EchoFunction",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"_HANDLER":                        "bootstrap",
		"AWS_REGION":                      "eu-west-1",
		"AWS_DEFAULT_REGION":              "eu-west-1",
		"LAMBDA_TASK_ROOT":                filepath.Dir(echoBinary),
		"CUSTOM":                          "from-template",
	} {
		if got := reply.Env[k]; got != want {
			t.Errorf("env %s = %q, want %q", k, got, want)
		}
	}
	if reply.Env["_X_AMZN_TRACE_ID"] == "" {
		t.Error("trace id header did not reach the function")
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
	// The process survives a handler error.
	if _, _, err := invokeEcho(t, fn, "echo", "still here"); err != nil {
		t.Fatal(err)
	}
}

func TestInvokeTimeoutRestartsProcess(t *testing.T) {
	cfg := testConfig(t)
	cfg.Timeout = time.Second
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
	_, after, err := invokeEcho(t, fn, "echo", "cold")
	if err != nil {
		t.Fatal(err)
	}
	if after.PID == first.PID || after.Invocations != 1 {
		t.Errorf("after a timeout: pid %d (before %d), invocations %d; want a fresh process", after.PID, first.PID, after.Invocations)
	}
}

func TestInvokeProcessExit(t *testing.T) {
	fn := start(t, testConfig(t))
	_, _, err := invokeEcho(t, fn, "exit", "")
	if !errors.Is(err, ErrExited) {
		t.Fatalf("err = %v, want ErrExited", err)
	}
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("exit status 3")) {
		t.Errorf("error %v does not name the exit status", err)
	}
	if _, reply, err := invokeEcho(t, fn, "echo", "back"); err != nil || reply.Invocations != 1 {
		t.Fatalf("after exit: err=%v invocations=%d, want a fresh process", err, reply.Invocations)
	}
}

func TestStartInitError(t *testing.T) {
	tests := []struct {
		name         string
		mode         string
		wantReported *FunctionError
		wantExit     int
	}{
		{name: "reported", mode: "error", wantReported: &FunctionError{Type: "Config.Missing", Message: "TABLE is not set"}, wantExit: 1},
		{name: "crash", mode: "crash", wantExit: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Env["ECHO_INIT"] = tt.mode
			fn, err := Start(context.Background(), cfg)
			if err == nil {
				fn.Close()
				t.Fatal("Start succeeded")
			}
			var ie *InitError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %T %v, want *InitError", err, err)
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
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != tt.wantExit {
				t.Errorf("cause = %v, want exit status %d", ie.Cause, tt.wantExit)
			}
		})
	}
}

func TestConcurrentInvokes(t *testing.T) {
	for _, instances := range []int{1, 2} {
		t.Run(fmt.Sprintf("instances=%d", instances), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Instances = instances
			fn := start(t, cfg)
			const n = 8
			var wg sync.WaitGroup
			replies := make([]echoReply, n)
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					payload, _ := json.Marshal(map[string]string{"message": fmt.Sprint(i)})
					res, err := fn.Invoke(context.Background(), payload)
					if err == nil {
						err = json.Unmarshal(res.Payload, &replies[i])
					}
					errs[i] = err
				}()
			}
			wg.Wait()
			ids := map[string]bool{}
			pids := map[int]int{}
			for i, r := range replies {
				if errs[i] != nil {
					t.Fatalf("invoke %d: %v", i, errs[i])
				}
				if r.Message != fmt.Sprint(i) {
					t.Errorf("invoke %d got the reply for %q", i, r.Message)
				}
				ids[r.RequestID] = true
				pids[r.PID]++
			}
			if len(ids) != n {
				t.Errorf("%d distinct request ids, want %d", len(ids), n)
			}
			if len(pids) > instances {
				t.Errorf("%d processes served, want at most %d", len(pids), instances)
			}
			// One invocation at a time per process: each process counted its own invocations 1..k.
			seen := map[[2]int]bool{}
			for _, r := range replies {
				key := [2]int{r.PID, r.Invocations}
				if seen[key] {
					t.Errorf("process %d ran two invocations as its #%d", r.PID, r.Invocations)
				}
				seen[key] = true
			}
		})
	}
}

func TestInvokeContextAndClose(t *testing.T) {
	fn := start(t, testConfig(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := fn.Invoke(ctx, []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled ctx: err = %v", err)
	}
	if err := fn.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := fn.Invoke(context.Background(), []byte(`{}`)); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: err = %v, want ErrClosed", err)
	}
}

func TestRuntimeAPIRejectsUnknownRequestID(t *testing.T) {
	fn := start(t, testConfig(t))
	for _, path := range []string{"response", "error"} {
		url := "http://" + fn.instances[0].current().addr + "/2018-06-01/runtime/invocation/not-a-request/" + path
		resp, err := http.Post(url, "application/json", bytes.NewReader([]byte(`{}`)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s for an unknown id: status %d, want 400", path, resp.StatusCode)
		}
	}
}

// TestStaleProcessRequestIsRejected replays the race a timeout opens: a request
// from a killed process is already inside the Runtime API server when the
// instance's process is replaced. It must be attributed to the process that
// sent it and answered with an error, not take the new process's event.
func TestStaleProcessRequestIsRejected(t *testing.T) {
	fn := start(t, testConfig(t))
	inst := fn.instances[0]
	_, first, err := invokeEcho(t, fn, "echo", "warm")
	if err != nil {
		t.Fatal(err)
	}
	stale := inst.current()
	staleAPI := ""
	for _, kv := range stale.cmd.Env {
		if v, ok := strings.CutPrefix(kv, "AWS_LAMBDA_RUNTIME_API="); ok {
			staleAPI = v
		}
	}
	if staleAPI == "" {
		t.Fatal("process environment has no AWS_LAMBDA_RUNTIME_API")
	}
	// The request the stale process sent before it was killed; it reaches the
	// handler of the endpoint it was sent to only after the restart.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequest(http.MethodGet, "http://"+staleAPI+"/2018-06-01/runtime/invocation/next", nil).WithContext(ctx)
	handler := stale.server.Handler

	inst.kill() // as a timeout does
	_, cold, err := invokeEcho(t, fn, "echo", "cold")
	if err != nil {
		t.Fatal(err)
	}
	if cold.PID == first.PID || cold.Invocations != 1 {
		t.Fatalf("after the kill: pid %d (before %d), invocations %d; want a fresh process", cold.PID, first.PID, cold.Invocations)
	}

	staleDone := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		staleDone <- rec
	}()
	// An event for the new process. Were the stale request attributed to it, it
	// would compete with the new process for this event.
	res, reply, err := invokeEcho(t, fn, "echo", "for the new process")
	cancel() // ends the stale request if it is (wrongly) still waiting for an event
	rec := <-staleDone
	if rec.Code < 400 {
		t.Errorf("stale process's GET /next: status %d, body %q; want an error status", rec.Code, rec.Body.Bytes())
	}
	if bytes.Contains(rec.Body.Bytes(), []byte("for the new process")) {
		t.Error("stale process's GET /next received the new process's event")
	}
	if err != nil || res.Err != nil {
		t.Fatalf("Invoke after the stale request: err=%v, function error=%v", err, res.Err)
	}
	if reply.PID != cold.PID || reply.Invocations != 2 || reply.Message != "for the new process" {
		t.Errorf("event served by pid %d as its #%d (%q); want pid %d, #2", reply.PID, reply.Invocations, reply.Message, cold.PID)
	}
}
